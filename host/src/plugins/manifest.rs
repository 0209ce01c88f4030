//! The plugin manifest (`plugin.toml`): what a plugin says about itself, parsed and checked.
//!
//! This module owns the manifest format and its rules: the id's shape, the API version this host
//! supports, the roles and their settings, limits within the operator's bounds, and capabilities
//! the operator granted. The API version and the roles are the component's (read from its
//! exports by the loader, [`Exported`]); a manifest may state them too, and then they must agree
//! ([`Manifest::settle`]).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::PluginSettings;
use crate::events::{Event, Operation, Produced};

/// The manifest's file name inside a plugin folder.
pub const FILE: &str = "plugin.toml";

/// API versions this host has bindings for, as `(major, minor)`: one module each
/// (`v1_0`, `v1_1`, whose `VERSION` a test matches against this list).
pub const SUPPORTED_API: &[(u32, u32)] = &[(1, 0), (1, 1)];

/// The WIT package the API versions belong to.
pub const PACKAGE: &str = "integration-host:plugin";

/// What a plugin does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Observer,
    PermissionResolver,
    ConfigProvider,
    /// Since 1.1.
    BeforeInterceptor,
    /// Since 1.1.
    AfterInterceptor,
    /// Since 1.1; one plugin at most.
    CredentialVerifier,
}

impl Role {
    /// The WIT interface a component playing the role exports.
    pub fn interface(self) -> &'static str {
        match self {
            Role::Observer => "observer",
            Role::PermissionResolver => "permission-resolver",
            Role::ConfigProvider => "config-provider",
            Role::BeforeInterceptor => "before-interceptor",
            Role::AfterInterceptor => "after-interceptor",
            Role::CredentialVerifier => "credential-verifier",
        }
    }

    /// The API version that introduced the role.
    pub fn since(self) -> (u32, u32) {
        match self {
            Role::Observer | Role::PermissionResolver | Role::ConfigProvider => (1, 0),
            Role::BeforeInterceptor | Role::AfterInterceptor | Role::CredentialVerifier => (1, 1),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.interface()
    }

    /// Every role, in the order the loader starts them.
    pub const ALL: [Role; 6] = [
        Role::Observer,
        Role::PermissionResolver,
        Role::ConfigProvider,
        Role::BeforeInterceptor,
        Role::AfterInterceptor,
        Role::CredentialVerifier,
    ];

    /// The role whose interface is `name` (as exports and manifests write it).
    pub fn from_interface(name: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.interface() == name)
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

/// What a failure of an interceptor (error, trap, timeout, quarantine, an answer the host
/// refuses) means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InterceptorOnError {
    /// Logged; the operation goes on as if the plugin had passed.
    #[default]
    Continue,
    /// The operation is refused (fail closed).
    Refuse,
}

/// The `[before_interceptor]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BeforeSection {
    /// Operation names (`integration_create`, ..., `customer_sign_in`), or `*` for all.
    pub operations: Vec<String>,
    #[serde(default)]
    pub on_error: InterceptorOnError,
}

/// The `[after_interceptor]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AfterSection {
    /// Result names (`admin_token`, `customer_token`, `request_allowed`), or `*` for all.
    pub results: Vec<String>,
    #[serde(default)]
    pub on_error: InterceptorOnError,
}

/// What a failure of the credential verifier means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifierOnError {
    /// The built-in password check decides, as if the plugin had abstained.
    #[default]
    Abstain,
    /// The sign-in is refused (fail closed).
    Refuse,
}

/// The `[credential_verifier]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierSection {
    #[serde(default)]
    pub on_error: VerifierOnError,
}

impl BeforeSection {
    pub fn wants(&self, operation: &str) -> bool {
        self.operations.iter().any(|o| o == "*" || o == operation)
    }
}

impl AfterSection {
    pub fn wants(&self, result: &str) -> bool {
        self.results.iter().any(|r| r == "*" || r == result)
    }
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
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    description: String,
    component: PathBuf,
    #[serde(default)]
    roles: Option<Vec<Role>>,
    #[serde(default = "default_sort_order")]
    sort_order: i32,
    #[serde(default)]
    observer: Option<ObserverSection>,
    #[serde(default)]
    permission_resolver: Option<ResolverSection>,
    #[serde(default)]
    before_interceptor: Option<BeforeSection>,
    #[serde(default)]
    after_interceptor: Option<AfterSection>,
    #[serde(default)]
    credential_verifier: Option<VerifierSection>,
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
    /// The API version as `(major, minor)`: the manifest's until [`Manifest::settle`], then the
    /// component's.
    pub api: Option<(u32, u32)>,
    pub description: String,
    /// The component file, resolved against the plugin folder (an absolute path stays).
    pub component: PathBuf,
    /// Sorted. The manifest's (maybe none) until [`Manifest::settle`], then the component's.
    pub roles: Vec<Role>,
    /// Lower runs first; ties by id.
    pub sort_order: i32,
    pub observer: Option<ObserverSection>,
    pub resolver: Option<ResolverSection>,
    pub before: Option<BeforeSection>,
    pub after: Option<AfterSection>,
    pub verifier: Option<VerifierSection>,
    pub limits: Limits,
    pub capabilities: Vec<String>,
    /// The `[config]` table as a JSON object, handed to the plugin by the host's `config()`.
    pub config_json: String,
    /// The plugin folder.
    pub dir: PathBuf,
}

