//! Loading one plugin folder: its manifest read and checked, its component compiled (or read
//! from the cache), its exports matched against the manifest's roles and API version, and a
//! first instance of each role started.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use super::error::LoadError;
use super::manifest::{self, Manifest, Role};
use super::pool::{Plugin, Policy, World};
use super::state::{Health, Identity, State};
use super::{engine, v1};
use crate::config::PluginSettings;

/// What loading needs, shared by every load of one host.
pub(super) struct Loader {
    pub(super) settings: PluginSettings,
    /// The engine and the linker of the host's imports; `None` without plugin folders.
    pub(super) wasm: Option<(Engine, Linker<State>)>,
    /// Where compiled components are cached.
    pub(super) cache: PathBuf,
    /// Each plugin id's health, kept across reloads.
    pub(super) health: Mutex<BTreeMap<String, Arc<Health>>>,
    /// The order of failures across plugins.
    pub(super) seq: Arc<AtomicU64>,
}

/// A folder that did not load: the plugin's id when its manifest could be read, and why.
pub(super) type Failed = (Option<String>, LoadError);

impl Loader {
    /// Loads the plugin in `dir`.
    pub(super) async fn load(&self, dir: &Path) -> Result<Plugin, Failed> {
        let Some((engine, linker)) = &self.wasm else {
            return Err((None, LoadError::NoEngine));
        };
        let text = std::fs::read_to_string(dir.join(manifest::FILE)).map_err(|e| {
            (
                None,
                LoadError::Manifest(format!("cannot read {}: {e}", manifest::FILE)),
            )
        })?;
        let manifest = manifest::parse(dir, &text, &self.settings)
            .map_err(|e| (None, LoadError::Manifest(e.to_string())))?;
        let id = manifest.id.clone();
        let fail = |e: LoadError| (Some(id.clone()), e);
        let bytes = std::fs::read(&manifest.component).map_err(|e| {
            fail(LoadError::Component {
                path: manifest.component.display().to_string(),
                reason: e.to_string(),
            })
        })?;
        let (engine2, cache) = (engine.clone(), self.cache.clone());
        let (component, origin) =
            tokio::task::spawn_blocking(move || engine::load_component(&engine2, &bytes, &cache))
                .await
                .map_err(|e| fail(LoadError::Invalid(format!("compiling panicked: {e}"))))?
                .map_err(|e| fail(LoadError::Invalid(format!("{e:#}"))))?;
        check_exports(engine, &component, &manifest).map_err(fail)?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| fail(LoadError::Imports(format!("{e:#}"))))?;
        let health = {
            let mut all = self.health.lock().unwrap_or_else(|p| p.into_inner());
            all.entry(id.clone())
                .or_insert_with(|| Arc::new(Health::new(self.seq.clone())))
                .clone()
        };
        health.clear_quarantine();
        let s = &self.settings;
        let mut plugin = Plugin {
            identity: Arc::new(Identity {
                id: id.clone(),
                config_json: manifest.config_json.clone(),
                health,
            }),
            dir: dir.to_owned(),
            engine: engine.clone(),
            policy: Policy {
                failures: s.quarantine_failures,
                window: Duration::from_secs(s.quarantine_window_seconds),
                quarantine: Duration::from_secs(s.quarantine_seconds),
                warm: s.warm_instances,
            },
            origin,
            loaded_at: crate::clock::now(),
            observer: None,
            resolver: None,
            provider: None,
            manifest,
        };
        let role_err = |role: Role, e: wasmtime::Error| {
            fail(LoadError::World {
                role,
                reason: format!("{e:#}"),
            })
        };
        let started = |e| fail(LoadError::Start(e));
        if plugin.manifest.has(Role::Observer) {
            let pre = <v1::observer::ObserverPlugin as World>::pre(pre.clone())
                .map_err(|e| role_err(Role::Observer, e))?;
            plugin.observer = Some(plugin.warm_up(pre).await.map_err(started)?);
        }
        if plugin.manifest.has(Role::PermissionResolver) {
            let pre = <v1::resolver::PermissionResolverPlugin as World>::pre(pre.clone())
                .map_err(|e| role_err(Role::PermissionResolver, e))?;
            plugin.resolver = Some(plugin.warm_up(pre).await.map_err(started)?);
        }
        if plugin.manifest.has(Role::ConfigProvider) {
            let pre = <v1::provider::ConfigProviderPlugin as World>::pre(pre)
                .map_err(|e| role_err(Role::ConfigProvider, e))?;
            plugin.provider = Some(plugin.warm_up(pre).await.map_err(started)?);
        }
        Ok(plugin)
    }
}

/// Checks that the component exports the interface of every role the manifest lists, at the
/// manifest's API version.
fn check_exports(engine: &Engine, component: &Component, m: &Manifest) -> Result<(), LoadError> {
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    for role in &m.roles {
        let want = format!(
            "{}/{}@{}",
            manifest::PACKAGE,
            role.interface(),
            m.api_semver()
        );
        if exports.contains(&want) {
            continue;
        }
        let prefix = format!("{}/{}@", manifest::PACKAGE, role.interface());
        if let Some(other) = exports.iter().find(|e| e.starts_with(&prefix)) {
            return Err(LoadError::Exports(format!(
                "the component was built against another API version: it exports `{other}`, but its manifest says api_version {}.{} (`{want}`)",
                m.api.0, m.api.1
            )));
        }
        return Err(LoadError::Exports(format!(
            "the manifest lists the role {} but the component does not export `{want}` (it exports: {})",
            role.as_str(),
            if exports.is_empty() {
                "nothing".to_owned()
            } else {
                exports.join(", ")
            }
        )));
    }
    Ok(())
}
