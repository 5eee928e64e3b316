//! Files only the server's own user may read or write.

use std::fs::File;
use std::io;
use std::path::Path;

/// Creates `path` (it must not exist) with mode 0600.
pub(crate) fn create(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}
