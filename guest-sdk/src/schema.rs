//! The JSON Schema of a trigger's config: derived from the connector's
//! config type (one source of truth for the schema and the parsing), or
//! built prop by prop.
//!
//! ```
//! use serde::Deserialize;
//! use schemars::JsonSchema;
//! use triggerhost_sdk::schema::{ConfigSchema, secret};
//!
//! /// The trigger's config; each field's doc comment is its description.
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     /// The repository, owner/name.
//!     repository: String,
//!     /// An API token; encrypted at rest, redacted everywhere.
//!     #[schemars(transform = secret)]
//!     token: Option<String>,
//!     /// Only these event types become events.
//!     #[serde(default)]
//!     events: Vec<String>,
//! }
//!
//! let schema = ConfigSchema::of::<Config>().to_value();
//! assert_eq!(schema["required"], serde_json::json!(["repository"]));
//! assert_eq!(schema["properties"]["token"]["x-secret"], true);
//! assert_eq!(schema["properties"]["repository"]["description"], "The repository, owner/name.");
//! assert_eq!(schema["additionalProperties"], false);
//! ```
//!
//! ```
//! use triggerhost_sdk::schema::{ConfigSchema, Prop};
//! let schema = ConfigSchema::new()
//!     .prop("repository", Prop::string("Repository").description("owner/name").required())
//!     .prop("max_items", Prop::integer("Max items").minimum(1).maximum(100).default_value(10))
//!     .to_json();
//! assert!(schema.contains("\"required\":[\"repository\"]"));
//! ```

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};

/// The config schema of one trigger: a JSON object with named props.
/// Unknown props are rejected (`additionalProperties: false`), so an
/// integrator's typo is an error rather than a silently ignored setting.
#[derive(Debug, Clone, Default)]
pub struct ConfigSchema {
    properties: Map<String, Value>,
    required: Vec<String>,
    /// Definitions the props refer to (`$ref: #/$defs/..`), from a derived schema.
    defs: Option<Value>,
}

impl ConfigSchema {
    /// An object schema with no props: `{}` is the only valid config.
    pub fn new() -> Self {
        Self::default()
    }

    /// The schema of config type `T` (a struct deriving
    /// [`JsonSchema`](schemars::JsonSchema)): fields are props, doc comments
    /// their descriptions, fields that are neither `Option` nor
    /// `#[serde(default)]` required; mark secret fields with
    /// `#[schemars(transform = triggerhost_sdk::schema::secret)]`. More
    /// props may be added with [`prop`](Self::prop).
    pub fn of<T: JsonSchema>() -> Self {
        let root = SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<T>();
        let mut root = match root.to_value() {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let properties = match root.remove("properties") {
            Some(Value::Object(props)) => props,
            _ => Map::new(),
        };
        let required = match root.remove("required") {
            Some(Value::Array(names)) => names.into_iter().filter_map(|n| n.as_str().map(str::to_owned)).collect(),
            _ => Vec::new(),
        };
        ConfigSchema { properties, required, defs: root.remove("$defs") }
    }

    /// Adds a prop under `name` (snake_case by convention).
    pub fn prop(mut self, name: &str, prop: Prop) -> Self {
        if prop.required {
            self.required.push(name.to_owned());
        }
        self.properties.insert(name.to_owned(), Value::Object(prop.schema));
        self
    }

    /// The schema as a JSON value.
    pub fn to_value(&self) -> Value {
        let mut schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": self.properties,
            "required": self.required,
            "additionalProperties": false,
        });
        if let (Some(defs), Some(object)) = (&self.defs, schema.as_object_mut()) {
            object.insert("$defs".into(), defs.clone());
        }
        schema
    }

    /// The schema as compact JSON text, the form the manifest carries.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }
}

/// One config prop: its type, title and constraints.
#[derive(Debug, Clone)]
pub struct Prop {
    schema: Map<String, Value>,
    required: bool,
}

