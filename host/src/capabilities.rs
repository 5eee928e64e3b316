//! Host capabilities a connector may import, one module each. Every
//! capability is scoped to one call of one trigger and checks the operator's
//! grant itself, so a connector gets exactly what it was granted.

pub mod grant;
pub mod http;
pub mod kv;
pub mod log;
