//! The components `cargo xtask build-plugins` built, read from cargo's
//! target directory (`CARGO_TARGET_DIR` when it is set).

use std::path::PathBuf;

/// The bytes of `crate_name`'s component; panics with what to run if missing.
pub fn bytes(crate_name: &str) -> Vec<u8> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("wasm32-wasip2/release").join(format!("{crate_name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask build-plugins`", path.display()))
}
