//! What the operator grants each plugin (`[plugins.grants.<id>]`): the capabilities it may use
//! and the values of its variables, and where it may send HTTP requests ([`OutboundRule`]). Deny by default: a plugin that asks for more than its grant
//! does not load.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The grant of one plugin. Written as a table:
///
/// ```toml
/// [plugins.grants.webhook-notifier]
/// clock = true
/// key_value_quota_kib = 1024
/// [plugins.grants.webhook-notifier.variables]
/// webhook_url = "http://127.0.0.1:9000/hook"
/// webhook_secret = { env = "WEBHOOK_SECRET" }   # or { file = "/path" }, or a literal
/// ```
///
/// or, as before there were tables, as a list of capability names (`["clock"]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PluginGrant {
    /// The real time (without it a plugin's clocks read zero).
    pub clock: bool,
    /// Key-value state, up to this many KiB of keys and values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_value_quota_kib: Option<u64>,
    /// Variables by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, VariableValue>,
    /// Where it may send HTTP requests (also within what its manifest asks); `None` grants no
    /// outbound HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound_http: Option<Vec<OutboundRule>>,
}

/// Where a plugin may send HTTP requests: `scheme://host[:port]`, as a manifest asks
/// (`outbound_http = [...]`) and a grant allows. The scheme is `http` or `https`; the host a
/// name, `*.` and a domain (any name below it), `*` (any host), or an IP address (`[…]` for
/// IPv6); the port a number, `*` for any, or left out for the scheme's own (80 or 443). A path
/// is not part of it. Only a rule with an IP address reaches a non-public address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRule {
    text: String,
    pub https: bool,
    pub host: RuleHost,
    /// `None` for any port.
    pub port: Option<u16>,
}

/// The host part of an [`OutboundRule`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleHost {
    /// A name, lowercased.
    Name(String),
    /// `*.example.com`: any name below `example.com` (stored as `.example.com`).
    Below(String),
    /// `*`: any host (a manifest asking the operator to choose).
    Any,
    Ip(std::net::IpAddr),
}

impl OutboundRule {
    /// Whether a request to `host` (lowercased, IPv6 without brackets) and `port` over that
    /// scheme matches.
    pub fn matches(&self, https: bool, host: &str, port: u16) -> bool {
        https == self.https
            && self.port.is_none_or(|p| p == port)
            && match &self.host {
                RuleHost::Name(n) => n == host,
                RuleHost::Below(suffix) => host.ends_with(suffix.as_str()),
                RuleHost::Any => true,
                RuleHost::Ip(ip) => host.parse::<std::net::IpAddr>().is_ok_and(|h| h == *ip),
            }
    }

    /// Whether it names this address itself (an address a name resolved to).
    pub fn names_address(&self, https: bool, ip: std::net::IpAddr, port: u16) -> bool {
        https == self.https && self.port.is_none_or(|p| p == port) && self.host == RuleHost::Ip(ip)
    }
}

impl fmt::Display for OutboundRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for OutboundRule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            Err(format!(
                "outbound_http entry `{text}` {why}; write scheme://host[:port], for example \"https://hooks.example.com\" or \"http://127.0.0.1:*\""
            ))
        };
        let (https, rest) = if let Some(r) = text.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = text.strip_prefix("http://") {
            (false, r)
        } else {
            return bad("does not start with http:// or https://");
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return bad("has a path, query or user part");
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let Some((ip, after)) = v6.split_once(']') else {
                return bad("has an unclosed [");
            };
            (format!("[{ip}]"), after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (rest.to_owned(), None),
            }
        };
        let port = match port {
            None => Some(if https { 443 } else { 80 }),
            Some("*") => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => return bad("has a port that is not a number from 1 to 65535 or *"),
            },
        };
        let host = host.to_ascii_lowercase();
        let host = if let Some(ip) = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .or(Some(host.as_str()))
            .and_then(|h| h.parse::<std::net::IpAddr>().ok())
        {
            RuleHost::Ip(ip)
        } else if host == "*" {
            RuleHost::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            if domain.is_empty() || domain.contains('*') {
                return bad("has a wildcard that is not `*.` before a domain");
            }
            RuleHost::Below(format!(".{domain}"))
        } else if host.is_empty()
            || host.contains('*')
            || host.starts_with('[')
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return bad("has no valid host name");
        } else {
            RuleHost::Name(host)
        };
        Ok(Self {
            text: text.to_owned(),
            https,
            host,
            port,
        })
    }
}

impl<'de> Deserialize<'de> for OutboundRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for OutboundRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// The value of a plugin variable: shown by neither `Debug` nor serialisation.
#[derive(Clone, PartialEq, Eq)]
pub struct VariableValue(String);

impl VariableValue {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the plugin that reads it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for VariableValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VariableValue(<redacted>)")
    }
}

impl Serialize for VariableValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for VariableValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct FromEnv {
            env: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Literal(String),
            Env(FromEnv),
        }
        match Form::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "a variable is a string, { env = \"VARIABLE\" } or { file = \"/path\" }",
            )
        })? {
            Form::Literal(s) => Ok(Self(s)),
            Form::Env(FromEnv { env }) => std::env::var(&env).map(Self).map_err(|_| {
                serde::de::Error::custom(format!("environment variable {env} is not set"))
            }),
        }
    }
}

