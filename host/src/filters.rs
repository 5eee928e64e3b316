//! Host-side event filters: rules an integrator puts on a trigger so a
//! noisy source is narrowed without a new connector version. Each event a
//! connector emits is stored only if every rule admits it; the host checks
//! them before the commit, in linear time (regexes are size-bounded and
//! never backtrack). Rules are validated when a trigger is created or
//! patched, and shown back as given.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Most rules on one trigger.
pub const MAX_RULES: usize = 32;
/// Most types in one `type_in`.
const MAX_TYPES: usize = 256;
/// Longest JSON pointer or pattern, bytes.
const MAX_TEXT: usize = 512;
/// Most memory one compiled regex may take.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// One rule, as the API takes and shows it: `type_in`, or a JSON `pointer`
/// into the payload with exactly one of `equals`, `contains`, `matches`,
/// `exists`; `not` inverts it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The event's type is one of these, or a subtype of one (`issues`
    /// admits `issues.opened`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_in: Option<Vec<String>>,
    /// Where in the payload to look, RFC 6901 (`/issue/labels/0/name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// The value there equals this JSON value (`null` included).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub equals: Option<Value>,
    /// The string there contains this string, or the array there holds this value.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub contains: Option<Value>,
    /// The string there matches this regex (Rust `regex` syntax; no
    /// backreferences or look-around, so matching is linear).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    /// Whether a value is there at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    /// Admits what the rule would not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not: bool,
}

/// A field given as `null` is still given: `"equals": null` tests for null.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Why a set of rules is refused: which rule, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filters[{index}]: {message}")]
pub struct FilterError {
    /// The rule's position.
    pub index: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Clone)]
enum Test {
    TypeIn(Vec<String>),
    Equals(Value),
    Contains(Value),
    Matches(Regex),
    Exists(bool),
}

#[derive(Debug, Clone)]
struct Compiled {
    pointer: String,
    test: Test,
    not: bool,
}

/// A trigger's rules, compiled. Empty admits everything.
#[derive(Debug, Clone, Default)]
pub struct Filters(Vec<Compiled>);

impl Filters {
    /// Checks and compiles `rules`.
    pub fn compile(rules: &[Rule]) -> Result<Filters, FilterError> {
        if rules.len() > MAX_RULES {
            return Err(FilterError { index: MAX_RULES, message: format!("at most {MAX_RULES} rules") });
        }
        rules
            .iter()
            .enumerate()
            .map(|(index, rule)| compile(rule).map_err(|message| FilterError { index, message }))
            .collect::<Result<Vec<_>, _>>()
            .map(Filters)
    }

    /// Compiles rules stored as JSON (already validated when stored); rules
    /// that no longer compile admit nothing rather than everything.
    pub fn from_stored(json: Option<&str>) -> Filters {
        let Some(json) = json else { return Filters::default() };
        let parsed = serde_json::from_str::<Vec<Rule>>(json).map_err(|e| e.to_string());
        match parsed.and_then(|rules| Filters::compile(&rules).map_err(|e| e.to_string())) {
            Ok(filters) => filters,
            Err(error) => {
                tracing::error!(%error, "stored filters do not compile; the trigger stores nothing");
                Filters(vec![Compiled { pointer: String::new(), test: Test::Exists(false), not: false }])
            }
        }
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a rule looks into the payload (so it must be parsed).
    pub fn reads_payload(&self) -> bool {
        self.0.iter().any(|rule| !matches!(rule.test, Test::TypeIn(_)))
    }

    /// Whether every rule admits an event of `event_type` with `payload`
    /// (`None` when it is not needed or not JSON).
    pub fn admits(&self, event_type: &str, payload: Option<&Value>) -> bool {
        self.0.iter().all(|rule| rule.admits(event_type, payload) != rule.not)
    }
}

impl Compiled {
    fn admits(&self, event_type: &str, payload: Option<&Value>) -> bool {
        let found = || payload.and_then(|payload| payload.pointer(&self.pointer));
        match &self.test {
            Test::TypeIn(types) => types.iter().any(|wanted| {
                event_type.strip_prefix(wanted.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
            }),
            Test::Exists(wanted) => found().is_some() == *wanted,
            Test::Equals(value) => found() == Some(value),
            Test::Contains(needle) => match (found(), needle) {
                (Some(Value::String(text)), Value::String(part)) => text.contains(part.as_str()),
                (Some(Value::Array(items)), needle) => items.contains(needle),
                _ => false,
            },
            Test::Matches(regex) => found().and_then(Value::as_str).is_some_and(|text| regex.is_match(text)),
        }
    }
}

fn compile(rule: &Rule) -> Result<Compiled, String> {
    let tests = [rule.type_in.is_some(), rule.equals.is_some(), rule.contains.is_some(), rule.matches.is_some(), rule.exists.is_some()];
    if tests.iter().filter(|given| **given).count() != 1 {
        return Err("give exactly one of type_in, equals, contains, matches, exists".into());
    }
    if let Some(types) = &rule.type_in {
        if rule.pointer.is_some() {
            return Err("type_in takes no pointer".into());
        }
        if types.is_empty() || types.len() > MAX_TYPES || types.iter().any(|t| t.is_empty() || t.len() > MAX_TEXT) {
            return Err(format!("type_in lists 1 to {MAX_TYPES} non-empty types"));
        }
        return Ok(Compiled { pointer: String::new(), test: Test::TypeIn(types.clone()), not: rule.not });
    }
    let Some(pointer) = &rule.pointer else {
        return Err("a pointer is needed (e.g. \"/action\")".into());
    };
    if pointer.len() > MAX_TEXT || !(pointer.is_empty() || pointer.starts_with('/')) {
        return Err(format!("pointer must be empty or start with '/', at most {MAX_TEXT} bytes"));
    }
    let test = if let Some(value) = &rule.equals {
        Test::Equals(value.clone())
    } else if let Some(value) = &rule.contains {
        Test::Contains(value.clone())
    } else if let Some(pattern) = &rule.matches {
        if pattern.len() > MAX_TEXT {
            return Err(format!("pattern longer than {MAX_TEXT} bytes"));
        }
        let regex = RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| format!("matches: {}", crate::contract::cut(&e.to_string(), 200)))?;
        Test::Matches(regex)
    } else {
        Test::Exists(rule.exists.unwrap_or(true))
    };
    Ok(Compiled { pointer: pointer.clone(), test, not: rule.not })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn filters(rules: Value) -> Result<Filters, FilterError> {
        let rules: Vec<Rule> = serde_json::from_value(rules).map_err(|e| FilterError { index: 0, message: e.to_string() })?;
        Filters::compile(&rules)
    }

