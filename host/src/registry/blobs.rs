//! Component bytes stored by content: `<data-dir>/plugins/sha256/<hex>.wasm`.
//!
//! File names come only from digests the host computed, and every access
//! goes through a cap-std `Dir` confined to that folder.

use std::io::{self, Write};
use std::path::Path;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};
use sha2::{Digest, Sha256};

/// The blob folder.
#[derive(Debug)]
pub struct BlobStore {
    dir: Dir,
}

/// `sha256:<hex>` to `<hex>`, checking it is 64 lower-case hex digits.
fn hex_of(digest: &str) -> io::Result<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("not a sha256 digest: {digest}")))
}

impl BlobStore {
    /// Opens (creating) the blob folder under `data_dir`.
    pub fn open(data_dir: &Path) -> io::Result<BlobStore> {
        let path = data_dir.join("plugins").join("sha256");
        std::fs::create_dir_all(&path)?;
        Ok(BlobStore { dir: Dir::open_ambient_dir(&path, ambient_authority())? })
    }

    /// Stores `bytes` under `digest` durably: written to a temporary name,
    /// synced, then renamed, so a crash never leaves a partial blob.
    pub fn put(&self, digest: &str, bytes: &[u8]) -> io::Result<()> {
        let hex = hex_of(digest)?;
        let name = format!("{hex}.wasm");
        if self.dir.metadata(&name).is_ok_and(|m| m.len() == bytes.len() as u64) {
            return Ok(());
        }
        let temp = format!("{hex}.tmp");
        let mut file = self.dir.open_with(&temp, OpenOptions::new().write(true).create(true).truncate(true))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        self.dir.rename(&temp, &self.dir, &name)?;
        Ok(())
    }

    /// Reads the blob for `digest`, checking its content still matches.
    pub fn get(&self, digest: &str) -> io::Result<Vec<u8>> {
        let hex = hex_of(digest)?;
        let bytes = self.dir.read(format!("{hex}.wasm"))?;
        if hex::encode(Sha256::digest(&bytes)) != hex {
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
        Ok(())
    }
}
