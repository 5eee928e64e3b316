//! Unguessable identifiers and tokens from the OS random source.

/// Lower-case hex of `bytes` random bytes.
pub fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)?;
    Ok(hex::encode(buf))
}

/// A new id like `trg_<32 hex>`: 128 random bits, so a trigger id (which is
/// also its public webhook path) cannot be guessed or enumerated.
pub fn new_id(prefix: &str) -> Result<String, getrandom::Error> {
    Ok(format!("{prefix}_{}", random_hex(16)?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_prefixed_and_distinct() {
        let a = super::new_id("trg").unwrap_or_default();
        let b = super::new_id("trg").unwrap_or_default();
        assert!(a.starts_with("trg_") && a.len() == 4 + 32, "{a}");
        assert_ne!(a, b);
    }
}
