//! What a shared registration is made of, from its triggers' configs: the
//! key that groups them, the union of the events they want, and which
//! trigger an event of a delivery reaches.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::contract::Sharing;

/// The event types a trigger wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// Every event: its events field is empty, missing or holds `*`.
    Everything,
    /// These types, and their subtypes (`issues` wants `issues.opened`).
    Types(BTreeSet<String>),
}

/// What stands for "every event" in a list of types.
const EVERYTHING: &str = "*";

impl Wanted {
    /// What the config of a trigger (or a source) wants.
    pub fn of(sharing: &Sharing, config: &Value) -> Wanted {
        let Some(field) = &sharing.events_field else { return Wanted::Everything };
        let types: BTreeSet<String> = config
            .get(field)
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        if types.is_empty() || types.contains(EVERYTHING) { Wanted::Everything } else { Wanted::Types(types) }
    }

    /// What any of `wanted` wants.
    pub fn union<'a>(wanted: impl IntoIterator<Item = &'a Wanted>) -> Wanted {
        let mut all = BTreeSet::new();
        for one in wanted {
            match one {
                Wanted::Everything => return Wanted::Everything,
                Wanted::Types(types) => all.extend(types.iter().cloned()),
            }
        }
        Wanted::Types(all)
    }

    /// Whether an event of `event_type` is wanted: a listed type, or a
    /// subtype of one (`issues.opened` for `issues`).
    pub fn matches(&self, event_type: &str) -> bool {
        match self {
            Wanted::Everything => true,
            Wanted::Types(types) => types.iter().any(|wanted| {
                event_type.strip_prefix(wanted.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
            }),
        }
    }

    /// The list as the events field holds it: empty for everything.
    pub fn to_field(&self) -> Value {
        match self {
            Wanted::Everything => Value::Array(Vec::new()),
            Wanted::Types(types) => types.iter().cloned().map(Value::String).collect(),
        }
    }

    fn as_set(&self) -> BTreeSet<String> {
        match self {
            Wanted::Everything => BTreeSet::from([EVERYTHING.to_owned()]),
            Wanted::Types(types) => types.clone(),
        }
    }

    /// The types added and removed from `before` to `self`; `*` stands
    /// for everything.
    pub fn diff(&self, before: &Wanted) -> (Vec<String>, Vec<String>) {
        let (now, then) = (self.as_set(), before.as_set());
        (now.difference(&then).cloned().collect(), then.difference(&now).cloned().collect())
    }
}

/// The key of the registration a config belongs to: its key fields'
/// values as canonical JSON (object keys sorted). `None` when a key field
/// is missing or null: such a trigger has a registration of its own (a
/// webhook added by hand, with its own secret, is not anyone else's).
pub fn source_key(sharing: &Sharing, config: &Value) -> Option<String> {
    let mut key = serde_json::Map::new();
    for field in &sharing.key_fields {
        match config.get(field) {
            None | Some(Value::Null) => return None,
            Some(value) => key.insert(field.clone(), value.clone()),
        };
    }
    Some(canonical(&Value::Object(key)))
}

/// JSON text with every object's keys sorted, whatever order they came in.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let sorted: std::collections::BTreeMap<&String, String> = map.iter().map(|(k, v)| (k, canonical(v))).collect();
            let fields: Vec<String> =
                sorted.into_iter().map(|(k, v)| format!("{}:{v}", Value::String(k.clone()))).collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// `config` with its events field set to what `wanted` lists.
pub fn with_events(sharing: &Sharing, mut config: Value, wanted: &Wanted) -> Value {
    if let (Some(field), Some(object)) = (&sharing.events_field, config.as_object_mut()) {
        object.insert(field.clone(), wanted.to_field());
    }
    config
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sharing() -> Sharing {
        Sharing { key_fields: vec!["repository".into(), "api".into()], events_field: Some("events".into()) }
    }

    fn wanted(config: Value) -> Wanted {
        Wanted::of(&sharing(), &config)
    }

    #[test]
    fn the_key_is_canonical_and_ignores_other_fields() {
        let a = source_key(&sharing(), &json!({ "repository": "o/r", "api": { "b": 1, "a": 2 }, "events": ["push"] }));
        let b = source_key(&sharing(), &json!({ "api": { "a": 2, "b": 1 }, "events": ["issues"], "repository": "o/r" }));
        assert_eq!(a, b);
        assert_eq!(a.as_deref(), Some(r#"{"api":{"a":2,"b":1},"repository":"o/r"}"#));
        assert_ne!(a, source_key(&sharing(), &json!({ "repository": "o/other", "api": { "a": 2, "b": 1 } })));
        assert_eq!(source_key(&sharing(), &json!({ "api": 1 })), None, "a missing key field shares nothing");
        assert_eq!(source_key(&sharing(), &json!({ "api": 1, "repository": null })), None);
        let everyone = Sharing { key_fields: Vec::new(), events_field: None };
        assert_eq!(source_key(&everyone, &json!({ "x": 1 })).as_deref(), Some("{}"));
    }

    #[test]
    fn the_union_of_types_or_everything() {
        let union = Wanted::union(&[wanted(json!({ "events": ["push"] })), wanted(json!({ "events": ["issues", "push"] }))]);
        assert_eq!(union.to_field(), json!(["issues", "push"]));
        let union = Wanted::union(&[wanted(json!({ "events": ["push"] })), wanted(json!({ "events": [] }))]);
        assert_eq!(union, Wanted::Everything);
        assert_eq!(wanted(json!({ "events": ["*"] })), Wanted::Everything);
        assert_eq!(wanted(json!({})), Wanted::Everything);
    }

    #[test]
    fn an_event_matches_its_type_and_its_parents() {
        let issues = wanted(json!({ "events": ["issues", "pull_request.closed"] }));
        assert!(issues.matches("issues"));
        assert!(issues.matches("issues.opened"));
        assert!(issues.matches("pull_request.closed"));
        assert!(!issues.matches("pull_request.opened"));
        assert!(!issues.matches("issues_comment"), "a prefix is a type only up to a dot");
        assert!(!issues.matches("push"));
        assert!(Wanted::Everything.matches("anything"));
    }

    #[test]
    fn the_diff_names_added_and_removed_types() {
        let before = wanted(json!({ "events": ["issues", "push"] }));
        let after = wanted(json!({ "events": ["push", "release"] }));
        assert_eq!(after.diff(&before), (vec!["release".to_owned()], vec!["issues".to_owned()]));
        assert_eq!(Wanted::Everything.diff(&before), (vec!["*".to_owned()], vec!["issues".to_owned(), "push".to_owned()]));
        assert_eq!(with_events(&sharing(), json!({ "events": ["x"], "repository": "o/r" }), &after)["events"], json!(["push", "release"]));
    }
}
