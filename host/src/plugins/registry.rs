//! The registry: which plugin folders are loaded, which failed and why, and the reload that
//! builds the next registry from the folders (new and changed ones loaded, removed ones
//! dropped, a failed reload keeping the previous version serving).

use std::collections::BTreeMap;
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use serde::Serialize;

use super::error::LoadError;
use super::loader::Loader;
use super::manifest::{self, Role};
use super::pool::Plugin;

/// A plugin folder that could not be loaded (or reloaded), and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub dir: String,
    /// The plugin's id, when its manifest could be read.
    pub id: Option<String>,
    pub error: String,
    /// True when an earlier version of the plugin still serves.
    pub still_serving: bool,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.id {
            Some(id) => write!(f, "plugin `{id}` ({}): {}", self.dir, self.error)?,
            None => write!(f, "plugin folder {}: {}", self.dir, self.error)?,
        }
        if self.still_serving {
            write!(f, " (the previous version keeps serving)")?;
        }
        Ok(())
    }
}

/// A plugin folder as the registry holds it.
#[derive(Clone)]
pub(super) struct Entry {
    fingerprint: u64,
    plugin: Option<Arc<Plugin>>,
    problem: Option<Problem>,
}

/// The plugins of one load or reload; replaced whole by the next.
#[derive(Default)]
pub(super) struct Registry {
    entries: BTreeMap<PathBuf, Entry>,
    /// Resolvers in call order: sort order, then id.
    pub(super) resolvers: Vec<Arc<Plugin>>,
    /// Before- and after-interceptors in call order.
    pub(super) befores: Vec<Arc<Plugin>>,
    pub(super) afters: Vec<Arc<Plugin>>,
    /// The credential verifier: one plugin at most.
    pub(super) verifier: Option<Arc<Plugin>>,
    pub(super) problems: Vec<Problem>,
}

impl Registry {
    pub(super) fn plugins(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.entries.values().filter_map(|e| e.plugin.as_ref())
    }

    /// The plugins that `plays`, in call order: sort order, then id.
    fn in_order(&self, plays: impl Fn(&Plugin) -> bool) -> Vec<Arc<Plugin>> {
        let mut out: Vec<Arc<Plugin>> = self.plugins().filter(|p| plays(p)).cloned().collect();
        out.sort_by(|a, b| (a.manifest.sort_order, a.id()).cmp(&(b.manifest.sort_order, b.id())));
        out
    }
}

/// What a load or reload did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadReport {
    pub loaded: Vec<String>,
    /// Plugins whose components began compiling in the background (at server start): they
    /// show `loading`, and each role they play follows its error policy until they are ready.
    pub loading: Vec<String>,
    pub reloaded: Vec<String>,
    pub removed: Vec<String>,
    pub problems: Vec<Problem>,
    /// A config provider came, went or changed: the declarative sync should run.
    pub providers_changed: bool,
}

impl ReloadReport {
    pub fn changed(&self) -> bool {
        !(self.loaded.is_empty() && self.reloaded.is_empty() && self.removed.is_empty())
    }
}

