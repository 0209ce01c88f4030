//! The plugin manifest (`plugin.toml`): what a plugin says about itself, parsed and checked.
//!
//! This module owns the manifest format and every rule that can be checked without the
//! component: the id's shape, the API version this host supports, the roles and their
//! settings, limits within the operator's bounds, and capabilities the operator granted. Checks
//! against the component's exports live with the engine.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::PluginSettings;
use crate::events::Event;

/// The manifest's file name inside a plugin folder.
pub const FILE: &str = "plugin.toml";

/// API versions this host has bindings for, as `(major, minor)`.
pub const SUPPORTED_API: &[(u32, u32)] = &[(1, 0)];

/// The WIT package the API versions belong to.
pub const PACKAGE: &str = "integration-host:plugin";

/// What a plugin does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Observer,
    PermissionResolver,
    ConfigProvider,
}

impl Role {
    /// The WIT interface a component playing the role exports.
    pub fn interface(self) -> &'static str {
        match self {
            Role::Observer => "observer",
            Role::PermissionResolver => "permission-resolver",
            Role::ConfigProvider => "config-provider",
        }
    }

    pub fn as_str(self) -> &'static str {
        self.interface()
    }
}

/// When an observer runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObserverMode {
    /// Inline, before the operation answers; may veto.
    Sync,
    /// After the answer, from a bounded queue.
    #[default]
    Async,
}

/// What a failure of a sync observer (error, trap, timeout, quarantine) means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObserverOnError {
    /// Logged; the operation goes on.
    #[default]
    Continue,
    /// The operation is refused (fail closed).
    Veto,
}

/// What a failure of a permission resolver means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResolverOnError {
    /// Counted as no opinion.
    #[default]
    Abstain,
    /// Counted as a deny (fail closed).
    Deny,
}

/// The `[observer]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ObserverSection {
    /// Event names, or `*` for all.
    pub events: Vec<String>,
    #[serde(default)]
    pub mode: ObserverMode,
    #[serde(default)]
    pub on_error: ObserverOnError,
}

/// The `[permission_resolver]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResolverSection {
    #[serde(default)]
    pub on_error: ResolverOnError,
}

/// The `[limits]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Linear memory a plugin instance may grow to, in MiB.
    pub memory_mib: u32,
    /// Time one call may take, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mib: 16,
            timeout_ms: 100,
        }
    }
}

/// Capabilities a plugin may ask for.
pub const CAPABILITIES: &[&str] = &["clock"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    id: String,
    version: String,
    api_version: String,
    #[serde(default)]
    description: String,
    component: PathBuf,
    roles: Vec<Role>,
    #[serde(default = "default_sort_order")]
    sort_order: i32,
    #[serde(default)]
    observer: Option<ObserverSection>,
    #[serde(default)]
    permission_resolver: Option<ResolverSection>,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    config: toml::Table,
}

fn default_sort_order() -> i32 {
    100
}

/// A checked manifest.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Manifest {
    pub id: String,
    pub version: String,
    /// `(major, minor)`.
    pub api: (u32, u32),
    pub description: String,
    /// The component file, resolved against the plugin folder (an absolute path stays).
    pub component: PathBuf,
    pub roles: Vec<Role>,
    /// Lower runs first; ties by id.
    pub sort_order: i32,
    pub observer: Option<ObserverSection>,
    pub resolver: Option<ResolverSection>,
    pub limits: Limits,
    pub capabilities: Vec<String>,
    /// The `[config]` table as a JSON object, handed to the plugin by the host's `config()`.
    pub config_json: String,
}

impl Manifest {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The API version as written in exports, e.g. `1.0.0`.
    pub fn api_semver(&self) -> String {
        format!("{}.{}.0", self.api.0, self.api.1)
    }
}

/// A manifest that cannot be used: the key and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {}{message}", if key.is_empty() { String::new() } else { format!("key `{key}`: ") })]
pub struct ManifestError {
    pub path: String,
    pub key: String,
    pub message: String,
}

