//! Which object URLs `includeObjects` may fetch (a guard against server-side request forgery through point
//! payloads): `s3://` objects are read through the configured S3 endpoint and credentials; an `http(s)://`
//! object only from a source on the monitor's allow-list (a host, `host:port`, or a URL prefix), and never
//! from a loopback, link-local (169.254.0.0/16 and fe80::/10, where cloud metadata services live), private,
//! shared or otherwise special address unless private addresses are allowed explicitly. The decisions are
//! pure; [`GuardedResolver`] applies the address rule to every name the HTTP client resolves (redirects and
//! DNS answers that change between check and connect included).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;

/// One allow-list entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedSource {
    /// Any URL on this host (lowercase), on any port or only on `port`.
    Host { host: String, port: Option<u16> },
    /// URLs starting with this (normalized) URL.
    Prefix(String),
}

impl AllowedSource {
    /// Parses `cdn.example.com`, `cdn.example.com:8443`, `[fd00::1]:80` or `https://cdn.example.com/frames/`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.contains("://") {
            let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(format!(
                    "{text:?}: a URL prefix must be an http(s) URL with a host"
                ));
            }
            return Ok(AllowedSource::Prefix(url.to_string()));
        }
        let url = Url::parse(&format!("http://{text}/"))
            .map_err(|e| format!("{text:?} is neither a host, host:port nor a URL prefix: {e}"))?;
        match (url.host_str(), url.path()) {
            (Some(host), "/") if url.username().is_empty() && url.query().is_none() => {
                Ok(AllowedSource::Host {
                    host: host.to_string(),
                    port: url.port(),
                })
            }
            _ => Err(format!("{text:?} is neither a host, host:port nor a URL prefix")),
        }
    }

    fn matches(&self, url: &Url) -> bool {
        match self {
            AllowedSource::Host { host, port } => {
                url.host_str() == Some(host.as_str())
                    && port.is_none_or(|p| url.port_or_known_default() == Some(p))
            }
            AllowedSource::Prefix(prefix) => url.as_str().starts_with(prefix.as_str()),
        }
    }
}

/// What `includeObjects` may reach over http(s).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourcePolicy {
    pub allowed: Vec<AllowedSource>,
    /// Loopback, private, link-local and other special addresses too.
    pub allow_private_addresses: bool,
}

/// Why an address is refused, or `None` when it is an ordinary public address.
pub fn special_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_link_local() {
        Some("link-local (cloud metadata)")
    } else if ip.is_private() {
        Some("private")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if a == 0 || ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("broadcast, multicast or reserved")
    } else if (a == 192 && b == 0 && c == 0) || (a == 198 && (b == 18 || b == 19)) {
        Some("reserved")
    } else {
        None
    }
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return special_v4(v4);
    }
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local (cloud metadata)")
    } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 {
        Some("private")
    } else if ip.is_multicast() {
        Some("broadcast, multicast or reserved")
    } else if ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64: the IPv4 address it stands for decides.
        let [.., hi, lo] = ip.segments();
        special_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)))
    } else {
        None
    }
}

impl SourcePolicy {
    /// Why `uri` (an http(s) URL) may not be fetched, judged on its text; `None` when it may (its host's
    /// addresses are judged again when resolved).
    pub fn refusal(&self, uri: &str) -> Option<String> {
        let Ok(url) = Url::parse(uri) else {
            return Some("not a URL".to_string());
        };
        self.refusal_of(&url)
    }

    /// [`Self::refusal`] of a parsed URL (also used for every redirect).
    pub fn refusal_of(&self, url: &Url) -> Option<String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Some("unsupported URI scheme (need s3://, https:// or http://)".to_string());
        }
        if !self.allowed.iter().any(|a| a.matches(url)) {
            return Some(format!(
                "{} is not in includeObjects.allowedSources",
                crate::job::redact::redact_urls(url.as_str())
            ));
        }
        // An address written into the URL is never resolved: judge it here.
        let ip = url
            .host_str()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|h| h.parse::<IpAddr>().ok());
        ip.and_then(|ip| self.address_refusal(ip))
    }

    /// Why connecting to `ip` is refused.
    pub fn address_refusal(&self, ip: IpAddr) -> Option<String> {
        if self.allow_private_addresses {
            return None;
        }
        special_address(ip).map(|class| {
            format!("{ip} is a {class} address; set includeObjects.allowPrivateAddresses to fetch from it")
        })
    }

    /// The addresses of `host` that may be connected to, or why none may.
    pub fn filter_addresses(&self, host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, String> {
        let mut refused = None;
        let allowed: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| match self.address_refusal(a.ip()) {
                None => true,
                Some(why) => {
                    refused.get_or_insert(why);
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), refused) {
            (false, _) => Ok(allowed),
            (true, Some(why)) => Err(format!("{host} resolves only to refused addresses: {why}")),
            (true, None) => Err(format!("{host} does not resolve")),
        }
    }
}

