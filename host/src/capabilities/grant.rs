//! What a plugin may use: the capabilities its manifest requests,
//! intersected with what the operator allows. Empty means deny, never
//! allow-all; a request the operator does not cover is reported as missing.
//!
//! The operator allows origins (`https://api.github.com`,
//! `https://*.example.com`, `http://127.0.0.1:9000`); a manifest requests
//! host names (`api.github.com`, `*.example.com`). A wildcard covers
//! subdomains only, never the bare suffix.

use serde::{Deserialize, Serialize};

use crate::contract::CapabilityRequest;

/// A host name, or every strict subdomain of a suffix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostPattern {
    /// This host only.
    Exact(String),
    /// Any host ending in `.<suffix>`, not `<suffix>` itself.
    Subdomains(String),
}

impl HostPattern {
    /// Parses `api.example.com`, `*.example.com` (lower-case, no trailing
    /// dot) or an IP address. An IPv4 address in any spelling
    /// (`2130706433`, `0x7f.1`) is kept as the address it names.
    pub fn parse(text: &str) -> Result<HostPattern, GrantError> {
        let invalid = || GrantError::InvalidHost(crate::contract::cut(text, 80).to_owned());
        if let Some(ip) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            let ip: std::net::Ipv6Addr = ip.parse().map_err(|_| invalid())?;
            let ip = ip.to_ipv4_mapped().map_or(std::net::IpAddr::V6(ip), std::net::IpAddr::V4);
            return Ok(HostPattern::Exact(ip.to_string()));
        }
        let (wildcard, host) = match text.strip_prefix("*.") {
            Some(suffix) => (true, suffix),
            None => (false, text),
        };
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if host.is_empty() || host.len() > 253 || !host.split('.').all(valid_label) {
            return Err(invalid());
        }
        // `*.com` would allow a whole top-level domain; no top-level domain
        // is numeric, so `*.0.1` could only ever mean addresses.
        let numeric_tld = host.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()));
        if wildcard && (!host.contains('.') || numeric_tld) {
            return Err(invalid());
        }
        if !wildcard && let Ok(url::Host::Ipv4(ip)) = url::Host::parse(host) {
            return Ok(HostPattern::Exact(ip.to_string()));
        }
        Ok(if wildcard { HostPattern::Subdomains(host.to_owned()) } else { HostPattern::Exact(host.to_owned()) })
    }

    /// Whether `host` is a strict subdomain of `suffix`.
    pub(crate) fn is_below(host: &str, suffix: &str) -> bool {
        host.len() > suffix.len() + 1 && host.ends_with(suffix) && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
    }

    /// The hosts both patterns cover, as one pattern, if any.
    pub fn intersect(&self, other: &HostPattern) -> Option<HostPattern> {
        use HostPattern::{Exact, Subdomains};
        match (self, other) {
            (Exact(a), Exact(b)) => (a == b).then(|| self.clone()),
            (Subdomains(suffix), Exact(host)) | (Exact(host), Subdomains(suffix)) => {
                Self::is_below(host, suffix).then(|| Exact(host.clone()))
            }
            (Subdomains(a), Subdomains(b)) if a == b => Some(self.clone()),
            (Subdomains(a), Subdomains(b)) if Self::is_below(a, b) => Some(self.clone()),
            (Subdomains(a), Subdomains(b)) if Self::is_below(b, a) => Some(other.clone()),
            (Subdomains(_), Subdomains(_)) => None,
        }
    }
}

/// An origin the operator allows: scheme, host pattern and port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Origin {
    /// `https`, or `http` where the operator names it.
    pub scheme: String,
    /// The host or hosts.
    pub host: HostPattern,
    /// The port (443 or 80 when not written).
    pub port: u16,
}

impl Origin {
    /// Parses `https://host[:port]`, `https://*.suffix[:port]` or an explicit
    /// `http://` origin; no path, query, userinfo or trailing dot.
    pub fn parse(text: &str) -> Result<Origin, GrantError> {
        let invalid = || GrantError::InvalidOrigin(crate::contract::cut(text, 80).to_owned());
        let (scheme, rest) = text.split_once("://").ok_or_else(invalid)?;
        let default_port = match scheme {
            "https" => 443,
            "http" => 80,
            _ => return Err(invalid()),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(invalid());
        }
        // `[v6]` or `[v6]:port`; otherwise the last colon starts the port.
        let split = match authority.rfind(']') {
            Some(end) => authority[end..].rfind(':').map(|i| end + i),
            None => authority.rfind(':'),
        };
        let (host, port) = match split {
            Some(i) => (&authority[..i], authority[i + 1..].parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(invalid)?),
            None => (authority, default_port),
        };
        let host = HostPattern::parse(host).map_err(|_| invalid())?;
        Ok(Origin { scheme: scheme.to_owned(), host, port })
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = match &self.host {
            HostPattern::Exact(host) if host.contains(':') => format!("[{host}]"),
            HostPattern::Exact(host) => host.clone(),
            HostPattern::Subdomains(suffix) => format!("*.{suffix}"),
        };
        write!(f, "{}://{host}:{}", self.scheme, self.port)
    }
}

