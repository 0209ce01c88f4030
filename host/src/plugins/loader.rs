//! Loading one plugin folder: its manifest read and checked, its component compiled (or read
//! from the cache), its API version and roles read from its exports (and matched against the
//! manifest's, when it states them), and a first instance of each role started with the
//! bindings of that version.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::Engine;
use wasmtime::component::{InstancePre, Linker};

use super::error::{CallError, LoadError};
use super::manifest::{self, Exported, Role, component_exports};
use super::pool::{Plugin, Policy, Pool, Versioned, World};
use super::state::{Health, Identity, State};
use super::{engine, v1_0};
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
    /// Plugins' key-value state, once the host has a database ([`super::PluginHost::keep_state_in`]).
    pub(super) kv: std::sync::OnceLock<crate::services::plugin_state::PluginState>,
}

/// A folder that did not load: the plugin's id when its manifest could be read, and why.
pub(super) type Failed = (Option<String>, LoadError);

impl Loader {
    /// Loads the plugin in `dir`. With `wait` false, a component not in the compile cache is
    /// not compiled here: the plugin comes back [`Plugin::loading`], its manifest checked
    /// against the component's exports, to be loaded again (compiled) in the background.
    pub(super) async fn load(&self, dir: &Path, wait: bool) -> Result<Plugin, Failed> {
        let Some((engine, linker)) = &self.wasm else {
            return Err((None, LoadError::NoEngine));
        };
        let text = std::fs::read_to_string(dir.join(manifest::FILE)).map_err(|e| {
            (
                None,
                LoadError::Manifest(format!("cannot read {}: {e}", manifest::FILE)),
            )
        })?;
        let mut manifest = manifest::parse(dir, &text, &self.settings)
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
        // The component compiled (or from the cache), unless it is not compiled yet and need
        // not be; and what it exports, read without compiling when it is not.
        let (ready, names) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let ready = if wait {
                Some(engine::load_component(&engine2, &bytes, &cache)?)
            } else {
                engine::cached(&engine2, &bytes, &cache).map(|c| (c, engine::Origin::Cached))
            };
            let names: Vec<String> = match &ready {
                Some((component, _)) => component
                    .component_type()
                    .exports(&engine2)
                    .map(|(name, _)| name.to_owned())
                    .collect(),
                None => component_exports(&bytes).map_err(anyhow::Error::msg)?,
            };
            Ok((ready, names))
        })
        .await
        .map_err(|e| fail(LoadError::Invalid(format!("compiling panicked: {e}"))))?
        .map_err(|e| fail(LoadError::Invalid(format!("{e:#}"))))?;
        let exported = Exported::read(names.iter().map(String::as_str))
            .map_err(|e| fail(LoadError::Exports(e)))?;
        manifest
            .settle(&exported)
            .map_err(|e| fail(LoadError::Manifest(e.to_string())))?;
        let Some((component, origin)) = ready else {
            return Ok(self.plugin(dir, engine, manifest, None));
        };
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| fail(LoadError::Imports(format!("{e:#}"))))?;
        let mut plugin = self.plugin(dir, engine, manifest, Some(origin));
        for role in plugin.manifest.roles.clone() {
            let api = exported.api;
            let pre = pre.clone();
            let started = match role {
                Role::Observer => start(&plugin, api, pre)
                    .await
                    .map(|p| plugin.observer = Some(p)),
                Role::PermissionResolver => start(&plugin, api, pre)
                    .await
                    .map(|p| plugin.resolver = Some(p)),
                Role::ConfigProvider => start(&plugin, api, pre)
                    .await
                    .map(|p| plugin.provider = Some(p)),
                Role::BeforeInterceptor => start_newest(&plugin, pre)
                    .await
                    .map(|p| plugin.before = Some(p)),
                Role::AfterInterceptor => start_newest(&plugin, pre)
                    .await
                    .map(|p| plugin.after = Some(p)),
                Role::CredentialVerifier => start_newest(&plugin, pre)
                    .await
                    .map(|p| plugin.verifier = Some(p)),
            };
            started.map_err(|e| {
                fail(match e {
                    Started::World(e) => LoadError::World {
                        role,
                        reason: format!("{e:#}"),
                    },
                    Started::Call(e) => LoadError::Start(e),
                })
            })?;
        }
        Ok(plugin)
    }

    /// Compiles a component into the compile cache, unless it is there already; a failure is
    /// left for the load to report.
    pub(super) async fn compile(&self, component: PathBuf) {
        let Some((engine, _)) = &self.wasm else {
            return;
        };
        let (engine, cache) = (engine.clone(), self.cache.clone());
        let _ = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&component)?;
            engine::load_component(&engine, &bytes, &cache).map(drop)
        })
        .await;
    }

    /// The plugin of a checked manifest, with no instances yet (none at all while `origin`
    /// is `None`: its component is still compiling).
    fn plugin(
        &self,
        dir: &Path,
        engine: &Engine,
        manifest: manifest::Manifest,
        origin: Option<engine::Origin>,
    ) -> Plugin {
        let id = manifest.id.clone();
        let health = {
            let mut all = self.health.lock().unwrap_or_else(|p| p.into_inner());
            all.entry(id.clone())
                .or_insert_with(|| {
                    Arc::new(Health::new(
                        self.seq.clone(),
                        self.settings.http.max_concurrent,
                    ))
                })
                .clone()
        };
        health.clear_quarantine();
        let s = &self.settings;
        Plugin {
            identity: Arc::new(Identity {
                id: id.clone(),
                config_json: manifest.config_json.clone(),
                granted: manifest.granted.clone(),
                kv: self.kv.get().cloned(),
                outbound: Arc::new(super::outbound::Outbound {
                    id: id.clone(),
                    grant: manifest.granted.http.clone(),
                    limits: self.settings.http.clone(),
                    stats: health.http.clone(),
                }),
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
            before: None,
            after: None,
            verifier: None,
            manifest,
        }
    }
}

/// Why a role's pool did not start.
enum Started {
    /// The component does not fit the role's world.
    World(wasmtime::Error),
    /// Its first instance failed.
    Call(CallError),
}

/// A role's pool with its first instance, with the bindings of the component's API version.
async fn start<Old: World, New: World>(
    plugin: &Plugin,
    api: (u32, u32),
    pre: InstancePre<State>,
) -> Result<Versioned<Old, New>, Started> {
    Ok(if api == v1_0::VERSION {
        let pre = Old::pre(pre).map_err(Started::World)?;
        Versioned::V1_0(plugin.warm_up(pre).await.map_err(Started::Call)?)
    } else {
        let pre = New::pre(pre).map_err(Started::World)?;
        Versioned::V1_1(plugin.warm_up(pre).await.map_err(Started::Call)?)
    })
}

/// The pool of a role only the newest API version has.
async fn start_newest<W: World>(
    plugin: &Plugin,
    pre: InstancePre<State>,
) -> Result<Pool<W>, Started> {
    let pre = W::pre(pre).map_err(Started::World)?;
    plugin.warm_up(pre).await.map_err(Started::Call)
}
