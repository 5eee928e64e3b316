//! How a connector authenticates to its provider (the manifest's `auth`),
//! and the credentials a call sees. Contract 0.2.0 and later; a 0.1.0
//! connector's auth is `none`.

use serde::{Deserialize, Serialize};

/// Longest label, description, URL, scope or parameter accepted.
const MAX_TEXT: usize = 2 * 1024;
/// Most scopes or extra parameters accepted.
const MAX_ITEMS: usize = 64;
/// Largest custom credential schema accepted, in bytes.
const MAX_SCHEMA: usize = 64 * 1024;

/// OAuth2's authorization-code flow, which the host runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuth2Auth {
    /// The provider's authorization endpoint.
    pub authorize_url: String,
    /// The provider's token endpoint.
    pub token_url: String,
    /// Scopes to ask for.
    pub scopes: Vec<String>,
    /// Whether to send a PKCE code challenge (S256).
    pub pkce: bool,
    /// More query parameters for the authorization URL.
    pub extra_params: Vec<(String, String)>,
}

/// How a connector authenticates: what a connection for it holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Auth {
    /// No account credentials.
    #[default]
    None,
    /// One API key or token.
    SecretText {
        /// What the provider calls it.
        label: String,
        /// Where the operator finds it.
        description: String,
    },
    /// Several props, described by a JSON Schema object.
    Custom {
        /// The schema, JSON text.
        schema: String,
    },
    /// OAuth2, run by the host.
    #[serde(rename = "oauth2")]
    OAuth2(OAuth2Auth),
}

/// An OAuth2 access token, as a call sees it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessToken {
    /// The token.
    pub token: String,
    /// When it expires (Unix ms), if known.
    pub expires_at_ms: Option<u64>,
    /// The scopes granted.
    pub scopes: Vec<String>,
}

/// The credentials of a trigger's connection. Its `Debug` shows the kind,
/// never the values.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum Credentials {
    /// The API key.
    SecretText(String),
    /// The props, a JSON object as text.
    Custom(String),
    /// The current access token.
    #[serde(rename = "oauth2")]
    OAuth2(AccessToken),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::SecretText(_) => "Credentials::SecretText(<redacted>)",
            Credentials::Custom(_) => "Credentials::Custom(<redacted>)",
            Credentials::OAuth2(_) => "Credentials::OAuth2(<redacted>)",
        })
    }
}

impl Auth {
    /// Adds a sentence per problem to `problems`.
    pub(crate) fn validate(&self, problems: &mut Vec<String>) {
        let mut text = |field: &str, value: &str| {
            if value.len() > MAX_TEXT {
                problems.push(format!("auth.{field} is longer than {MAX_TEXT} bytes"));
            }
        };
        match self {
            Auth::None => {}
            Auth::SecretText { label, description } => {
                text("label", label);
                text("description", description);
            }
            Auth::Custom { schema } => {
                if schema.len() > MAX_SCHEMA {
                    problems.push(format!("auth.custom schema is larger than {MAX_SCHEMA} bytes"));
                } else if !serde_json::from_str::<serde_json::Value>(schema)
                    .is_ok_and(|s| s.get("type").and_then(serde_json::Value::as_str) == Some("object"))
                {
                    problems.push("auth.custom must be a JSON Schema of \"type\": \"object\"".into());
                }
            }
            Auth::OAuth2(oauth) => oauth.validate(problems),
        }
    }
}

impl OAuth2Auth {
    fn validate(&self, problems: &mut Vec<String>) {
        for (field, value) in [("authorize-url", &self.authorize_url), ("token-url", &self.token_url)] {
            if let Err(why) = check_endpoint(value) {
                problems.push(format!("auth.oauth2.{field} {why}"));
            }
        }
        if self.scopes.len() > MAX_ITEMS || self.extra_params.len() > MAX_ITEMS {
            problems.push(format!("auth.oauth2 has more than {MAX_ITEMS} scopes or extra params"));
        }
        let texts = self.scopes.iter().chain(self.extra_params.iter().flat_map(|(k, v)| [k, v]));
        if texts.into_iter().any(|t| t.len() > MAX_TEXT) {
            problems.push(format!("auth.oauth2 has a scope or param longer than {MAX_TEXT} bytes"));
        }
    }
}

/// An OAuth2 endpoint must be `https://`, or `http://` on a loopback
/// address (a provider under test, or a local development server).
pub(crate) fn check_endpoint(text: &str) -> Result<(), String> {
    if text.len() > MAX_TEXT {
        return Err(format!("is longer than {MAX_TEXT} bytes"));
    }
    let url = url::Url::parse(text).map_err(|e| format!("is not a URL: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err("must be an https:// URL (http:// only on a loopback address)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth(authorize: &str) -> Auth {
        Auth::OAuth2(OAuth2Auth {
            authorize_url: authorize.into(),
            token_url: "https://oauth2.googleapis.com/token".into(),
            scopes: vec!["https://www.googleapis.com/auth/gmail.readonly".into()],
            pkce: true,
            extra_params: vec![("access_type".into(), "offline".into())],
        })
    }

    fn problems(auth: &Auth) -> Vec<String> {
        let mut problems = Vec::new();
        auth.validate(&mut problems);
        problems
    }

    #[test]
    fn oauth2_endpoints_must_be_https_or_loopback() {
        assert!(problems(&oauth("https://accounts.google.com/o/oauth2/v2/auth")).is_empty());
        assert!(problems(&oauth("http://127.0.0.1:8000/authorize")).is_empty());
        let plain = problems(&oauth("http://accounts.example.com/authorize"));
        assert_eq!(plain.len(), 1, "{plain:?}");
        assert!(plain[0].starts_with("auth.oauth2.authorize-url must be an https:// URL"), "{plain:?}");
        assert!(!problems(&oauth("javascript:alert(1)")).is_empty());
    }

    #[test]
    fn custom_auth_is_an_object_schema() {
        assert!(problems(&Auth::Custom { schema: r#"{"type":"object"}"#.into() }).is_empty());
        assert!(!problems(&Auth::Custom { schema: r#"{"type":"string"}"#.into() }).is_empty());
        assert!(!problems(&Auth::Custom { schema: "not json".into() }).is_empty());
    }

    #[test]
    fn credentials_never_print() {
        let token = Credentials::OAuth2(AccessToken { token: "ya29.secret".into(), expires_at_ms: None, scopes: vec![] });
        assert!(!format!("{token:?}").contains("ya29"));
        assert!(!format!("{:?}", Credentials::SecretText("sk_live".into())).contains("sk_live"));
    }

    #[test]
    fn a_manifest_stored_before_auth_existed_reads_as_none() {
        #[derive(Deserialize)]
        struct Stored {
            #[serde(default)]
            auth: Auth,
        }
        let stored: Stored = serde_json::from_str("{}").unwrap_or(Stored { auth: oauth("https://x.example") });
        assert_eq!(stored.auth, Auth::None);
        let round: Auth = serde_json::from_value(serde_json::to_value(oauth("https://a.example/auth")).unwrap_or_default())
            .unwrap_or_default();
        assert_eq!(round, oauth("https://a.example/auth"));
    }
}