/// What the operator allows a plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowance {
    /// Origins outbound HTTP may reach.
    pub outbound: Vec<Origin>,
    /// Whether the per-trigger key-value store may be used.
    pub key_value: bool,
    /// The plugin's own limits, where they differ from the host's defaults.
    #[serde(default)]
    pub limits: LimitOverrides,
    /// Whether a trigger's calls may reuse one instance, and for how long.
    #[serde(default)]
    pub reuse: Option<Reuse>,
}

/// Instance reuse, for connectors that are slow to instantiate (an
/// interpreter inside): one instance serves one trigger only, one call at a
/// time, for at most `max_calls` calls and `max_age_s` seconds, and is
/// discarded after any trap or limit hit. What a guest keeps in its globals
/// lives that long; its kv writes and outbound requests are still the
/// call's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reuse {
    /// Calls one instance serves at most.
    pub max_calls: u32,
    /// Seconds one instance lives at most.
    pub max_age_s: u32,
}

impl Reuse {
    /// Longest life an operator may give an instance.
    pub const MAX_AGE_S: u32 = 3600;
    /// Most calls an operator may let one instance serve.
    pub const MAX_CALLS: u32 = 1_000_000;

    /// Checks the bounds; the error names the field at fault.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=Self::MAX_CALLS).contains(&self.max_calls) {
            return Err(format!("reuse.max_calls must be 1 to {}", Self::MAX_CALLS));
        }
        if !(1..=Self::MAX_AGE_S).contains(&self.max_age_s) {
            return Err(format!("reuse.max_age_s must be 1 to {}", Self::MAX_AGE_S));
        }
        Ok(())
    }
}

/// Per-plugin limits the operator sets in a grant; unset ones keep the
/// host's defaults. The runtime checks them against the host's maxima
/// (`Limits::with_overrides`). Names are those of the `[limits]` config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// Fuel per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Wall-clock milliseconds per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_clock_ms: Option<u64>,
    /// Linear memory per call, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// Events per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_events: Option<u64>,
    /// Output bytes per call (at most the host's default: ingress buffers are sized by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_bytes: Option<u64>,
    /// Log bytes kept per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_log_bytes: Option<u64>,
    /// Keys one trigger may keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_max_keys: Option<u64>,
    /// Bytes of one kv value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_max_value_bytes: Option<u64>,
    /// Bytes of all of a trigger's kv entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_max_total_bytes: Option<u64>,
    /// Outbound requests per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_requests_per_call: Option<u64>,
    /// Bytes of one outbound response body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_max_response_bytes: Option<u64>,
}

/// What a plugin may use: its request intersected with the allowance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// Origins outbound HTTP may reach, sorted, without repeats.
    pub outbound: Vec<Origin>,
    /// Whether the key-value store may be used.
    pub key_value: bool,
    /// Requested capabilities the allowance does not cover, one line each.
    pub missing: Vec<String>,
    /// Instance reuse, if the operator allows it (never requested).
    pub reuse: Option<Reuse>,
}

impl Grant {
    /// The request, narrowed to what `allowance` covers. A requested host
    /// that is not a valid pattern is missing, not granted.
    pub fn new(request: &CapabilityRequest, allowance: &Allowance) -> Grant {
        let mut grant = Grant::default();
        for requested in &request.outbound_hosts {
            // `*` asks for whatever the operator allows, and gets exactly that.
            let covered: Vec<Origin> = match HostPattern::parse(requested) {
                _ if requested == crate::contract::manifest::ANY_HOST => allowance.outbound.clone(),
                Ok(pattern) => allowance
                    .outbound
                    .iter()
                    .filter_map(|allowed| {
                        let host = allowed.host.intersect(&pattern)?;
                        Some(Origin { host, ..allowed.clone() })
                    })
                    .collect(),
                Err(_) => Vec::new(),
            };
            if covered.is_empty() {
                grant.missing.push(format!("outbound host {requested}"));
            }
            grant.outbound.extend(covered);
        }
        grant.outbound.sort();
        grant.outbound.dedup();
        grant.key_value = request.key_value && allowance.key_value;
        if request.key_value && !allowance.key_value {
            grant.missing.push("key-value store".into());
        }
        grant.reuse = allowance.reuse;
        grant
    }

    /// Whether everything requested is granted.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }
}