impl Manifest {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The API version as `1.0`, once settled.
    pub fn api_text(&self) -> String {
        self.api
            .map(|(a, b)| format!("{a}.{b}"))
            .unwrap_or_else(|| "?".into())
    }

    /// Takes the API version and the roles from the component's exports. A manifest that
    /// states the version must agree; one that lists roles may only list roles the component
    /// exports (the errors name both), and then plays only those (a component of several roles
    /// used for one). The roles' tables are checked against the roles it plays.
    pub fn settle(&mut self, exported: &Exported) -> Result<(), ManifestError> {
        let err = |key: &str, message: String| ManifestError {
            path: self.dir_file(),
            key: key.to_owned(),
            message,
        };
        if let Some(api) = self.api
            && api != exported.api
        {
            return Err(err(
                "api_version",
                format!(
                    "the manifest says {}.{} but the component was built against API {}.{} (it exports {})",
                    api.0,
                    api.1,
                    exported.api.0,
                    exported.api.1,
                    exported.names()
                ),
            ));
        }
        if self.roles.iter().any(|r| !exported.roles.contains(r)) {
            return Err(err(
                "roles",
                format!(
                    "the manifest lists {} but the component plays {} (it exports {})",
                    role_list(&self.roles),
                    role_list(&exported.roles),
                    exported.names()
                ),
            ));
        }
        // Listed roles choose among those the component can play; none listed, it plays all.
        let roles = if self.roles.is_empty() {
            exported.roles.clone()
        } else {
            self.roles.clone()
        };
        check_sections(&roles, &self.tables()).map_err(|(k, m)| err(&k, m))?;
        self.api = Some(exported.api);
        self.roles = roles;
        Ok(())
    }

    fn tables(&self) -> Tables {
        Tables {
            observer: self.observer.is_some(),
            permission_resolver: self.resolver.is_some(),
            before_interceptor: self.before.is_some(),
            after_interceptor: self.after.is_some(),
            credential_verifier: self.verifier.is_some(),
        }
    }

    fn dir_file(&self) -> String {
        self.dir.join(FILE).display().to_string()
    }
}

fn role_list(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a component's exports say about it: the API version it was built against and the roles
/// it plays (sorted), with the exports they were read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub api: (u32, u32),
    pub roles: Vec<Role>,
    /// The exports of the plugin API, as written (`integration-host:plugin/observer@1.0.0`).
    pub exports: Vec<String>,
}