    #[test]
    fn every_rule_must_admit() -> Result<(), FilterError> {
        let f = filters(json!([
            { "type_in": ["issues"] },
            { "pointer": "/issue/labels", "contains": "bug" },
            { "pointer": "/sender/login", "matches": "^octo" },
            { "pointer": "/draft", "exists": true, "not": true },
            { "pointer": "/closed_by", "equals": null },
        ]))?;
        let payload = json!({ "issue": { "labels": ["bug", "p1"] }, "sender": { "login": "octocat" }, "closed_by": null });
        assert!(f.admits("issues.opened", Some(&payload)));
        assert!(!f.admits("push", Some(&payload)), "type");
        let mut other = payload.clone();
        other["issue"]["labels"] = json!(["feature"]);
        assert!(!f.admits("issues.opened", Some(&other)), "contains");
        other = payload.clone();
        other["sender"]["login"] = json!("hubot");
        assert!(!f.admits("issues.opened", Some(&other)), "matches");
        other = payload.clone();
        other["draft"] = json!(false);
        assert!(!f.admits("issues.opened", Some(&other)), "not exists");
        other = payload.clone();
        other["closed_by"] = json!("someone");
        assert!(!f.admits("issues.opened", Some(&other)), "equals null");
        assert!(!f.admits("issues.opened", None), "no payload, no match");
        assert!(Filters::default().admits("anything", None));
        Ok(())
    }

    #[test]
    fn contains_reads_strings_and_arrays() -> Result<(), FilterError> {
        let f = filters(json!([{ "pointer": "/text", "contains": "deploy" }]))?;
        assert!(f.admits("t", Some(&json!({ "text": "please deploy now" }))));
        assert!(!f.admits("t", Some(&json!({ "text": 42 }))));
        let f = filters(json!([{ "pointer": "/ids", "contains": 7 }]))?;
        assert!(f.admits("t", Some(&json!({ "ids": [1, 7] }))));
        assert!(!f.reads_payload() || f.admits("t", Some(&json!({ "ids": [7] }))));
        Ok(())
    }

    #[test]
    fn bad_rules_are_refused_with_their_index() {
        for (rules, expected) in [
            (json!([{ "type_in": ["a"] }, { "pointer": "/a" }]), "filters[1]: give exactly one"),
            (json!([{ "pointer": "/a", "equals": 1, "exists": true }]), "filters[0]: give exactly one"),
            (json!([{ "equals": 1 }]), "filters[0]: a pointer is needed"),
            (json!([{ "pointer": "a", "equals": 1 }]), "filters[0]: pointer must"),
            (json!([{ "type_in": [] }]), "filters[0]: type_in lists"),
            (json!([{ "pointer": "/a", "matches": "(" }]), "filters[0]: matches:"),
            // Compiles under the regex crate's own 10 MiB default, not under our 256 KiB.
            (json!([{ "pointer": "/a", "matches": "\\w{100}" }]), "filters[0]: matches:"),
        ] {
            let error = filters(rules).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.starts_with(expected), "{error} should start with {expected}");
        }
        let too_many: Vec<Value> = (0..=MAX_RULES).map(|_| json!({ "type_in": ["a"] })).collect();
        assert!(filters(Value::Array(too_many)).is_err());
    }

    #[test]
    fn stored_rules_that_no_longer_compile_admit_nothing() {
        assert!(!Filters::from_stored(Some("not json")).admits("t", Some(&json!({}))));
        assert!(Filters::from_stored(None).admits("t", None));
        assert!(Filters::from_stored(Some(r#"[{"type_in":["t"]}]"#)).admits("t.x", None));
    }
}
