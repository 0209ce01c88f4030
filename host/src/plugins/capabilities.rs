//! Capabilities: what a plugin's manifest asks for (`[capabilities]`), checked against what the
//! operator grants it (`[plugins.grants.<id>]`, deny by default: a plugin asking for more does
//! not load, and the reason names the configuration key to set), and the host's side of the
//! `integration-host:capabilities` interfaces: key-value state, variables and (since 1.1) the
//! delivery under way. The linker holds the newest version (`wit/capabilities@1.1.0`); a plugin
//! built against 1.0 gets the same functions (semver-compatible imports). Outbound HTTP is
//! standard `wasi:http` ([`super::outbound`]). A call answers only what the plugin asked for
//! and was granted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::outbound::HttpGrant;
use crate::config::{OutboundRule, PluginGrant, VariableValue};

pub(super) mod bindings {
    wasmtime::component::bindgen!({
        world: "capabilities",
        path: "../wit/capabilities@1.1.0",
        imports: { default: async },
    });
}

/// What a manifest asks for: `[capabilities]` with `clock`, `key_value`, `variables` and
/// `outbound_http`, or the older list of names (`capabilities = ["clock"]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Asked {
    pub clock: bool,
    pub key_value: bool,
    pub variables: Vec<String>,
    pub outbound_http: Vec<OutboundRule>,
    /// Capabilities the plugin works without (`optional = ["outbound_http", ...]`): it loads
    /// when they are not granted, and then does without them.
    pub optional: Vec<Capability>,
}

/// A capability by name, as `optional` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Clock,
    KeyValue,
    Variables,
    OutboundHttp,
}

impl<'de> Deserialize<'de> for Asked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            #[serde(default)]
            clock: bool,
            #[serde(default)]
            key_value: bool,
            #[serde(default)]
            variables: Vec<String>,
            #[serde(default)]
            outbound_http: Vec<OutboundRule>,
            #[serde(default)]
            optional: Vec<Capability>,
        }
        use serde::de::Error as _;
        match toml::Value::deserialize(d)? {
            toml::Value::Array(items) => Ok(Asked {
                clock: crate::config::clock_from_list(&items).map_err(D::Error::custom)?,
                ..Default::default()
            }),
            value @ toml::Value::Table(_) => {
                let t = Table::deserialize(value).map_err(D::Error::custom)?;
                Ok(Asked {
                    clock: t.clock,
                    key_value: t.key_value,
                    variables: t.variables,
                    outbound_http: t.outbound_http,
                    optional: t.optional,
                })
            }
            other => Err(D::Error::custom(format!(
                "capabilities is a table, not {}",
                other.type_str()
            ))),
        }
    }
}

impl Asked {
    /// What plugin `id` may use, when its grant covers everything asked but the optional
    /// capabilities; otherwise the first thing missing, naming the configuration key that would
    /// grant it.
    pub fn granted(&self, id: &str, grant: Option<&PluginGrant>) -> Result<Granted, String> {
        let none = PluginGrant::default();
        let grant = grant.unwrap_or(&none);
        let at = format!("plugins.grants.{id}");
        let required = |c: Capability| !self.optional.contains(&c);
        if self.clock && !grant.clock && required(Capability::Clock) {
            return Err(format!(
                "asks for the clock, which {at}.clock does not grant (or {at} = [\"clock\"])"
            ));
        }
        let quota = match (self.key_value, grant.key_value_quota_kib) {
            (true, None) if required(Capability::KeyValue) => {
                return Err(format!(
                    "asks for key-value state, which {at}.key_value_quota_kib does not grant"
                ));
            }
            (true, Some(kib)) => Some(kib.saturating_mul(1024)),
            _ => None,
        };
        let mut variables = BTreeMap::new();
        for name in &self.variables {
            match grant.variables.get(name) {
                Some(v) => {
                    variables.insert(name.clone(), v.clone());
                }
                None if !required(Capability::Variables) => {}
                None => {
                    return Err(format!(
                        "asks for variable `{name}`, which {at}.variables.{name} does not set"
                    ));
                }
            }
        }
        let http = match (&self.outbound_http[..], &grant.outbound_http) {
            ([], _) => None,
            (_, None) if !required(Capability::OutboundHttp) => None,
            (_, None) => {
                return Err(format!(
                    "asks for outbound HTTP, which {at}.outbound_http does not grant"
                ));
            }
            (asked, Some(granted)) => Some(HttpGrant {
                asked: asked.to_vec(),
                granted: granted.clone(),
            }),
        };
        Ok(Granted {
            clock: self.clock && grant.clock,
            quota,
            variables,
            http,
        })
    }

    /// What is asked, in words (`clock`, `key_value`, `variables: a, b`).
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.clock {
            out.push("clock".to_owned());
        }
        if self.key_value {
            out.push("key_value".to_owned());
        }
        if !self.variables.is_empty() {
            out.push(format!("variables: {}", self.variables.join(", ")));
        }
        if !self.outbound_http.is_empty() {
            let rules: Vec<String> = self.outbound_http.iter().map(ToString::to_string).collect();
            out.push(format!("outbound_http: {}", rules.join(", ")));
        }
        if !self.optional.is_empty() {
            let names: Vec<&str> = self
                .optional
                .iter()
                .map(|c| match c {
                    Capability::Clock => "clock",
                    Capability::KeyValue => "key_value",
                    Capability::Variables => "variables",
                    Capability::OutboundHttp => "outbound_http",
                })
                .collect();
            out.push(format!("optional: {}", names.join(", ")));
        }
        out
    }
}

