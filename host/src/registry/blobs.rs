//! Component bytes stored by content: `<data-dir>/plugins/sha256/<hex>.wasm`.
//!
//! File names come only from digests the host computed, and every access
//! goes through a cap-std `Dir` confined to that folder.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};
use sha2::{Digest, Sha256};

/// The blob folder. Cheap to clone, so writes can move to a blocking thread.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: Arc<Dir>,
    /// The folder itself, to fsync it after a rename.
    path: PathBuf,
}

/// `sha256:<hex>` to `<hex>`, checking it is 64 lower-case hex digits.
fn hex_of(digest: &str) -> io::Result<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("not a sha256 digest: {digest}")))
}

fn matches(bytes: &[u8], hex: &str) -> bool {
    hex::encode(Sha256::digest(bytes)) == hex
}

impl BlobStore {
    /// Opens (creating) the blob folder under `data_dir`.
    pub fn open(data_dir: &Path) -> io::Result<BlobStore> {
        let path = data_dir.join("plugins").join("sha256");
        std::fs::create_dir_all(&path)?;
        Ok(BlobStore { dir: Arc::new(Dir::open_ambient_dir(&path, ambient_authority())?), path })
    }

    /// Stores `bytes` under `digest` durably: written to a name no other
    /// upload uses, synced, renamed, and the folder synced, so a crash never
    /// leaves a partial blob and two uploads never write one file. A blob
    /// already there is kept only if its content matches the digest.
    pub fn put(&self, digest: &str, bytes: &[u8]) -> io::Result<()> {
        let hex = hex_of(digest)?;
        if !matches(bytes, hex) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bytes do not match {digest}")));
        }
        let name = format!("{hex}.wasm");
        if self.dir.read(&name).is_ok_and(|existing| matches(&existing, hex)) {
            return Ok(());
        }
        let unique = crate::ids::random_hex(8).map_err(io::Error::other)?;
        let temp = format!("{hex}.{unique}.tmp");
        let written = (|| {
            let mut file = self.dir.open_with(&temp, OpenOptions::new().write(true).create_new(true))?;
            file.write_all(bytes)?;
            file.sync_all()?;
            self.dir.rename(&temp, &self.dir, &name)
        })();
        if written.is_err() {
            let _ = self.dir.remove_file(&temp);
        }
        written?;
        // The rename is durable only once the folder's entry is.
        std::fs::File::open(&self.path)?.sync_all()
    }

    /// Removes the blob for `digest`, if there is one.
    pub fn remove(&self, digest: &str) -> io::Result<()> {
        match self.dir.remove_file(format!("{}.wasm", hex_of(digest)?)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    /// Reads the blob for `digest`, checking its content still matches.
    pub fn get(&self, digest: &str) -> io::Result<Vec<u8>> {
        let hex = hex_of(digest)?;
        let bytes = self.dir.read(format!("{hex}.wasm"))?;
        if !matches(&bytes, hex) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("blob {digest} is corrupt")));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_and_corruption() -> io::Result<()> {
        let temp = tempfile::tempdir()?;
        let blobs = BlobStore::open(temp.path())?;
        let bytes = b"\0asm component";
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
        blobs.put(&digest, bytes)?;
        assert_eq!(blobs.get(&digest)?, bytes);

        let path = temp.path().join("plugins/sha256").join(format!("{}.wasm", &digest[7..]));
        std::fs::write(&path, b"\0asm tampered!")?;
        assert_eq!(blobs.get(&digest).map_err(|e| e.kind()), Err(io::ErrorKind::InvalidData));
        assert!(blobs.get("sha256:../../etc/passwd").is_err());

        // A corrupt blob is not trusted as the stored copy: putting the
        // bytes again replaces it.
        blobs.put(&digest, bytes)?;
        assert_eq!(blobs.get(&digest)?, bytes);
        blobs.remove(&digest)?;
        assert_eq!(blobs.get(&digest).map_err(|e| e.kind()), Err(io::ErrorKind::NotFound));
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(temp.path().join("plugins/sha256"))?.count(), 0);
        // Bytes that are not the digest's are refused.
        assert!(blobs.put(&digest, b"other bytes").is_err());
        Ok(())
    }
}
