//! Declarative integrations: definition files and their sync with the database.
//!
//! This module owns the integration definition format (TOML files in the folders named by
//! `integrations.directories`, like Magento's `integration/config.xml` and `api.xml`) and the
//! sync. Every file is read and checked first; one bad file (or a missing folder) stops the
//! whole sync before anything is written, so a typo can never delete the integrations of the
//! file it broke. Then, by name (case-insensitively): a new definition is created (inactive,
//! setup type config); an unchanged one is left alone; a changed one is updated, its tokens
//! deleted and its status reset (2) so the merchant approves it again, keeping its consumer; a
//! config integration no longer defined anywhere is deleted with its consumer, tokens and ACL
//! role. Manual integrations are never touched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::acl::UnknownResource;
use crate::domain::SetupType;
use crate::services::ServiceError;
use crate::services::integration::{
    Integration, IntegrationForm, IntegrationInput, IntegrationService,
};

mod sources;
pub use sources::{log_sync, spawn_watcher, sync_after_reload, sync_integrations};

/// A definition file that cannot be applied: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: key `{key}`: {message}")]
pub struct DefinitionError {
    pub path: PathBuf,
    /// The offending key, such as `integration[1].endpoint`; empty for the file as a whole.
    pub key: String,
    pub message: String,
}

/// Why a sync applied nothing, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Definitions(Vec<DefinitionError>),
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A plugin folder failed to load: it may declare integrations, and a sync without them
    /// would delete them.
    #[error("{0}")]
    PluginNotLoaded(String),
    /// A config provider failed to answer; likewise.
    #[error(transparent)]
    Providers(#[from] crate::plugins::ProvidersFailed),
}

/// One integration as a file declares it.
#[derive(Debug, Clone)]
pub struct Definition {
    pub input: IntegrationInput,
    /// The file and entry it came from, such as `dir/shop.toml` entry 0.
    pub path: PathBuf,
    pub index: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    integration: Vec<FileEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    endpoint_url: Option<String>,
    #[serde(default)]
    identity_link_url: Option<String>,
    #[serde(default)]
    all_resources: bool,
    #[serde(default)]
    resources: Vec<String>,
}

/// What a sync did, by integration name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    pub removed: Vec<String>,
}

impl std::fmt::Display for SyncReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} created, {} updated and reset, {} unchanged, {} removed",
            self.created.len(),
            self.updated.len(),
            self.unchanged.len(),
            self.removed.len()
        )
    }
}