/// Parses and checks the manifest of the plugin folder `dir`.
pub fn parse(dir: &Path, text: &str, settings: &PluginSettings) -> Result<Manifest, ManifestError> {
    let path = dir.join(FILE).display().to_string();
    let err = |key: &str, message: String| ManifestError {
        path: path.clone(),
        key: key.to_owned(),
        message,
    };
    let raw: Raw = crate::config::parse_toml_at_key(text).map_err(|(k, m)| err(&k, m))?;

    let id_ok = !raw.id.is_empty()
        && raw.id.len() <= 64
        && raw
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && raw.id.as_bytes()[0].is_ascii_alphanumeric();
    if !id_ok {
        return Err(err(
            "id",
            format!(
                "`{}` is not a plugin id: use 1-64 lower-case letters, digits, `-` or `_`, starting with a letter or digit",
                raw.id
            ),
        ));
    }
    if raw.version.trim().is_empty() {
        return Err(err("version", "must not be empty".into()));
    }
    let api = parse_api(&raw.api_version).ok_or_else(|| {
        err(
            "api_version",
            format!("`{}` is not a version like \"1.0\"", raw.api_version),
        )
    })?;
    if !SUPPORTED_API.contains(&api) {
        let supported: Vec<String> = SUPPORTED_API
            .iter()
            .map(|(a, b)| format!("{a}.{b}"))
            .collect();
        return Err(err(
            "api_version",
            format!(
                "API version {}.{} is not supported by this server (supported: {})",
                api.0,
                api.1,
                supported.join(", ")
            ),
        ));
    }
    if raw.component.as_os_str().is_empty() {
        return Err(err(
            "component",
            "name the component file (relative to the plugin folder, or absolute)".into(),
        ));
    }
    if raw.roles.is_empty() {
        return Err(err(
            "roles",
            "name at least one of observer, permission-resolver, config-provider".into(),
        ));
    }
    let mut roles = raw.roles.clone();
    roles.sort();
    roles.dedup();
    if roles.len() != raw.roles.len() {
        return Err(err("roles", "a role is listed twice".into()));
    }
    match (&raw.observer, roles.contains(&Role::Observer)) {
        (None, true) => {
            return Err(err(
                "observer",
                "an observer needs an [observer] table with its events".into(),
            ));
        }
        (Some(_), false) => {
            return Err(err(
                "observer",
                "the plugin does not list the observer role".into(),
            ));
        }
        (Some(o), true) => {
            if o.events.is_empty() {
                return Err(err("observer.events", "name at least one event".into()));
            }
            for (i, e) in o.events.iter().enumerate() {
                if e != "*" && !Event::NAMES.contains(&e.as_str()) {
                    return Err(err(
                        &format!("observer.events[{i}]"),
                        format!(
                            "unknown event `{e}`; events are {}",
                            Event::NAMES.join(", ")
                        ),
                    ));
                }
            }
        }
        (None, false) => {}
    }
    if raw.permission_resolver.is_some() && !roles.contains(&Role::PermissionResolver) {
        return Err(err(
            "permission_resolver",
            "the plugin does not list the permission-resolver role".into(),
        ));
    }
    if raw.limits.memory_mib == 0 || raw.limits.memory_mib > settings.max_memory_mib {
        return Err(err(
            "limits.memory_mib",
            format!(
                "must be between 1 and {} (plugins.max_memory_mib)",
                settings.max_memory_mib
            ),
        ));
    }
    if raw.limits.timeout_ms == 0 || raw.limits.timeout_ms > settings.max_timeout_ms {
        return Err(err(
            "limits.timeout_ms",
            format!(
                "must be between 1 and {} (plugins.max_timeout_ms)",
                settings.max_timeout_ms
            ),
        ));
    }
    let granted = settings.grants.get(&raw.id);
    for (i, c) in raw.capabilities.iter().enumerate() {
        if !CAPABILITIES.contains(&c.as_str()) {
            return Err(err(
                &format!("capabilities[{i}]"),
                format!(
                    "unknown capability `{c}`; known: {}",
                    CAPABILITIES.join(", ")
                ),
            ));
        }
        if !granted.is_some_and(|g| g.contains(c)) {
            return Err(err(
                &format!("capabilities[{i}]"),
                format!(
                    "capability `{c}` is not granted to `{}`; the operator grants it with plugins.grants.{} = [\"{c}\"]",
                    raw.id, raw.id
                ),
            ));
        }
    }
    let config_json = serde_json::to_string(&toml_to_json(toml::Value::Table(raw.config)))
        .map_err(|e| err("config", e.to_string()))?;
    Ok(Manifest {
        id: raw.id,
        version: raw.version,
        api,
        description: raw.description,
        component: dir.join(raw.component),
        roles,
        sort_order: raw.sort_order,
        resolver: roles_resolver(&raw.permission_resolver, &raw.roles),
        observer: raw.observer,
        limits: raw.limits,
        capabilities: raw.capabilities,
        config_json,
    })
}

