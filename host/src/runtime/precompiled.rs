//! The precompiled cache: compiled components on disk, so a restart loads
//! in milliseconds what took seconds to compile.
//!
//! This is the one module allowed `unsafe`. Wasmtime runs a precompiled
//! artifact as machine code without validating it, so nothing reaches
//! `Component::deserialize_file` unless its checksum file says that this
//! engine (its compatibility hash) wrote it for this component (its
//! sha256), and the artifact's own sha256 matches what was recorded when
//! it was written. Whatever fails a check (corrupt, truncated, foreign,
//! stale, or refused by wasmtime's own compatibility check) is deleted and
//! the component is compiled again. Files are written under temporary
//! names and renamed into place, and never changed afterwards: a mapped
//! artifact stays as it was loaded.

#![allow(unsafe_code)]

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The cache for one engine configuration: `<root>/<engine hash>/`.
#[derive(Debug, Clone)]
pub struct PrecompiledCache {
    dir: PathBuf,
    engine_hash: String,
}

/// What a lookup found.
pub enum Lookup {
    /// A checked artifact, loaded.
    Hit(Component),
    /// Nothing cached for the component.
    Miss,
    /// A cached artifact failed a check and was deleted; why.
    Discarded(String),
}

impl PrecompiledCache {
    /// Opens (creating, owner-only) the cache under `root` for `engine`, and
    /// deletes what engines of other configurations or versions left there.
    pub fn open(root: &Path, engine: &Engine) -> io::Result<PrecompiledCache> {
        let engine_hash = engine_hash(engine);
        create_private_dir(root)?;
        for entry in fs::read_dir(root)? {
            let entry = entry?;
            if entry.file_name() != engine_hash.as_str() && entry.file_type()?.is_dir() {
                tracing::info!(dir = %entry.path().display(), "removing the precompiled cache of another engine");
                fs::remove_dir_all(entry.path())?;
            }
        }
        let dir = root.join(&engine_hash);
        create_private_dir(&dir)?;
        // Temporary files of writes a crash interrupted.
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.starts_with("tmp-")) {
                fs::remove_file(&path)?;
            }
        }
        Ok(PrecompiledCache { dir, engine_hash })
    }

    /// The artifact of the component whose sha256 is `digest_hex`, if one
    /// is cached and passes every check.
    pub fn load(&self, engine: &Engine, digest_hex: &str) -> Lookup {
        let (artifact, sum) = self.paths(digest_hex);
        let recorded = match fs::read_to_string(&sum) {
            Ok(recorded) => recorded,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                // An artifact without its checksum was never finished.
                return if artifact.exists() { self.discard(digest_hex, "no checksum file".into()) } else { Lookup::Miss };
            }
            Err(error) => return self.discard(digest_hex, format!("checksum file unreadable: {error}")),
        };
        let expected = checksum_line(&self.engine_hash, digest_hex, "");
        let Some(artifact_sha) = recorded.strip_prefix(expected.as_str()).map(str::trim_end) else {
            return self.discard(digest_hex, "written by another engine or for another component".into());
        };
        match fs::read(&artifact) {
            Ok(bytes) if hex::encode(Sha256::digest(&bytes)) == artifact_sha => {}
            Ok(_) => return self.discard(digest_hex, "corrupt or truncated: its sha256 does not match".into()),
            Err(error) => return self.discard(digest_hex, format!("unreadable: {error}")),
        }
        // SAFETY: the file's sha256 matches the one this module recorded when
        // it wrote the file from `Component::serialize` of an engine with this
        // compatibility hash, for this component. Cache files are written
        // under temporary names, renamed into place and never modified, so
        // the mapped file stays what was checked.
        match unsafe { Component::deserialize_file(engine, &artifact) } {
            Ok(component) => Lookup::Hit(component),
            Err(error) => self.discard(digest_hex, format!("refused by wasmtime: {error:#}")),
        }
    }

    /// Writes `component`'s artifact and then its checksum file.
    pub fn store(&self, digest_hex: &str, component: &Component) -> io::Result<()> {
        let bytes = component.serialize().map_err(|e| io::Error::other(format!("{e:#}")))?;
        let (artifact, sum) = self.paths(digest_hex);
        write_new(&artifact, &bytes)?;
        let line = checksum_line(&self.engine_hash, digest_hex, &hex::encode(Sha256::digest(&bytes)));
        write_new(&sum, line.as_bytes())
    }

    /// Where the artifact of `digest_hex` is kept (for tests and tools).
    pub fn artifact_path(&self, digest_hex: &str) -> PathBuf {
        self.paths(digest_hex).0
    }

    fn paths(&self, digest_hex: &str) -> (PathBuf, PathBuf) {
        (self.dir.join(format!("{digest_hex}.cwasm")), self.dir.join(format!("{digest_hex}.sum")))
    }

    fn discard(&self, digest_hex: &str, why: String) -> Lookup {
        tracing::warn!(component = %digest_hex, %why, "discarding a precompiled artifact; compiling again");
        let (artifact, sum) = self.paths(digest_hex);
        for path in [sum, artifact] {
            if let Err(error) = fs::remove_file(&path)
                && error.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), %error, "cannot remove a discarded cache file");
            }
        }
        Lookup::Discarded(why)
    }
}

/// `<engine hash> <component sha256> <artifact sha256>`.
fn checksum_line(engine_hash: &str, digest_hex: &str, artifact_sha: &str) -> String {
    format!("{engine_hash} {digest_hex} {artifact_sha}")
}

/// The engine's precompile compatibility hash, as hex: stable across
/// processes (sha256 rather than the std hasher, whose keys may change).
fn engine_hash(engine: &Engine) -> String {
    struct Sha256Hasher(Sha256);
    impl Hasher for Sha256Hasher {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            0
        }
    }
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    // The hash covers the engine's settings; the crate version covers
    // the host code that wrote the artifact.
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..16])
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Writes `bytes` to a temporary file beside `path` and renames it into
/// place: a reader sees the old file, the new one whole, or none.
fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| io::Error::other(e.to_string()))?;
    let temporary = path.with_extension(format!("tmp-{}", hex::encode(random)));
    let mut file = fs::OpenOptions::new().write(true).create_new(true).open(&temporary)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all()).and_then(|()| fs::rename(&temporary, path));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}
