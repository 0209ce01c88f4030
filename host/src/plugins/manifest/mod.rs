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

mod exports;
mod schema;
mod tables;

use exports::supported;
pub use exports::{Exported, PACKAGE, SUPPORTED_API, component_exports, parse_api};
pub use tables::{
    AfterSection, BeforeSection, InterceptorOnError, Limits, ObserverMode, ObserverOnError,
    ObserverSection, ResolverOnError, ResolverSection, Role, VerifierOnError, VerifierSection,
};
use tables::{Tables, check_sections, role_list};

/// The manifest's file name inside a plugin folder.
pub const FILE: &str = "plugin.toml";

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
    /// A JSON Schema file in the plugin folder that `[config]` must satisfy.
    #[serde(default)]
    config_schema: Option<String>,
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
    capabilities: super::capabilities::Asked,
    #[serde(default)]
    build: Option<BuildSection>,
    #[serde(default)]
    config: toml::Table,
}

/// How the plugin's component is built from its source (`[build]`, run by
/// `integration-host plugin build`, as Spin's `spin build` reads its manifest).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSection {
    /// A shell command run in the plugin folder; it writes the component the manifest names.
    pub command: String,
}

/// Reads only a manifest's `[build]` section (the component need not exist yet): the build
/// command, or why there is none.
pub fn build_command(text: &str) -> Result<String, String> {
    #[derive(Deserialize)]
    struct OnlyBuild {
        build: Option<BuildSection>,
    }
    let only: OnlyBuild = toml::from_str(text).map_err(|e| format!("{FILE}: {e}"))?;
    only.build
        .map(|b| b.command)
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| format!("{FILE} has no [build] command"))
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
    /// What it asks for.
    pub capabilities: super::capabilities::Asked,
    /// What it asked for within the operator's grant.
    pub granted: super::capabilities::Granted,
    /// How its component is built, if the manifest says.
    pub build: Option<BuildSection>,
    /// The `[config]` table as a JSON object, handed to the plugin by the host's `config()`.
    pub config_json: String,
    /// The plugin folder.
    pub dir: PathBuf,
}

impl Manifest {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// What a failed call of its permission resolver means (deny unless the manifest says).
    pub fn resolver_on_error(&self) -> ResolverOnError {
        self.resolver
            .as_ref()
            .map(|r| r.on_error)
            .unwrap_or_default()
    }

    /// What a failed call of its credential verifier means (refuse unless the manifest says).
    pub fn verifier_on_error(&self) -> VerifierOnError {
        self.verifier
            .as_ref()
            .map(|v| v.on_error)
            .unwrap_or_default()
    }

    /// What a failed call means, per role it plays, as the manifest sets it or by default (in
    /// its own words: `continue`, `veto`, `abstain`, `deny`, `refuse`). A config provider has
    /// no policy: its failure stops the sync.
    pub fn on_error(&self) -> Vec<(Role, &'static str)> {
        self.roles
            .iter()
            .filter_map(|&role| {
                let policy = match role {
                    Role::Observer => self.observer.as_ref()?.on_error.as_str(),
                    Role::PermissionResolver => self.resolver_on_error().as_str(),
                    Role::BeforeInterceptor => self.before.as_ref()?.on_error.as_str(),
                    Role::AfterInterceptor => self.after.as_ref()?.on_error.as_str(),
                    Role::CredentialVerifier => self.verifier_on_error().as_str(),
                    Role::ConfigProvider => return None,
                };
                Some((role, policy))
            })
            .collect()
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
    let granted = raw
        .capabilities
        .granted(&raw.id, settings.grants.get(&raw.id))
        .map_err(|m| err("capabilities", m))?;
    let config = toml_to_json(toml::Value::Table(raw.config));
    if let Some(file) = &raw.config_schema {
        schema::check(dir, file, &config).map_err(|(k, m)| err(&k, m))?;
    }
    let config_json = serde_json::to_string(&config).map_err(|e| err("config", e.to_string()))?;
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
        build: raw.build,
        granted,
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
                "capabilities",
            ),
            (
                GOOD.replace("roles", "capabilities = [\"network\"]\nroles"),
                "capabilities",
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
        s.grants.insert(
            "login-audit".into(),
            crate::config::PluginGrant {
                clock: true,
                ..Default::default()
            },
        );
        let text = GOOD.replace("roles", "capabilities = [\"clock\"]\nroles");
        let m = parse(Path::new("p"), &text, &s).unwrap();
        assert!(m.capabilities.clock && m.granted.clock);
        let text = format!("{GOOD}\n[capabilities]\nclock = true\n");
        assert!(parse(Path::new("p"), &text, &s).unwrap().granted.clock);
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