impl Prop {
    fn typed(kind: &str, title: &str) -> Self {
        let mut schema = Map::new();
        schema.insert("type".into(), kind.into());
        schema.insert("title".into(), title.into());
        Prop { schema, required: false }
    }

    /// A text prop.
    pub fn string(title: &str) -> Self {
        Self::typed("string", title)
    }

    /// A whole-number prop.
    pub fn integer(title: &str) -> Self {
        Self::typed("integer", title)
    }

    /// A true/false prop.
    pub fn boolean(title: &str) -> Self {
        Self::typed("boolean", title)
    }

    /// A list of text values.
    pub fn string_list(title: &str) -> Self {
        let mut prop = Self::typed("array", title);
        prop.schema.insert("items".into(), json!({ "type": "string" }));
        prop
    }

    /// A text prop restricted to `choices`.
    pub fn one_of(title: &str, choices: &[&str]) -> Self {
        let mut prop = Self::string(title);
        prop.schema.insert("enum".into(), json!(choices));
        prop
    }

    /// Help text shown to integrators.
    pub fn description(mut self, text: &str) -> Self {
        self.schema.insert("description".into(), text.into());
        self
    }

    /// The config must set this prop.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// The value used when the config leaves the prop out (documentation for
    /// integrators; the connector applies it).
    pub fn default_value(mut self, value: impl Into<Value>) -> Self {
        self.schema.insert("default".into(), value.into());
        self
    }

    /// The smallest allowed number.
    pub fn minimum(mut self, min: i64) -> Self {
        self.schema.insert("minimum".into(), min.into());
        self
    }

    /// The largest allowed number.
    pub fn maximum(mut self, max: i64) -> Self {
        self.schema.insert("maximum".into(), max.into());
        self
    }

    /// A regular expression text values must match.
    pub fn pattern(mut self, regex: &str) -> Self {
        self.schema.insert("pattern".into(), regex.into());
        self
    }

    /// Marks the prop as secret (`"x-secret": true`): the host encrypts it
    /// at rest, redacts it in every response and log, and hands it only to
    /// this trigger's calls; user interfaces mask it (`writeOnly`).
    pub fn secret(mut self) -> Self {
        self.schema.insert("x-secret".into(), true.into());
        self.schema.insert("writeOnly".into(), true.into());
        self
    }
}

/// Marks a derived prop as secret, as [`Prop::secret`] does:
/// `#[schemars(transform = triggerhost_sdk::schema::secret)]` on the field.
pub fn secret(schema: &mut Schema) {
    schema.insert("x-secret".into(), true.into());
    schema.insert("writeOnly".into(), true.into());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_an_object_schema() {
        let schema = ConfigSchema::new()
            .prop("channel", Prop::string("Channel").required())
            .prop("kind", Prop::one_of("Kind", &["a", "b"]).default_value("a"))
            .to_value();
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["required"], json!(["channel"]));
        assert_eq!(schema["properties"]["kind"]["enum"], json!(["a", "b"]));
        assert_eq!(schema["properties"]["kind"]["default"], "a");
        assert_eq!(schema["additionalProperties"], false);
    }

    #[derive(serde::Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Nested {
        /// Where to look.
        place: Place,
        /// How many, at most.
        #[serde(default)]
        limit: Option<u32>,
    }

    #[derive(serde::Deserialize, JsonSchema)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Place {
        Inbox,
        Archive,
    }

    #[test]
    fn a_derived_schema_keeps_its_definitions_and_validates_as_the_type_parses() {
        let schema = ConfigSchema::of::<Nested>().prop("extra", Prop::boolean("Extra")).to_value();
        assert_eq!(schema["required"], json!(["place"]));
        assert_eq!(schema["properties"]["place"]["$ref"], "#/$defs/Place");
        assert_eq!(schema["$defs"]["Place"]["enum"], json!(["inbox", "archive"]));
        assert_eq!(schema["properties"]["extra"]["type"], "boolean");
        assert!(schema.get("title").is_none(), "the type's name is not the config's title");
    }
}