fn roles_resolver(section: &Option<ResolverSection>, roles: &[Role]) -> Option<ResolverSection> {
    roles
        .contains(&Role::PermissionResolver)
        .then(|| section.clone().unwrap_or_default())
}

/// `"1.0"` (or `"1.0.0"`) as `(1, 0)`.
pub fn parse_api(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    match parts.next() {
        None => {}
        Some(p) if p.parse::<u32>().is_ok() => {}
        Some(_) => return None,
    }
    parts.next().is_none().then_some((major, minor))
}

fn toml_to_json(value: toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        toml::Value::String(s) => J::String(s),
        toml::Value::Integer(i) => J::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(
            t.into_iter()
                .map(|(k, v)| (k, toml_to_json(v)))
                .collect::<serde_json::Map<_, _>>(),
        ),
    }
}

/// The plugin folders under the configured directories: every direct subfolder holding a
/// manifest, sorted. A configured directory that cannot be read is reported.
pub fn plugin_dirs(dirs: &[PathBuf]) -> (Vec<PathBuf>, Vec<ManifestError>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for dir in dirs {
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let p = entry.path();
                    if p.join(FILE).is_file() {
                        found.push(p);
                    }
                }
            }
            Err(e) => errors.push(ManifestError {
                path: dir.display().to_string(),
                key: String::new(),
                message: format!("cannot read the plugin folder: {e}"),
            }),
        }
    }
    found.sort();
    (found, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PluginSettings {
        PluginSettings::default()
    }

    const GOOD: &str = r#"
id = "login-audit"
version = "0.1.0"
api_version = "1.0"
component = "login_audit.wasm"
roles = ["observer"]
[observer]
events = ["customer_login"]
mode = "sync"
[config]
blocked = ["a.example"]
"#;

    #[test]
    fn a_good_manifest_parses_with_defaults() {
        let m = parse(Path::new("p"), GOOD, &settings()).unwrap();
        assert_eq!(m.id, "login-audit");
        assert_eq!(m.api, (1, 0));
        assert_eq!(m.sort_order, 100);
        assert_eq!(m.limits, Limits::default());
        assert_eq!(m.component, Path::new("p/login_audit.wasm"));
        assert_eq!(m.observer.unwrap().mode, ObserverMode::Sync);
        assert_eq!(m.config_json, r#"{"blocked":["a.example"]}"#);
        assert!(m.resolver.is_none());
    }

    #[test]
    fn bad_manifests_name_the_key() {
        let cases = [
            (GOOD.replace("login-audit\"", "Login Audit\""), "id"),
            (GOOD.replace("\"1.0\"", "\"2.0\""), "api_version"),
            (GOOD.replace("\"1.0\"", "\"one\""), "api_version"),
            (
                GOOD.replace("customer_login", "customer_logout"),
                "observer.events[0]",
            ),
            (GOOD.replace("[\"observer\"]", "[\"resolver\"]"), "roles[0]"),
            (
                GOOD.replace("[\"observer\"]", "[\"permission-resolver\"]"),
                "observer",
            ),
            (
                GOOD.replace("roles", "capabilities = [\"clock\"]\nroles"),
                "capabilities[0]",
            ),
            (GOOD.replace("roles", "colour = 1\nroles"), "colour"),
            (
                GOOD.replace("[config]", "[limits]\nmemory_mib = 4096\n[config]"),
                "limits.memory_mib",
            ),
            (GOOD.replace("id = \"login-audit\"\n", ""), "id"),
        ];
        for (text, key) in cases {
            let e = parse(Path::new("p"), &text, &settings()).unwrap_err();
            assert_eq!(e.key, key, "{e}");
        }
        let e = parse(Path::new("p"), "id = [", &settings()).unwrap_err();
        assert!(e.message.contains("line 1"), "{e}");
    }

    #[test]
    fn a_granted_capability_is_accepted() {
        let mut s = settings();
        s.grants.insert("login-audit".into(), vec!["clock".into()]);
        let text = GOOD.replace("roles", "capabilities = [\"clock\"]\nroles");
        assert_eq!(
            parse(Path::new("p"), &text, &s).unwrap().capabilities,
            ["clock"]
        );
    }

    #[test]
    fn api_versions_parse() {
        assert_eq!(parse_api("1.0"), Some((1, 0)));
        assert_eq!(parse_api("1.2.0"), Some((1, 2)));
        assert_eq!(parse_api("1"), None);
        assert_eq!(parse_api("1.x"), None);
        assert_eq!(parse_api("1.0.0.0"), None);
    }
}
