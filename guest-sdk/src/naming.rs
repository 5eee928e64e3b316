//! The naming rules of the manifest, shared by connector authors (to fail at
//! build time) and the host (to reject an upload).

/// The longest connector or trigger name accepted.
pub const MAX_NAME_LEN: usize = 64;

/// Whether `name` is a valid connector name: kebab-case ASCII (`[a-z][a-z0-9]*`
/// words joined by single `-`), at most [`MAX_NAME_LEN`] bytes.
pub fn is_kebab_case(name: &str) -> bool {
    is_case(name, b'-')
}

/// Whether `name` is a valid trigger name: snake_case ASCII (`[a-z][a-z0-9]*`
/// words joined by single `_`), at most [`MAX_NAME_LEN`] bytes.
pub fn is_snake_case(name: &str) -> bool {
    is_case(name, b'_')
}

fn is_case(name: &str, separator: u8) -> bool {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return false;
    }
    name.split(separator as char).all(|word| {
        let mut bytes = word.bytes();
        matches!(bytes.next(), Some(b'a'..=b'z'))
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_case() {
        for ok in ["github", "standard-webhooks", "rss2-feed", "a-b-c"] {
            assert!(is_kebab_case(ok), "{ok}");
        }
        for bad in ["", "GitHub", "-a", "a-", "a--b", "a_b", "1abc", "a-1b", "ü", &"a".repeat(65)] {
            assert!(!is_kebab_case(bad), "{bad}");
        }
    }

    #[test]
    fn snake_case() {
        for ok in ["new_order", "push", "message_received2"] {
            assert!(is_snake_case(ok), "{ok}");
        }
        for bad in ["", "NewOrder", "_a", "a_", "a__b", "a-b", "9lives"] {
            assert!(!is_snake_case(bad), "{bad}");
        }
    }
}