/// Reads the list form of capabilities (`["clock"]`), in a grant or a plugin's manifest: the
/// clock is the only capability a list can name; everything else needs a table.
pub fn clock_from_list(items: &[toml::Value]) -> Result<bool, String> {
    let mut clock = false;
    for item in items {
        match item.as_str() {
            Some("clock") => clock = true,
            _ => {
                return Err(format!(
                    "unknown capability {item}; a list names only \"clock\", a table names the others"
                ));
            }
        }
    }
    Ok(clock)
}

impl<'de> Deserialize<'de> for PluginGrant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            #[serde(default)]
            clock: bool,
            #[serde(default)]
            key_value_quota_kib: Option<u64>,
            #[serde(default)]
            variables: BTreeMap<String, VariableValue>,
            #[serde(default)]
            outbound_http: Option<Vec<OutboundRule>>,
        }
        use serde::de::Error as _;
        match toml::Value::deserialize(d)? {
            toml::Value::Array(items) => Ok(PluginGrant {
                clock: clock_from_list(&items).map_err(D::Error::custom)?,
                ..Default::default()
            }),
            value @ toml::Value::Table(_) => {
                let t = Table::deserialize(value).map_err(D::Error::custom)?;
                if t.key_value_quota_kib == Some(0) {
                    return Err(D::Error::custom(
                        "key_value_quota_kib must be at least 1 (leave it out to grant no key-value state)",
                    ));
                }
                Ok(PluginGrant {
                    clock: t.clock,
                    key_value_quota_kib: t.key_value_quota_kib,
                    variables: t.variables,
                    outbound_http: t.outbound_http,
                })
            }
            other => Err(D::Error::custom(format!(
                "a grant is a table (or a list of capability names), not {}",
                other.type_str()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Wrap {
        g: BTreeMap<String, PluginGrant>,
    }

    #[test]
    fn lists_and_tables_both_grant() {
        // A variable every process has stands in for a secret in the environment.
        let home = std::env::var("PATH").unwrap();
        let w: Wrap = toml::from_str(
            "[g]\nold = [\"clock\"]\n[g.new]\nkey_value_quota_kib = 64\n[g.new.variables]\nurl = \"http://x/\"\nsecret = { env = \"PATH\" }\n",
        )
        .unwrap();
        assert!(w.g["old"].clock);
        assert_eq!(w.g["new"].key_value_quota_kib, Some(64));
        assert_eq!(w.g["new"].variables["secret"].expose(), home);
        let shown = format!("{:?} {}", w.g["new"], toml::to_string(&w.g["new"]).unwrap());
        assert!(
            !shown.contains("s3cret") && !shown.contains("http://x/"),
            "{shown}"
        );
    }

    #[test]
    fn outbound_rules_parse_and_match() {
        let r = |t: &str| t.parse::<OutboundRule>();
        let hooks = r("https://hooks.example.com").unwrap();
        assert!(hooks.matches(true, "hooks.example.com", 443));
        assert!(!hooks.matches(false, "hooks.example.com", 443));
        assert!(!hooks.matches(true, "hooks.example.com", 8443));
        assert!(!hooks.matches(true, "evil.example.com", 443));
        let local = r("http://127.0.0.1:*").unwrap();
        assert!(local.matches(false, "127.0.0.1", 9000));
        assert!(local.names_address(false, "127.0.0.1".parse().unwrap(), 1));
        assert!(!local.matches(false, "localhost", 9000));
        let below = r("https://*.Example.com:8443/").unwrap();
        assert!(below.matches(true, "a.b.example.com", 8443));
        assert!(!below.matches(true, "example.com", 8443));
        assert!(!below.matches(true, "badexample.com", 8443));
        let any = r("https://*").unwrap();
        assert!(any.matches(true, "hooks.example.com", 443) && any.matches(true, "10.0.0.1", 443));
        assert!(!any.names_address(true, "10.0.0.1".parse().unwrap(), 443));
        let v6 = r("http://[::1]:8080").unwrap();
        assert!(v6.matches(false, "::1", 8080));
        assert_eq!(v6.to_string(), "http://[::1]:8080");
        for bad in [
            "ftp://x",
            "http://x/path",
            "http://x:0",
            "http://x:http",
            "http://**",
            "http://a.*.com",
            "http://user@x",
            "http://[::1",
            "https://",
        ] {
            let err = r(bad).unwrap_err();
            assert!(err.contains(bad) && err.contains("scheme://host"), "{err}");
        }
    }

    #[test]
    fn bad_grants_say_why() {
        let err = |text: &str| toml::from_str::<Wrap>(text).err().unwrap().to_string();
        assert!(err("[g]\nx = [\"network\"]\n").contains("unknown capability"));
        assert!(err("[g.x]\nkey_value = true\n").contains("unknown field `key_value`"));
        assert!(err("[g.x]\nkey_value_quota_kib = 0\n").contains("at least 1"));
        assert!(
            err("[g.x.variables]\na = { env = \"IH_TEST_SURELY_UNSET\" }\n")
                .contains("environment variable IH_TEST_SURELY_UNSET is not set")
        );
    }
}