impl Registry {
    /// The next registry: folders unchanged since `self` keep their plugin, new and changed
    /// ones are loaded (a failed one keeps its previous version serving), removed ones go, and
    /// plugins still loading are loaded now. With `wait` false, a new plugin whose component
    /// is not compiled yet is left [`Plugin::loading`] (see [`Loader::load`]).
    pub(super) async fn reload(&self, loader: &Loader, wait: bool) -> (Registry, ReloadReport) {
        let current = self;
        let mut report = ReloadReport::default();
        let (dirs, dir_problems) = manifest::plugin_dirs(&loader.settings.directories);
        let mut next = Registry::default();
        for p in dir_problems {
            next.problems.push(Problem {
                dir: p.path.clone(),
                id: None,
                error: p.message,
                still_serving: false,
            });
        }
        for dir in dirs {
            let fingerprint = fingerprint(&dir);
            let old = current.entries.get(&dir);
            if let Some(old) = old
                && old.fingerprint == fingerprint
                && !old.plugin.as_ref().is_some_and(|p| p.loading())
            {
                next.entries.insert(dir, old.clone());
                continue;
            }
            let was_loading = old
                .and_then(|o| o.plugin.as_ref())
                .is_some_and(|p| p.loading());
            // A version that served (not one still loading) keeps serving until the new one
            // is ready.
            let old_plugin = old.and_then(|o| o.plugin.clone()).filter(|p| !p.loading());
            match loader.load(&dir, wait || old_plugin.is_some()).await {
                Ok(plugin) => {
                    let plugin = Arc::new(plugin);
                    if plugin.loading() {
                        // Reported once, when it starts loading.
                        if !was_loading {
                            report.loading.push(plugin.id().to_owned());
                        }
                    } else if let Some(old) = &old_plugin {
                        report.reloaded.push(plugin.id().to_owned());
                        if old.manifest.has(Role::ConfigProvider) {
                            report.providers_changed = true;
                        }
                    } else {
                        report.loaded.push(plugin.id().to_owned());
                    }
                    if plugin.manifest.has(Role::ConfigProvider) {
                        report.providers_changed = true;
                    }
                    next.entries.insert(
                        dir,
                        Entry {
                            fingerprint,
                            plugin: Some(plugin),
                            problem: None,
                        },
                    );
                }
                Err((id, error)) => {
                    let problem = Problem {
                        dir: dir.display().to_string(),
                        id,
                        error: error.to_string(),
                        still_serving: old_plugin.is_some(),
                    };
                    next.entries.insert(
                        dir,
                        Entry {
                            fingerprint,
                            plugin: old_plugin,
                            problem: Some(problem),
                        },
                    );
                }
            }
        }
        // Two folders with one id: the first (by path) wins.
        let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
        for (dir, entry) in next.entries.iter_mut() {
            let Some(plugin) = &entry.plugin else {
                continue;
            };
            if let Some(first) = seen.get(plugin.id()) {
                entry.problem = Some(Problem {
                    dir: dir.display().to_string(),
                    id: Some(plugin.id().to_owned()),
                    error: LoadError::DuplicateId(first.display().to_string()).to_string(),
                    still_serving: false,
                });
                report
                    .loaded
                    .retain(|i| i != plugin.id() || seen.contains_key(i));
                report
                    .loading
                    .retain(|i| i != plugin.id() || seen.contains_key(i));
                entry.plugin = None;
            } else {
                seen.insert(plugin.id().to_owned(), dir.clone());
            }
        }
        for (dir, entry) in &current.entries {
            // One that never finished loading was never announced.
            let Some(old) = entry.plugin.as_ref().filter(|p| !p.loading()) else {
                continue;
            };
            let still = next
                .entries
                .get(dir)
                .and_then(|e| e.plugin.as_ref())
                .is_some_and(|p| p.id() == old.id());
            if !still && !seen.contains_key(old.id()) {
                report.removed.push(old.id().to_owned());
                if old.manifest.has(Role::ConfigProvider) {
                    report.providers_changed = true;
                }
            }
        }
        // One credential verifier: the first by sort order and id plays it; another is a load
        // error naming both.
        let mut verifiers = next.in_order(|p| p.manifest.has(Role::CredentialVerifier));
        if verifiers.len() > 1 {
            let first = verifiers.remove(0);
            for entry in next.entries.values_mut() {
                let Some(plugin) = &entry.plugin else {
                    continue;
                };
                if !verifiers.iter().any(|v| Arc::ptr_eq(v, plugin)) {
                    continue;
                }
                report.loaded.retain(|i| i != plugin.id());
                report.loading.retain(|i| i != plugin.id());
                report.reloaded.retain(|i| i != plugin.id());
                entry.problem = Some(Problem {
                    dir: plugin.dir.display().to_string(),
                    id: Some(plugin.id().to_owned()),
                    error: LoadError::SecondSeam {
                        role: Role::CredentialVerifier,
                        first: first.id().to_owned(),
                    }
                    .to_string(),
                    still_serving: false,
                });
                entry.plugin = None;
            }
            verifiers = vec![first];
        }
        next.verifier = verifiers.pop();
        next.problems
            .extend(next.entries.values().filter_map(|e| e.problem.clone()));
        // A plugin still loading is in its roles' call order already (each call follows the
        // role's error policy until it is ready).
        next.resolvers = next.in_order(|p| p.manifest.has(Role::PermissionResolver));
        next.befores = next.in_order(|p| p.manifest.has(Role::BeforeInterceptor));
        next.afters = next.in_order(|p| p.manifest.has(Role::AfterInterceptor));
        report.problems = next.problems.clone();
        (next, report)
    }

    /// Whether any plugin folder differs from what the registry was built from.
    pub(super) fn folders_changed(&self, directories: &[PathBuf]) -> bool {
        let (dirs, _) = manifest::plugin_dirs(directories);
        if dirs.len() != self.entries.len() {
            return true;
        }
        dirs.iter().any(|d| {
            self.entries
                .get(d)
                .is_none_or(|e| e.fingerprint != fingerprint(d))
        })
    }
}

/// A digest of every plugin folder of `directories`: their paths and fingerprints.
pub(super) fn folders_digest(directories: &[PathBuf]) -> u64 {
    let (dirs, _) = manifest::plugin_dirs(directories);
    let mut h = std::hash::DefaultHasher::new();
    for d in &dirs {
        d.hash(&mut h);
        fingerprint(d).hash(&mut h);
    }
    h.finish()
}

/// A digest of what a plugin folder holds: the manifest's text, the component's size and
/// modification time, and the config schema's text.
fn fingerprint(dir: &Path) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    let text = std::fs::read(dir.join(manifest::FILE)).unwrap_or_default();
    text.hash(&mut h);
    // The component path without a full parse: a broken manifest fingerprints by its text.
    if let Ok(doc) = std::str::from_utf8(&text)
        .unwrap_or("")
        .parse::<toml::Table>()
        && let Some(component) = doc.get("component").and_then(|c| c.as_str())
        && let Ok(meta) = std::fs::metadata(dir.join(component))
    {
        meta.len().hash(&mut h);
        meta.modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .hash(&mut h);
        // The schema `[config]` is checked against: a change to it is a change of the plugin.
        if let Some(schema) = doc.get("config_schema").and_then(|c| c.as_str()) {
            std::fs::read(dir.join(schema))
                .unwrap_or_default()
                .hash(&mut h);
        }
    }
    h.finish()
}