/// The `*.toml` files of the folders, sorted by path. A folder that cannot be read is an
/// error: treating it as empty would delete every integration it declares.
fn definition_files(dirs: &[PathBuf]) -> Result<Vec<PathBuf>, DefinitionError> {
    let mut files = Vec::new();
    for dir in dirs {
        let entries = std::fs::read_dir(dir).map_err(|e| DefinitionError {
            path: dir.clone(),
            key: String::new(),
            message: format!("cannot read the folder: {e}"),
        })?;
        for entry in entries {
            let path = entry
                .map_err(|e| DefinitionError {
                    path: dir.clone(),
                    key: String::new(),
                    message: format!("cannot read the folder: {e}"),
                })?
                .path();
            if path.extension().is_some_and(|x| x == "toml") && path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Parses one definition file; `check_resource` refuses unknown ACL resources.
pub fn parse_file(
    path: &Path,
    text: &str,
    check_resource: &dyn Fn(&str) -> Result<(), UnknownResource>,
) -> Result<Vec<Definition>, DefinitionError> {
    let doc: FileDoc =
        crate::config::parse_toml_at_key(text).map_err(|(key, message)| DefinitionError {
            path: path.to_owned(),
            key,
            message,
        })?;
    let forms = doc
        .integration
        .into_iter()
        .map(|e| IntegrationForm {
            name: e.name,
            email: e.email,
            endpoint: e.endpoint_url,
            identity_link_url: e.identity_link_url,
            all_resources: e.all_resources,
            resources: e.resources,
        })
        .collect();
    parse_forms(path, forms, check_resource)
}

/// Checks definitions given as forms (a file's entries, or what a config-provider plugin
/// declared, with `path` naming the source, e.g. `plugin:partner-catalog`).
pub fn parse_forms(
    path: &Path,
    forms: Vec<IntegrationForm>,
    check_resource: &dyn Fn(&str) -> Result<(), UnknownResource>,
) -> Result<Vec<Definition>, DefinitionError> {
    let err = |key: String, message: String| DefinitionError {
        path: path.to_owned(),
        key,
        message,
    };
    let mut out = Vec::with_capacity(forms.len());
    for (i, form) in forms.into_iter().enumerate() {
        let mut input = IntegrationInput::parse(&form, SetupType::Config).map_err(|f| {
            let key = match f.field {
                "endpoint" => "endpoint_url",
                other => other,
            };
            err(format!("integration[{i}].{key}"), f.to_string())
        })?;
        if !input.all_resources {
            for (j, r) in input.resources.iter().enumerate() {
                check_resource(r)
                    .map_err(|e| err(format!("integration[{i}].resources[{j}]"), e.to_string()))?;
            }
        }
        input.config_hash = fingerprint(&input);
        out.push(Definition {
            input,
            path: path.to_owned(),
            index: i,
        });
    }
    Ok(out)
}

/// A stable digest of what a definition says.
fn fingerprint(input: &IntegrationInput) -> String {
    let mut resources = input.resources.clone();
    resources.sort();
    resources.dedup();
    let canonical = serde_json::json!({
        "name": input.name.as_str(),
        "email": input.email.as_ref().map(|e| e.as_str()),
        "endpoint": input.endpoint.as_ref().map(|u| u.as_str()),
        "identity_link_url": input.identity_link_url.as_ref().map(|u| u.as_str()),
        "all_resources": input.all_resources,
        "resources": if input.all_resources { Vec::new() } else { resources },
    });
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads and checks every definition of the folders. All errors are collected; names must be
/// unique across files.
pub fn load(
    dirs: &[PathBuf],
    provided: Vec<(String, Vec<IntegrationForm>)>,
    check_resource: &dyn Fn(&str) -> Result<(), UnknownResource>,
) -> Result<Vec<Definition>, Vec<DefinitionError>> {
    let files = definition_files(dirs).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut defs: Vec<Definition> = Vec::new();
    for (source, forms) in provided {
        match parse_forms(Path::new(&source), forms, check_resource) {
            Ok(found) => defs.extend(found),
            Err(e) => errors.push(e),
        }
    }
    for path in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(DefinitionError {
                    path,
                    key: String::new(),
                    message: format!("cannot read the file: {e}"),
                });
                continue;
            }
        };
        match parse_file(&path, &text, check_resource) {
            Ok(found) => defs.extend(found),
            Err(e) => errors.push(e),
        }
    }
    let mut by_name: BTreeMap<String, &Definition> = BTreeMap::new();
    for d in &defs {
        let key = d.input.name.as_str().to_lowercase();
        if let Some(first) = by_name.get(&key) {
            errors.push(DefinitionError {
                path: d.path.clone(),
                key: format!("integration[{}].name", d.index),
                message: format!(
                    "`{}` is already declared in {} (integration[{}])",
                    d.input.name.as_str(),
                    first.path.display(),
                    first.index
                ),
            });
        } else {
            by_name.insert(key, d);
        }
    }
    if errors.is_empty() {
        Ok(defs)
    } else {
        Err(errors)
    }
}

/// Brings the config integrations of the database in line with `definitions`.
pub async fn sync(
    service: &IntegrationService,
    definitions: Vec<Definition>,
) -> Result<SyncReport, SyncError> {
    let existing = service.list().await?;
    let mut by_name: BTreeMap<String, Integration> = existing
        .into_iter()
        .map(|i| (i.name.to_lowercase(), i))
        .collect();
    // A definition may not take over an integration an admin created.
    let clashes: Vec<DefinitionError> = definitions
        .iter()
        .filter_map(|d| {
            let current = by_name.get(&d.input.name.as_str().to_lowercase())?;
            (!current.is_config()).then(|| DefinitionError {
                path: d.path.clone(),
                key: format!("integration[{}].name", d.index),
                message: format!(
                    "an integration named `{}` was created by an admin (id {}); rename one of them",
                    current.name, current.id
                ),
            })
        })
        .collect();
    if !clashes.is_empty() {
        return Err(SyncError::Definitions(clashes));
    }
    let mut report = SyncReport::default();
    for d in definitions {
        let name = d.input.name.as_str().to_owned();
        match by_name.remove(&name.to_lowercase()) {
            None => match service.create(d.input.clone()).await {
                Ok(_) => report.created.push(name),
                // Another process created it meanwhile.
                Err(ServiceError::Conflict(_)) => match service.find_by_name(&name).await? {
                    Some(i) if i.is_config() && i.config_hash == d.input.config_hash => {
                        report.unchanged.push(name)
                    }
                    Some(i) if i.is_config() => {
                        service.reset_from_config(i.id, d.input).await?;
                        report.updated.push(name);
                    }
                    _ => {
                        return Err(ServiceError::Conflict(format!(
                            "Integration with name '{name}' exists."
                        ))
                        .into());
                    }
                },
                Err(e) => return Err(e.into()),
            },
            Some(current) if current.config_hash == d.input.config_hash => {
                report.unchanged.push(name)
            }
            Some(current) => {
                service.reset_from_config(current.id, d.input).await?;
                report.updated.push(name);
            }
        }
    }
    for (_, gone) in by_name {
        if gone.is_config() {
            service.delete_any(gone.id).await?;
            report.removed.push(gone.name);
        }
    }
    Ok(report)
}

/// Loads the configured folders and syncs them.
pub async fn sync_directories(
    service: &IntegrationService,
    dirs: &[PathBuf],
) -> Result<SyncReport, SyncError> {
    sync_sources(service, dirs, Vec::new()).await
}

/// Syncs the definition files of `dirs` together with definitions from other sources (config
/// provider plugins), as one set.
pub async fn sync_sources(
    service: &IntegrationService,
    dirs: &[PathBuf],
    provided: Vec<(String, Vec<IntegrationForm>)>,
) -> Result<SyncReport, SyncError> {
    let tree = service.authorization().tree();
    let check = |resource: &str| tree.grant([resource]).map(|_| ());
    let definitions = load(dirs, provided, &check).map_err(SyncError::Definitions)?;
    sync(service, definitions).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_check(_: &str) -> Result<(), UnknownResource> {
        Ok(())
    }

    #[test]
    fn entries_parse_and_fingerprint_ignores_resource_order() {
        let a = parse_file(
            Path::new("a.toml"),
            "[[integration]]\nname = \"A\"\nresources = [\"X_Y::a\", \"X_Y::b\"]\n",
            &no_check,
        )
        .unwrap();
        let b = parse_file(
            Path::new("b.toml"),
            "[[integration]]\nname = \"A\"\nresources = [\"X_Y::b\", \"X_Y::a\"]\n",
            &no_check,
        )
        .unwrap();
        assert_eq!(a[0].input.config_hash, b[0].input.config_hash);
        let c = parse_file(
            Path::new("c.toml"),
            "[[integration]]\nname = \"A\"\nemail = \"a@b.example\"\n",
            &no_check,
        )
        .unwrap();
        assert_ne!(a[0].input.config_hash, c[0].input.config_hash);
    }

    #[test]
    fn bad_entries_name_their_key() {
        let cases = [
            (
                "[[integration]]\nname = \"A\"\nendpoint_url = \"ftp://x\"\n",
                "integration[0].endpoint_url",
            ),
            (
                "[[integration]]\nname = \"A\"\n[[integration]]\nemail = \"a@b.example\"\n",
                "integration[1].name",
            ),
            (
                "[[integration]]\nname = \"A\"\ncolour = \"red\"\n",
                "integration[0]",
            ),
            ("[[integration]]\nname = \" \"\n", "integration[0].name"),
            (
                "[[integration]]\nname = \"A\"\nemail = \"nope\"\n",
                "integration[0].email",
            ),
            ("[[integration]\n", ""),
        ];
        for (text, key) in cases {
            let e = parse_file(Path::new("f.toml"), text, &no_check).unwrap_err();
            assert!(e.key.starts_with(key), "{text}: {e}");
            assert_eq!(e.path, Path::new("f.toml"));
        }
        let e = parse_file(
            Path::new("f.toml"),
            "[[integration]]\nname = \"A\"\nresources = [\"Nope::x\"]\n",
            &|r| Err(UnknownResource(r.to_owned())),
        )
        .unwrap_err();
        assert_eq!(e.key, "integration[0].resources[0]");
    }
}