/// What a loaded plugin may use: what it asked for, within its grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Granted {
    pub clock: bool,
    /// Key-value state, up to this many bytes of keys and values.
    pub quota: Option<u64>,
    /// The variables it asked for, with their values (never shown).
    pub variables: BTreeMap<String, VariableValue>,
    /// Where it may send HTTP requests.
    #[serde(rename = "outbound_http", skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpGrant>,
}

impl Granted {
    /// What is granted, in words (`clock`, `key_value (1024 KiB)`, `variables: a, b`); never a
    /// variable's value.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.clock {
            out.push("clock".to_owned());
        }
        if let Some(q) = self.quota {
            out.push(format!("key_value ({} KiB)", q / 1024));
        }
        if !self.variables.is_empty() {
            let names: Vec<&str> = self.variables.keys().map(String::as_str).collect();
            out.push(format!("variables: {}", names.join(", ")));
        }
        if let Some(http) = &self.http {
            out.push(http.describe());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(text: &str) -> Asked {
        #[derive(Deserialize)]
        struct W {
            capabilities: Asked,
        }
        toml::from_str::<W>(text).unwrap().capabilities
    }

    #[test]
    fn asked_within_the_grant_is_granted_and_more_names_the_key() {
        let a = asked("[capabilities]\nkey_value = true\nvariables = [\"url\", \"secret\"]\n");
        let err = a.granted("hook", None).unwrap_err();
        assert!(
            err.contains("plugins.grants.hook.key_value_quota_kib"),
            "{err}"
        );
        let mut g = PluginGrant {
            key_value_quota_kib: Some(4),
            ..Default::default()
        };
        g.variables
            .insert("url".into(), VariableValue::new("http://x/"));
        let err = a.granted("hook", Some(&g)).unwrap_err();
        assert!(
            err.contains("plugins.grants.hook.variables.secret"),
            "{err}"
        );
        g.variables.insert("secret".into(), VariableValue::new("s"));
        g.variables
            .insert("unasked".into(), VariableValue::new("u"));
        let granted = a.granted("hook", Some(&g)).unwrap();
        assert_eq!(granted.quota, Some(4096));
        // Only what was asked reaches the plugin.
        assert!(!granted.variables.contains_key("unasked"));
        assert_eq!(
            granted.describe(),
            ["key_value (4 KiB)", "variables: secret, url"]
        );
        assert_eq!(asked("capabilities = [\"clock\"]\n").describe(), ["clock"]);
    }

    #[test]
    fn optional_capabilities_load_without_a_grant_and_are_used_with_one() {
        let a = asked(
            "[capabilities]\noptional = [\"outbound_http\", \"variables\"]\noutbound_http = [\"http://*:*\"]\nvariables = [\"collector_url\"]\n",
        );
        let bare = a.granted("login-audit", None).unwrap();
        assert!(bare.http.is_none() && bare.variables.is_empty());
        assert_eq!(
            a.describe(),
            [
                "variables: collector_url",
                "outbound_http: http://*:*",
                "optional: outbound_http, variables"
            ]
        );
        let mut g = PluginGrant {
            outbound_http: Some(vec!["http://127.0.0.1:9000".parse().unwrap()]),
            ..Default::default()
        };
        g.variables.insert(
            "collector_url".into(),
            VariableValue::new("http://127.0.0.1:9000/"),
        );
        let full = a.granted("login-audit", Some(&g)).unwrap();
        assert!(full.http.is_some() && full.variables.contains_key("collector_url"));
        // Not optional: still refused.
        let strict =
            asked("[capabilities]\noptional = [\"variables\"]\noutbound_http = [\"http://*:*\"]\n");
        assert!(strict.granted("x", None).is_err());
    }

    #[test]
    fn outbound_http_asked_needs_a_grant_which_may_narrow_it() {
        let a = asked(
            "[capabilities]\noutbound_http = [\"https://hooks.example.com\", \"http://127.0.0.1:*\"]\n",
        );
        let err = a.granted("webhook-notifier", None).unwrap_err();
        assert!(
            err.contains("plugins.grants.webhook-notifier.outbound_http"),
            "{err}"
        );
        let g = PluginGrant {
            outbound_http: Some(vec!["http://127.0.0.1:*".parse().unwrap()]),
            ..Default::default()
        };
        let granted = a.granted("webhook-notifier", Some(&g)).unwrap();
        let http = granted.http.as_ref().unwrap();
        assert!(http.permits(false, "127.0.0.1", 9000));
        assert!(!http.permits(true, "hooks.example.com", 443));
        assert_eq!(granted.describe(), ["outbound_http: http://127.0.0.1:*"]);
        assert_eq!(
            a.describe(),
            ["outbound_http: https://hooks.example.com, http://127.0.0.1:*"]
        );
    }
}
