//! The data dir and the secrets in it: created private to the server's
//! user (0700 for the folder, 0600 for files), and a secret file that other
//! users could read is refused rather than trusted.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

/// Creates the data dir (mode 0700) if it does not exist yet.
pub fn create(path: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).with_context(|| format!("creating data dir {}", path.display()))
}

/// Refuses a secret file that users other than its owner may read or write.
pub fn check_private(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.permissions().mode();
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "{} is accessible to other users (mode {:o}); restrict it with `chmod 600 {}` and start again",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
    }
    Ok(())
}

/// Writes a new file only its owner can read (mode 0600), durably.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut file = crate::private_file::create(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// The key that seals secrets at rest: read from `path` (refused if other
/// users can read it), else generated there (0600). Losing it loses every
/// stored secret, by design: a copied database alone yields none.
pub fn secret_box(path: &Path) -> anyhow::Result<crate::secrets::SecretBox> {
    use crate::secrets::SecretBox;
    match std::fs::read_to_string(path) {
        Ok(text) => {
            check_private(path)?;
            SecretBox::from_key_file_text(&text).with_context(|| format!("reading {}", path.display()))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let text = SecretBox::key_file_text()?;
            write_private(path, &text)?;
            tracing::info!(path = %path.display(), "generated the secret key; back it up with the database");
            Ok(SecretBox::from_key_file_text(&text)?)
        }
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

/// The admin token: configured, else read from `<data-dir>/admin_token`,
/// else generated there (0600) and printed once.
pub fn admin_token(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<String> {
    if let Some(token) = configured {
        return Ok(token.to_owned());
    }
    let path = data_dir.join("admin_token");
    match std::fs::read_to_string(&path) {
        Ok(token) => {
            check_private(&path)?;
            if token.trim().len() < 16 {
                anyhow::bail!("{} is too short to be an admin token", path.display());
            }
            return Ok(token.trim().to_owned());
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    }
    let token = crate::ids::random_hex(32)?;
    write_private(&path, &token)?;
    println!("generated admin token (saved in {}): {token}", path.display());
    Ok(token)
}

/// This node's id in a cluster: read from `<data-dir>/node_id`, else made
/// and saved there. A node restarted on its data dir is the same node, and
/// takes its leases back at once instead of waiting for them to expire.
pub fn node_id(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("node_id");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            let valid = id.strip_prefix("node_").is_some_and(|hex| !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
            if !valid {
                anyhow::bail!("{} does not hold a node id", path.display());
            }
            Ok(id.to_owned())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let id = crate::ids::new_id("node")?;
            write_private(&path, &id)?;
            Ok(id)
        }
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0)
    }

    #[test]
    fn the_data_dir_and_token_are_private() -> anyhow::Result<()> {
        let temp = tempfile::tempdir()?;
        let dir = temp.path().join("data");
        create(&dir)?;
        assert_eq!(mode(&dir), 0o700);
        let token = admin_token(None, &dir)?;
        assert_eq!(mode(&dir.join("admin_token")), 0o600);
        assert_eq!(admin_token(None, &dir)?, token, "read back, not regenerated");
        Ok(())
    }

    #[test]
    fn a_token_file_others_can_read_is_refused() -> anyhow::Result<()> {
        let temp = tempfile::tempdir()?;
        let path = temp.path().join("admin_token");
        std::fs::write(&path, "0123456789abcdef0123456789abcdef")?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        let error = admin_token(None, temp.path()).expect_err("group/world readable");
        assert!(error.to_string().contains("chmod 600"), "{error}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        assert_eq!(admin_token(None, temp.path())?, "0123456789abcdef0123456789abcdef");
        Ok(())
    }
}
