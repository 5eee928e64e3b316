//! Trigger config schemas: compiled once per loaded version, with nothing
//! in them able to reach outside the host or run away with its CPU.
//!
//! `$ref` resolves only inside the schema: the validator is built without
//! remote or file retrieval, so a `$ref` to a URL or a `file://` path is
//! refused when the version is loaded. `pattern` uses the linear-time
//! `regex` engine with a bound on the compiled size, so no pattern
//! backtracks exponentially on an integrator's config.

use serde::Serialize;

/// Bytes a compiled `pattern` may take.
const MAX_PATTERN_BYTES: usize = 1 << 20;

/// Why a config does not fit a trigger's schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigProblem {
    /// JSON pointer of the failing field (empty for the whole config).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Compiles a trigger's config schema (JSON text), or says why it cannot be.
pub fn compile_config_schema(text: &str) -> Result<jsonschema::Validator, String> {
    let schema: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    jsonschema::options()
        .with_pattern_options(
            jsonschema::PatternOptions::regex().size_limit(MAX_PATTERN_BYTES).dfa_size_limit(MAX_PATTERN_BYTES),
        )
        .build(&schema)
        .map_err(|e| e.to_string())
}

/// Checks `config` against a compiled schema; the problem names the first
/// failing field's JSON pointer.
pub fn check(validator: &jsonschema::Validator, config: &serde_json::Value) -> Result<(), ConfigProblem> {
    match validator.iter_errors(config).next() {
        None => Ok(()),
        Some(error) => Err(ConfigProblem {
            path: error.instance_path().to_string(),
            message: crate::contract::cut(&error.to_string(), crate::contract::MAX_GUEST_TEXT).to_owned(),
        }),
    }
}