/// A DNS resolver for the object client that drops refused addresses from every answer.
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    pub policy: Arc<SourcePolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = policy.filter_addresses(&host, addrs)?;
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str]) -> SourcePolicy {
        SourcePolicy {
            allowed: allowed.iter().map(|a| AllowedSource::parse(a).unwrap()).collect(),
            allow_private_addresses: false,
        }
    }

    #[test]
    fn without_an_allow_list_no_http_object_is_fetched() {
        let why = SourcePolicy::default()
            .refusal("https://cdn.example.com/frames/1.jpg?sig=SECRET")
            .unwrap();
        assert_eq!(
            why,
            "https://cdn.example.com is not in includeObjects.allowedSources"
        );
    }

    #[test]
    fn hosts_ports_and_prefixes_allow_exactly_what_they_name() {
        let p = policy(&[
            "cdn.example.com",
            "media.example.com:8443",
            "https://store.example.com/frames/",
        ]);
        assert_eq!(p.refusal("https://cdn.example.com/a.jpg"), None);
        assert_eq!(p.refusal("http://CDN.example.com:8080/a.jpg"), None);
        assert!(p.refusal("https://cdn.example.com.evil.net/a.jpg").is_some());
        assert_eq!(p.refusal("https://media.example.com:8443/a.jpg"), None);
        assert!(
            p.refusal("https://media.example.com/a.jpg").is_some(),
            "port 443 is not 8443"
        );
        assert_eq!(p.refusal("https://store.example.com/frames/cam/1.jpg"), None);
        assert!(p.refusal("https://store.example.com/private/1.jpg").is_some());
        assert!(
            p.refusal("http://store.example.com/frames/1.jpg").is_some(),
            "scheme is part of a prefix"
        );
        assert!(p.refusal("ftp://cdn.example.com/a.jpg").is_some());
        assert!(p.refusal("not a url").is_some());
    }

    #[test]
    fn allow_list_entries_that_are_neither_hosts_nor_prefixes_are_refused() {
        assert!(AllowedSource::parse("ftp://x/").is_err());
        assert!(AllowedSource::parse("host/path").is_err());
        assert!(AllowedSource::parse("user@host").is_err());
        assert_eq!(
            AllowedSource::parse("[fd00::1]:80").unwrap(),
            AllowedSource::Host {
                host: "[fd00::1]".into(),
                port: None
            },
            "80 is http's default port, so any port matches"
        );
    }

    #[test]
    fn each_class_of_special_address_is_refused_even_for_an_allowed_host() {
        let cases = [
            ("http://127.0.0.1/x", "loopback"),
            ("http://127.8.9.10/x", "loopback"),
            ("http://[::1]/x", "loopback"),
            ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://[fe80::1]/x", "link-local"),
            ("http://10.0.0.5/x", "private"),
            ("http://172.16.3.4/x", "private"),
            ("http://192.168.1.1/x", "private"),
            ("http://[fd12:3456::1]/x", "private"),
            ("http://100.64.0.1/x", "shared"),
            ("http://0.0.0.0/x", "unspecified"),
            ("http://[::]/x", "unspecified"),
            ("http://224.0.0.1/x", "multicast"),
            ("http://[::ffff:169.254.169.254]/x", "link-local"),
            ("http://[64:ff9b::a9fe:a9fe]/x", "link-local"),
        ];
        for (uri, class) in cases {
            let host = Url::parse(uri).unwrap().host_str().unwrap().to_string();
            let p = policy(&[host.as_str()]);
            let why = p.refusal(uri).unwrap_or_else(|| panic!("{uri} was not refused"));
            assert!(why.contains(class), "{uri}: {why}");
            assert!(why.contains("allowPrivateAddresses"), "{why}");
            let explicit = SourcePolicy {
                allow_private_addresses: true,
                ..p
            };
            assert_eq!(explicit.refusal(uri), None, "{uri} is allowed explicitly");
        }
        let public = policy(&["93.184.215.14", "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]"]);
        assert_eq!(public.refusal("http://93.184.215.14/x"), None);
        assert_eq!(
            public.refusal("http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/x"),
            None
        );
    }

    #[test]
    fn a_name_that_resolves_only_to_refused_addresses_is_refused() {
        let p = policy(&["cdn.example.com"]);
        let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let metadata: SocketAddr = "169.254.169.254:0".parse().unwrap();
        let public: SocketAddr = "93.184.215.14:0".parse().unwrap();
        let err = p
            .filter_addresses("cdn.example.com", vec![local, metadata])
            .unwrap_err();
        assert!(err.contains("resolves only to refused addresses"), "{err}");
        assert_eq!(
            p.filter_addresses("cdn.example.com", vec![metadata, public]),
            Ok(vec![public])
        );
        assert!(p.filter_addresses("nowhere", vec![]).is_err());
    }
}
