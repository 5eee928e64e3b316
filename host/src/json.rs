//! JSON reading shared by the API's request types.

use serde::{Deserialize, Deserializer};

/// For `#[serde(default, deserialize_with = "nullable")]` on an
/// `Option<Option<T>>`: a field left out is `None`, `null` is `Some(None)`
/// (clear it), a value is `Some(Some(value))`.
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}
