//! Where a request goes, read by the host itself: an absolute `http` or
//! `https` URL, normalized before it is matched against the grant, so that
//! no spelling of a host (upper case, a trailing dot, punycode or Unicode,
//! `2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`) reaches what its canonical
//! form would not. A relative URL is refused: nothing in a request a
//! connector makes may borrow its authority from elsewhere.

use std::net::IpAddr;

use super::HttpError;
use crate::capabilities::grant::{HostPattern, Origin};

/// A request target after normalization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The parsed URL (fragment removed).
    pub url: url::Url,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The host, lower-case ASCII, no trailing dot; or an IP address.
    pub host: Host,
    /// The port, explicit or the scheme's default.
    pub port: u16,
}

/// A request's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name (ASCII, punycode for international names).
    Name(String),
    /// An IP literal in any of its spellings, as the address it names.
    Ip(IpAddr),
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl Target {
    /// Parses and normalizes an absolute URL.
    pub fn parse(text: &str) -> Result<Target, HttpError> {
        let shown = crate::contract::cut(text, 200);
        let invalid = |why: &str| HttpError::InvalidRequest(format!("{why}: {shown}"));
        let mut url = match url::Url::parse(text) {
            Ok(url) => url,
            Err(url::ParseError::RelativeUrlWithoutBase) => return Err(invalid("not an absolute URL")),
            Err(error) => return Err(invalid(&format!("not a valid URL ({error})"))),
        };
        url.set_fragment(None);
        Target::from_url(url).map_err(invalid)
    }

    /// Normalizes an already parsed URL (a redirect's location).
    pub fn from_url(mut url: url::Url) -> Result<Target, &'static str> {
        let scheme = match url.scheme() {
            "https" => "https",
            "http" => "http",
            _ => return Err("only http and https URLs"),
        };
        // Credentials belong in headers, where they are not logged with the URL.
        if !url.username().is_empty() || url.password().is_some() {
            return Err("credentials in the URL");
        }
        let host = match url.host() {
            Some(url::Host::Domain(name)) => {
                let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
                if name.is_empty() {
                    return Err("no host");
                }
                Host::Name(name)
            }
            Some(url::Host::Ipv4(ip)) => Host::Ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Host::Ip(ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4)),
            None => return Err("no host"),
        };
        let port = url.port_or_known_default().ok_or("no port")?;
        // What is sent and what was checked must be the same host.
        let canonical = host.to_string();
        if url.host_str() != Some(canonical.as_str()) && url.set_host(Some(&canonical)).is_err() {
            return Err("host cannot be normalized");
        }
        Ok(Target { url, scheme, host, port })
    }

    /// The granted origin this target falls under, if any. A wildcard never
    /// covers an IP address, and an IP literal matches only the address
    /// the grant names.
    pub fn granted_by<'a>(&self, origins: &'a [Origin]) -> Option<&'a Origin> {
        origins.iter().find(|origin| {
            origin.scheme == self.scheme
                && origin.port == self.port
                && match (&origin.host, &self.host) {
                    (HostPattern::Exact(allowed), Host::Name(name)) => allowed == name,
                    (HostPattern::Exact(allowed), Host::Ip(ip)) => allowed.parse::<IpAddr>().is_ok_and(|a| a == *ip),
                    (HostPattern::Subdomains(suffix), Host::Name(name)) => HostPattern::is_below(name, suffix),
                    (HostPattern::Subdomains(_), Host::Ip(_)) => false,
                }
        })
    }

    /// The `Host` header: the host, and the port unless the scheme's default.
    pub fn host_header(&self) -> String {
        match (self.scheme, self.port) {
            ("https", 443) | ("http", 80) => self.host.to_string(),
            (_, port) => format!("{}:{port}", self.host),
        }
    }

    /// The name TLS verifies the server's certificate against: the DNS
    /// name, or the IP address (without brackets).
    pub fn tls_name(&self) -> String {
        match &self.host {
            Host::Name(name) => name.clone(),
            Host::Ip(ip) => ip.to_string(),
        }
    }

    /// `scheme://host:port`, for messages.
    pub fn origin(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }

    /// The path and query, as sent in the request line.
    pub fn request_target(&self) -> &str {
        &self.url[url::Position::BeforePath..url::Position::AfterQuery]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(text: &str) -> Host {
        Target::parse(text).unwrap_or_else(|e| panic!("{text}: {e}")).host
    }

    fn ip(text: &str) -> Host {
        Host::Ip(text.parse().unwrap_or_else(|e| panic!("{text}: {e}")))
    }

    #[test]
    fn every_spelling_of_a_host_is_normalized() {
        assert_eq!(host("https://API.Example.COM./x"), Host::Name("api.example.com".into()));
        assert_eq!(host("https://bücher.example/"), Host::Name("xn--bcher-kva.example".into()));
        for loopback in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
        ] {
            assert_eq!(host(loopback), ip("127.0.0.1"), "{loopback}");
        }
        assert_eq!(host("http://0xa9.0xfe.0xa9.0xfe/latest"), ip("169.254.169.254"));
        assert_eq!(host("http://[::1]:8080/"), ip("::1"));
    }

    #[test]
    fn relative_credentialed_and_other_scheme_urls_are_refused() {
        for bad in ["/api/hooks", "//evil.example/x", "api.example.com/x", "https://user:pw@api.example.com/",
                    "https://api.example.com@127.0.0.1/", "file:///etc/passwd", "ftp://api.example.com/", "https://"] {
            assert!(matches!(Target::parse(bad), Err(HttpError::InvalidRequest(_))), "{bad}");
        }
    }

    #[test]
    fn the_sent_url_carries_the_checked_host() {
        let target = Target::parse("http://0x7f.1:9000/a?b=1#frag").expect("parses");
        assert_eq!(target.url.as_str(), "http://127.0.0.1:9000/a?b=1");
        assert_eq!(target.request_target(), "/a?b=1");
        assert_eq!(target.origin(), "http://127.0.0.1:9000");
    }

    #[test]
    fn grants_match_scheme_port_and_host_exactly() {
        let origins: Vec<Origin> = ["https://api.example.com", "https://*.hooks.example.com", "http://127.0.0.1:9000"]
            .iter()
            .map(|o| Origin::parse(o).expect("origin"))
            .collect();
        let granted = |url: &str| Target::parse(url).expect("parses").granted_by(&origins).is_some();
        assert!(granted("https://API.example.com./v1"));
        assert!(granted("https://eu.hooks.example.com/"));
        assert!(granted("http://2130706433:9000/"));
        assert!(granted("http://[::ffff:127.0.0.1]:9000/"));
        assert!(!granted("http://api.example.com/"), "scheme");
        assert!(!granted("https://api.example.com:8443/"), "port");
        assert!(!granted("https://hooks.example.com/"), "a wildcard does not cover its suffix");
        assert!(!granted("https://evilhooks.example.com/"));
        assert!(!granted("http://127.0.0.2:9000/"));
        assert!(!granted("http://localhost:9000/"));
    }
}