impl Exported {
    fn names(&self) -> String {
        self.exports
            .iter()
            .map(|e| format!("`{e}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Reads the API version and roles from a component's export names. Every export of the
    /// plugin API must name one supported version and a role of it; other exports are ignored.
    pub fn read<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Exported, String> {
        let all: Vec<&str> = names.into_iter().collect();
        let prefix = format!("{PACKAGE}/");
        let mut api = None;
        let mut roles = Vec::new();
        let mut exports = Vec::new();
        for name in all.iter().filter(|n| n.starts_with(&prefix)) {
            let (interface, version) = name[prefix.len()..]
                .split_once('@')
                .ok_or_else(|| format!("the component exports `{name}` without an API version"))?;
            let version = parse_api(version)
                .ok_or_else(|| format!("the component exports `{name}`: not an API version"))?;
            if !SUPPORTED_API.contains(&version) {
                return Err(format!(
                    "the component was built against API version {}.{}, which this server does not support (supported: {}): it exports `{name}`",
                    version.0,
                    version.1,
                    supported()
                ));
            }
            match api {
                Some(v) if v != version => {
                    return Err(format!(
                        "the component exports interfaces of two API versions: `{}` and `{name}`",
                        exports.first().map(String::as_str).unwrap_or_default()
                    ));
                }
                _ => api = Some(version),
            }
            let role = Role::from_interface(interface)
                .filter(|r| r.since() <= version)
                .ok_or_else(|| {
                    format!(
                        "the component exports `{name}`, which is not a role of API {}.{}",
                        version.0, version.1
                    )
                })?;
            roles.push(role);
            exports.push((*name).to_owned());
        }
        let Some(api) = api else {
            return Err(format!(
                "the component exports no role of the plugin API {PACKAGE} (it exports: {})",
                if all.is_empty() {
                    "nothing".to_owned()
                } else {
                    all.join(", ")
                }
            ));
        };
        roles.sort();
        roles.dedup();
        Ok(Exported {
            api,
            roles,
            exports,
        })
    }
}

fn supported() -> String {
    SUPPORTED_API
        .iter()
        .map(|(a, b)| format!("{a}.{b}"))
        .collect::<Vec<_>>()
        .join(", ")
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
    let api = match &raw.api_version {
        None => None,
        Some(text) => {
            let api = parse_api(text).ok_or_else(|| {
                err(
                    "api_version",
                    format!("`{text}` is not a version like \"1.1\""),
                )
            })?;
            if !SUPPORTED_API.contains(&api) {
                return Err(err(
                    "api_version",
                    format!(
                        "API version {}.{} is not supported by this server (supported: {})",
                        api.0,
                        api.1,
                        supported()
                    ),
                ));
            }
            Some(api)
        }
    };
    if raw.component.as_os_str().is_empty() {
        return Err(err(
            "component",
            "name the component file (relative to the plugin folder, or absolute)".into(),
        ));
    }
    let mut roles = raw.roles.clone().unwrap_or_default();
    if let Some(listed) = &raw.roles {
        if listed.is_empty() {
            return Err(err(
                "roles",
                "name at least one role, or leave the key out (the component's exports say)".into(),
            ));
        }
        roles.sort();
        roles.dedup();
        if roles.len() != listed.len() {
            return Err(err("roles", "a role is listed twice".into()));
        }
    }
    check_events(&raw.observer).map_err(|(k, m)| err(&k, m))?;
    check_names(
        "before_interceptor.operations",
        raw.before_interceptor.as_ref().map(|b| &b.operations),
        Operation::NAMES,
    )
    .map_err(|(k, m)| err(&k, m))?;
    check_names(
        "after_interceptor.results",
        raw.after_interceptor.as_ref().map(|a| &a.results),
        Produced::NAMES,
    )
    .map_err(|(k, m)| err(&k, m))?;
    let tables = Tables {
        observer: raw.observer.is_some(),
        permission_resolver: raw.permission_resolver.is_some(),
        before_interceptor: raw.before_interceptor.is_some(),
        after_interceptor: raw.after_interceptor.is_some(),
        credential_verifier: raw.credential_verifier.is_some(),
    };
    if !roles.is_empty() {
        check_sections(&roles, &tables).map_err(|(k, m)| err(&k, m))?;
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
        dir: dir.to_owned(),
        roles,
        sort_order: raw.sort_order,
        resolver: raw.permission_resolver,
        before: raw.before_interceptor,
        after: raw.after_interceptor,
        verifier: raw.credential_verifier,
        observer: raw.observer,
        limits: raw.limits,
        capabilities: raw.capabilities,
        config_json,
    })
}

/// The observer table's events are known ones.
fn check_events(observer: &Option<ObserverSection>) -> Result<(), (String, String)> {
    let Some(o) = observer else {
        return Ok(());
    };
    if o.events.is_empty() {
        return Err(("observer.events".into(), "name at least one event".into()));
    }
    for (i, e) in o.events.iter().enumerate() {
        if e != "*" && !Event::NAMES.contains(&e.as_str()) {
            return Err((
                format!("observer.events[{i}]"),
                format!(
                    "unknown event `{e}`; events are {}",
                    Event::NAMES.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Which role tables a manifest has.
struct Tables {
    observer: bool,
    permission_resolver: bool,
    before_interceptor: bool,
    after_interceptor: bool,
    credential_verifier: bool,
}

/// Each role's table is there when the role needs one, and no table is there without its role.
fn check_sections(roles: &[Role], t: &Tables) -> Result<(), (String, String)> {
    let needs = [
        (
            Role::Observer,
            t.observer,
            "observer",
            "an observer needs an [observer] table with its events",
        ),
        (
            Role::BeforeInterceptor,
            t.before_interceptor,
            "before_interceptor",
            "a before-interceptor needs a [before_interceptor] table with its operations",
        ),
        (
            Role::AfterInterceptor,
            t.after_interceptor,
            "after_interceptor",
            "an after-interceptor needs an [after_interceptor] table with its results",
        ),
    ];
    for (role, present, key, message) in needs {
        if roles.contains(&role) && !present {
            return Err((key.into(), message.into()));
        }
    }
    let tables = [
        (Role::Observer, t.observer, "observer"),
        (
            Role::PermissionResolver,
            t.permission_resolver,
            "permission_resolver",
        ),
        (
            Role::BeforeInterceptor,
            t.before_interceptor,
            "before_interceptor",
        ),
        (
            Role::AfterInterceptor,
            t.after_interceptor,
            "after_interceptor",
        ),
        (
            Role::CredentialVerifier,
            t.credential_verifier,
            "credential_verifier",
        ),
    ];
    for (role, present, key) in tables {
        if present && !roles.contains(&role) {
            return Err((
                key.into(),
                format!("the plugin does not play the {} role", role.as_str()),
            ));
        }
    }
    Ok(())
}

/// A list of names from a table: not empty, each known (or `*`).
fn check_names(
    key: &str,
    names: Option<&Vec<String>>,
    known: &[&str],
) -> Result<(), (String, String)> {
    let Some(names) = names else {
        return Ok(());
    };
    if names.is_empty() {
        return Err((key.into(), "name at least one, or \"*\"".into()));
    }
    for (i, n) in names.iter().enumerate() {
        if n != "*" && !known.contains(&n.as_str()) {
            return Err((
                format!("{key}[{i}]"),
                format!("unknown name `{n}`; known: {}", known.join(", ")),
            ));
        }
    }
    Ok(())
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
        assert_eq!(m.api, Some((1, 0)));
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
    fn exports_give_the_version_and_roles() {
        let e = Exported::read([
            "wasi:cli/run@0.2.0",
            "integration-host:plugin/permission-resolver@1.1.0",
            "integration-host:plugin/observer@1.1.0",
        ])
        .unwrap();
        assert_eq!(e.api, (1, 1));
        assert_eq!(e.roles, [Role::Observer, Role::PermissionResolver]);
        let cases = [
            (
                vec!["integration-host:plugin/observer@0.9.0"],
                "built against API version 0.9, which this server does not support (supported: 1.0, 1.1): it exports `integration-host:plugin/observer@0.9.0`",
            ),
            (
                vec![
                    "integration-host:plugin/observer@1.0.0",
                    "integration-host:plugin/config-provider@1.1.0",
                ],
                "two API versions: `integration-host:plugin/observer@1.0.0` and `integration-host:plugin/config-provider@1.1.0`",
            ),
            (
                vec!["integration-host:plugin/juggler@1.1.0"],
                "exports `integration-host:plugin/juggler@1.1.0`, which is not a role of API 1.1",
            ),
            (
                vec!["wasi:cli/run@0.2.0"],
                "exports no role of the plugin API integration-host:plugin (it exports: wasi:cli/run@0.2.0)",
            ),
        ];
        for (names, want) in cases {
            let e = Exported::read(names).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn a_manifest_that_states_the_version_or_roles_must_agree_with_the_exports() {
        let exported = Exported::read(["integration-host:plugin/observer@1.1.0"]).unwrap();
        let mut m = parse(Path::new("p"), GOOD, &settings()).unwrap();
        let e = m.settle(&exported).unwrap_err();
        assert_eq!(e.key, "api_version");
        assert!(
            e.message.contains("the manifest says 1.0 but the component was built against API 1.1 (it exports `integration-host:plugin/observer@1.1.0`)"),
            "{e}"
        );
        let mut m = parse(
            Path::new("p"),
            &GOOD.replace("\"1.0\"", "\"1.1\""),
            &settings(),
        )
        .unwrap();
        m.settle(&exported).unwrap();
        assert_eq!(
            (m.api, m.roles.as_slice()),
            (Some((1, 1)), &[Role::Observer][..])
        );
        // Neither stated: the exports say.
        let bare = GOOD
            .replace("api_version = \"1.0\"\n", "")
            .replace("roles = [\"observer\"]\n", "");
        let mut m = parse(Path::new("p"), &bare, &settings()).unwrap();
        assert_eq!((m.api, m.roles.len()), (None, 0));
        m.settle(&exported).unwrap();
        assert_eq!(m.api_text(), "1.1");
        // Listed roles choose among the exported ones; one not exported names both.
        let both = Exported::read([
            "integration-host:plugin/observer@1.1.0",
            "integration-host:plugin/config-provider@1.1.0",
        ])
        .unwrap();
        let listed = bare.replace("[observer]", "roles = [\"observer\"]\n[observer]");
        let mut m = parse(Path::new("p"), &listed, &settings()).unwrap();
        m.settle(&both).unwrap();
        assert_eq!(m.roles, [Role::Observer]);
        let listed = bare.replace(
            "[observer]",
            "roles = [\"observer\", \"permission-resolver\"]\n[observer]",
        );
        let mut m = parse(Path::new("p"), &listed, &settings()).unwrap();
        let e = m.settle(&both).unwrap_err();
        assert_eq!(e.key, "roles");
        assert!(e.message.contains("the manifest lists observer, permission-resolver but the component plays observer, config-provider"), "{e}");
        let resolver =
            Exported::read(["integration-host:plugin/permission-resolver@1.1.0"]).unwrap();
        let mut m = parse(Path::new("p"), &bare, &settings()).unwrap();
        let e = m.settle(&resolver).unwrap_err();
        assert_eq!(e.key, "observer", "{e}");
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
