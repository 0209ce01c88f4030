//! What the operator grants each plugin (`[plugins.grants.<id>]`): the capabilities it may use
//! and the values of its variables. Deny by default: a plugin that asks for more than its grant
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
