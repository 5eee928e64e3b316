//! JSON helpers shared by the API and push delivery.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// For `#[serde(default, deserialize_with = "nullable")]` on an
/// `Option<Option<T>>`: a field left out is `None`, `null` is `Some(None)`
/// (clear it), a value is `Some(Some(value))`.
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A stored payload to embed in JSON as it is (no re-serialization, no
/// key reordering). Payloads are checked to be JSON before they are
/// stored; one that is not (a row written by hand?) is embedded as a
/// JSON string rather than not at all.
pub fn embed(payload: &str) -> Cow<'_, RawValue> {
    match serde_json::from_str::<&RawValue>(payload) {
        Ok(raw) => Cow::Borrowed(raw),
        Err(_) => Cow::Owned(serde_json::value::to_raw_value(payload).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_is_embedded_as_is_and_anything_else_as_a_string() {
        assert_eq!(super::embed(r#"{"b":1,"a":2}"#).get(), r#"{"b":1,"a":2}"#);
        assert_eq!(super::embed("not json").get(), r#""not json""#);
    }
}