/// A grant entry that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// Not `scheme://host[:port]` with scheme `https` or `http`.
    #[error("origin {0:?} must be https://host[:port], https://*.suffix[:port] or http://host[:port]")]
    InvalidOrigin(String),
    /// Not a lower-case host name or `*.suffix` with at least two labels.
    #[error("host {0:?} must be a lower-case host name or *.domain.tld")]
    InvalidHost(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(text: &str) -> Origin {
        Origin::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn request(hosts: &[&str], key_value: bool) -> CapabilityRequest {
        CapabilityRequest { outbound_hosts: hosts.iter().map(|h| (*h).to_owned()).collect(), key_value }
    }

    fn shown(grant: &Grant) -> Vec<String> {
        grant.outbound.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn origins_parse_with_default_ports_and_refuse_everything_else() {
        assert_eq!(origin("https://api.github.com").to_string(), "https://api.github.com:443");
        assert_eq!(origin("https://*.example.com:8443").to_string(), "https://*.example.com:8443");
        assert_eq!(origin("http://127.0.0.1:9000").to_string(), "http://127.0.0.1:9000");
        // An address is kept as the address it names, however it is spelled.
        assert_eq!(origin("http://2130706433:9000").to_string(), "http://127.0.0.1:9000");
        assert_eq!(origin("http://0x7f.1").to_string(), "http://127.0.0.1:80");
        assert_eq!(origin("http://[::1]:9000").to_string(), "http://[::1]:9000");
        assert_eq!(origin("http://[::ffff:127.0.0.1]").to_string(), "http://127.0.0.1:80");
        for bad in [
            "api.github.com",
            "ftp://api.github.com",
            "https://",
            "https://user@api.github.com",
            "https://api.github.com/repos",
            "https://API.github.com",
            "https://api.github.com.",
            "https://*.com",
            "https://api.github.com:0",
            "https://api.github.com:99999",
            "https://*",
            "https://*.0.0.1",
            "http://[::1",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_wildcard_covers_subdomains_not_the_suffix() {
        let wildcard = HostPattern::parse("*.example.com").expect("pattern");
        let exact = |h: &str| HostPattern::Exact(h.into());
        assert_eq!(wildcard.intersect(&exact("api.example.com")), Some(exact("api.example.com")));
        assert_eq!(wildcard.intersect(&exact("a.b.example.com")), Some(exact("a.b.example.com")));
        assert_eq!(wildcard.intersect(&exact("example.com")), None);
        assert_eq!(wildcard.intersect(&exact("evilexample.com")), None);
        let narrower = HostPattern::Subdomains("eu.example.com".into());
        assert_eq!(wildcard.intersect(&narrower), Some(narrower.clone()));
        assert_eq!(narrower.intersect(&wildcard), Some(narrower));
        assert_eq!(wildcard.intersect(&HostPattern::Subdomains("example.org".into())), None);
    }

    #[test]
    fn a_grant_is_the_request_narrowed_to_the_allowance() {
        let allowance = Allowance {
            outbound: vec![origin("https://api.github.com"), origin("https://*.example.com"), origin("http://127.0.0.1:9000")],
            key_value: true,
            ..Allowance::default()
        };
        let grant = Grant::new(&request(&["api.github.com", "*.eu.example.com", "127.0.0.1", "hooks.slack.com"], true), &allowance);
        assert_eq!(
            shown(&grant),
            ["http://127.0.0.1:9000", "https://api.github.com:443", "https://*.eu.example.com:443"]
        );
        assert!(grant.key_value);
        assert_eq!(grant.missing, ["outbound host hooks.slack.com"]);
        assert!(!grant.is_complete());
    }

    #[test]
    fn a_request_for_any_host_gets_exactly_what_is_allowed() {
        let grant = Grant::new(&request(&["*"], false), &Allowance::default());
        assert!(grant.outbound.is_empty());
        assert_eq!(grant.missing, ["outbound host *"]);
        let allowance = Allowance { outbound: vec![origin("https://feeds.example.com")], ..Allowance::default() };
        let grant = Grant::new(&request(&["*"], false), &allowance);
        assert_eq!(shown(&grant), ["https://feeds.example.com:443"]);
        assert!(grant.is_complete());
    }

    #[test]
    fn nothing_allowed_grants_nothing() {
        let grant = Grant::new(&request(&["api.github.com"], true), &Allowance::default());
        assert!(grant.outbound.is_empty() && !grant.key_value);
        assert_eq!(grant.missing, ["outbound host api.github.com", "key-value store"]);
        // Allowed but not requested is not granted either.
        let allowance = Allowance { outbound: vec![origin("https://api.github.com")], key_value: true, ..Allowance::default() };
        let grant = Grant::new(&request(&[], false), &allowance);
        assert_eq!(grant, Grant::default());
        assert!(grant.is_complete());
    }
}
