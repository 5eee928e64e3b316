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

/// A new id like `evt_<32 hex>` whose first 12 hex digits are the time in
/// milliseconds, then 80 random bits: ids made later sort later, so the
/// unique index on them grows at its end instead of dirtying a random page
/// per insert. For ids that need not be unguessable (events, read through
/// the admin API only).
pub fn new_time_ordered_id(prefix: &str) -> Result<String, getrandom::Error> {
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Ok(format!("{prefix}_{:012x}{}", millis & 0xffff_ffff_ffff, random_hex(10)?))
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

    #[test]
    fn time_ordered_ids_sort_by_time() {
        let a = super::new_time_ordered_id("evt").unwrap_or_default();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = super::new_time_ordered_id("evt").unwrap_or_default();
        assert!(a.starts_with("evt_") && a.len() == 4 + 32, "{a}");
        assert!(a < b, "{a} then {b}");
    }
}
