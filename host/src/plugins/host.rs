//! The plugin host: what the rest of the server holds. It owns the current registry (swapped
//! whole on reload, so calls in flight finish on the version they started with), the loader,
//! the reload poller, and the host's side of each role.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::engine;
use super::error::{LoadError, ProvidersFailed};
use super::info::PluginInfo;
use super::loader::Loader;
use super::pool::Plugin;
use super::registry::{Problem, Registry, ReloadReport};
use super::roles::subscribe_observers;
use crate::config::PluginSettings;
use crate::events::{
    Additions, Credentials, Dispatcher, Interceptors, Operation, Produced, Refusal, Verification,
};
use crate::services::authorization::{Decision, PermissionResolvers, Principal, RequestFacts};
use crate::services::integration::IntegrationForm;

struct Inner {
    loader: Loader,
    registry: RwLock<Arc<Registry>>,
    any_resolver: AtomicBool,
    events: Dispatcher,
    reloading: tokio::sync::Mutex<()>,
    /// Woken each time a registry is swapped in.
    swapped: tokio::sync::Notify,
}

/// The plugin host; cheap to clone.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("directories", &self.inner.loader.settings.directories)
            .finish_non_exhaustive()
    }
}

impl PluginHost {
    /// A host for the configured plugin folders; with none, no engine is created and every
    /// call is a no-op. Plugins are loaded by [`PluginHost::reload`].
    pub fn new(
        settings: &PluginSettings,
        data_dir: &Path,
        events: Dispatcher,
    ) -> anyhow::Result<Self> {
        Self::build(settings, data_dir, events, false)
    }

    /// Gives plugins granted key-value state their store: call before the first load (plugins
    /// loaded before it answer `unavailable`). Later calls change nothing.
    pub fn keep_state_in(&self, state: crate::services::plugin_state::PluginState) {
        let _ = self.inner.loader.kv.set(state);
    }

    /// A host with an engine even without plugin folders: for checking or measuring one
    /// plugin folder with [`PluginHost::load_folder`].
    pub fn standalone(settings: &PluginSettings, data_dir: &Path) -> anyhow::Result<Self> {
        Self::build(settings, data_dir, Dispatcher::new(), true)
    }

    fn build(
        settings: &PluginSettings,
        data_dir: &Path,
        events: Dispatcher,
        force_engine: bool,
    ) -> anyhow::Result<Self> {
        let wasm = if settings.directories.is_empty() && !force_engine {
            None
        } else {
            let engine = engine::engine(settings)?;
            let linker = engine::linker(&engine)?;
            Some((engine, linker))
        };
        let host = Self {
            inner: Arc::new(Inner {
                loader: Loader {
                    settings: settings.clone(),
                    wasm,
                    cache: engine::cache_dir(settings, data_dir),
                    health: Mutex::default(),
                    seq: Arc::new(AtomicU64::new(0)),
                    kv: std::sync::OnceLock::new(),
                },
                registry: RwLock::new(Arc::new(Registry::default())),
                any_resolver: AtomicBool::new(false),
                events: events.clone(),
                reloading: tokio::sync::Mutex::new(()),
                swapped: tokio::sync::Notify::new(),
            }),
        };
        if !force_engine {
            events.intercept_with(Arc::new(Installed(Arc::downgrade(&host.inner))));
        }
        Ok(host)
    }

    fn registry(&self) -> Arc<Registry> {
        self.inner
            .registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether any plugin folders are configured.
    pub fn enabled(&self) -> bool {
        self.inner.loader.wasm.is_some()
    }

    /// The loaded plugins, by id.
    pub fn list(&self) -> Vec<PluginInfo> {
        let mut out: Vec<PluginInfo> = self.registry().plugins().map(|p| p.info()).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Every plugin's outbound HTTP outcomes since start (also of plugins since unloaded), by
    /// plugin id.
    pub fn http_counts(&self) -> Vec<(String, super::outbound::Outcome, u64)> {
        let all = self
            .inner
            .loader
            .health
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        all.iter()
            .flat_map(|(id, health)| {
                health
                    .http
                    .counts()
                    .map(|(outcome, n)| (id.clone(), outcome, n))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The folders that failed to load, as of the last load or reload.
    pub fn problems(&self) -> Vec<Problem> {
        self.registry().problems.clone()
    }

    /// A loaded plugin by id.
    pub fn get(&self, id: &str) -> Option<Arc<Plugin>> {
        self.registry().plugins().find(|p| p.id() == id).cloned()
    }

    /// Loads new and changed plugin folders (and those still loading), drops removed ones, and
    /// swaps the registry: calls already running finish on the version they started with.
    pub async fn reload(&self) -> ReloadReport {
        self.reload_waiting(true).await
    }

    /// The first load of a server that serves at once: plugins whose components are compiled
    /// already (in the cache) load now, the others show `loading` (each role they play follows
    /// its error policy) and compile in the background, one after another, each serving as soon
    /// as it is ready. `after` runs with the report of each of those later loads (the server
    /// re-syncs integrations when a config provider came).
    pub async fn start<F>(&self, after: F) -> ReloadReport
    where
        F: Fn(ReloadReport) -> BoxFuture<'static, ()> + Send + Sync + 'static,
    {
        let report = self.reload_waiting(false).await;
        if !report.loading.is_empty() {
            let (host, ids) = (self.clone(), report.loading.clone());
            tokio::spawn(async move {
                for id in ids {
                    let Some(plugin) = host.get(&id).filter(|p| p.loading()) else {
                        continue;
                    };
                    let started = std::time::Instant::now();
                    // Into the compile cache; a component that does not compile is reported by
                    // the load below.
                    host.inner
                        .loader
                        .compile(plugin.manifest.component.clone())
                        .await;
                    tracing::info!(plugin = %id, seconds = started.elapsed().as_secs_f64(), "plugin compiled in the background");
                    after(host.reload_waiting(false).await).await;
                }
                // What did not compile: loaded (and reported) as any reload does.
                if host.registry().plugins().any(|p| p.loading()) {
                    after(host.reload().await).await;
                }
            });
        }
        report
    }

    /// The ids of the plugins still loading.
    pub fn loading(&self) -> Vec<String> {
        self.registry()
            .plugins()
            .filter(|p| p.loading())
            .map(|p| p.id().to_owned())
            .collect()
    }

    /// Returns once no plugin is loading (at once when none is).
    pub async fn settled(&self) {
        loop {
            let swapped = self.inner.swapped.notified();
            tokio::pin!(swapped);
            swapped.as_mut().enable();
            if !self.registry().plugins().any(|p| p.loading()) {
                return;
            }
            swapped.await;
        }
    }

    async fn reload_waiting(&self, wait: bool) -> ReloadReport {
        if !self.enabled() {
            return ReloadReport::default();
        }
        let _one_at_a_time = self.inner.reloading.lock().await;
        let current = self.registry();
        let (next, report) = current.reload(&self.inner.loader, wait).await;
        let next = Arc::new(next);
        subscribe_observers(&self.inner.events, &current, &next);
        self.inner
            .any_resolver
            .store(!next.resolvers.is_empty(), Ordering::Release);
        *self
            .inner
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner()) = next;
        self.inner.swapped.notify_waiters();
        for id in report.loaded.iter().chain(&report.reloaded) {
            tracing::info!(plugin = %id, "plugin loaded");
        }
        for id in &report.loading {
            tracing::info!(plugin = %id, "plugin loading: its component is compiling in the background; until it is ready, each role it plays follows its error policy");
        }
        for id in &report.removed {
            tracing::info!(plugin = %id, "plugin removed");
        }
        for p in &report.problems {
            match &p.id {
                Some(id) => {
                    tracing::error!(plugin = %id, dir = %p.dir, error = %p.error, still_serving = p.still_serving, "plugin not loaded")
                }
                // Its manifest could not be read: the folder names it.
                None => {
                    tracing::error!(dir = %p.dir, error = %p.error, "plugin folder not loaded")
                }
            }
        }
        report
    }

    /// Loads one plugin folder on its own (not registered, no observer subscribed): what
    /// `plugin check` and `plugin bench` use.
    pub async fn load_folder(&self, dir: &Path) -> Result<Arc<Plugin>, Problem> {
        self.inner
            .loader
            .load(dir, true)
            .await
            .map(Arc::new)
            .map_err(|(id, error): (Option<String>, LoadError)| Problem {
                dir: dir.display().to_string(),
                id,
                error: error.to_string(),
                still_serving: false,
            })
    }

    /// Whether any config provider is loaded.
    pub fn has_providers(&self) -> bool {
        self.registry()
            .plugins()
            .any(|p| p.manifest.has(super::manifest::Role::ConfigProvider))
    }

    /// Whether any permission resolver is loaded (the fast path skips them all otherwise).
    pub fn has_resolvers(&self) -> bool {
        self.inner.any_resolver.load(Ordering::Acquire)
    }

    /// The integrations every config provider declares, as definition forms by source
    /// (`plugin:<id>`). Any provider failing makes the whole answer an error, so a sync never
    /// deletes what a broken provider declared.
    pub async fn provided_integrations(
        &self,
    ) -> Result<Vec<(String, Vec<IntegrationForm>)>, ProvidersFailed> {
        self.registry().provided_integrations().await
    }

    /// Whether any plugin folder differs from what the registry was built from.
    pub fn folders_changed(&self) -> bool {
        self.registry()
            .folders_changed(&self.inner.loader.settings.directories)
    }

    /// A digest of every plugin folder as it is now (what [`PluginHost::folders_changed`]
    /// compares), to see whether a change is still under way.
    fn folders_now(&self) -> u64 {
        super::registry::folders_digest(&self.inner.loader.settings.directories)
    }
}

/// Runs the reload poller: checks the plugin folders every `plugins.reload_poll_ms` and
/// reloads on change, then calls `after` with the report (the server re-syncs integrations
/// when a config provider changed).
pub fn spawn_reloader<F>(host: PluginHost, after: F) -> Option<tokio::task::JoinHandle<()>>
where
    F: Fn(ReloadReport) -> BoxFuture<'static, ()> + Send + Sync + 'static,
{
    let every = host.inner.loader.settings.reload_poll_ms;
    if every == 0 || !host.enabled() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(every));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        // A change still being written (a component mid-copy, a build still linking) changes
        // again within moments: reload once the folders stayed the same for a short while, so
        // a half-written component is never compiled (at most 50 waits, then reload anyway).
        let settle = Duration::from_millis(every.min(200));
        loop {
            tick.tick().await;
            if !host.folders_changed() {
                continue;
            }
            let mut seen = host.folders_now();
            for _ in 0..50 {
                tokio::time::sleep(settle).await;
                let now = host.folders_now();
                if now == seen {
                    break;
                }
                seen = now;
            }
            let report = host.reload().await;
            after(report).await;
        }
    }))
}

/// The host's interceptors and credential verifier as installed into the event dispatcher the
/// services call: by a weak reference (the host holds the dispatcher), passing everything
/// through once the host is gone.
struct Installed(std::sync::Weak<Inner>);

impl Installed {
    fn registry(&self) -> Option<Arc<Registry>> {
        self.0
            .upgrade()
            .map(|inner| PluginHost { inner }.registry())
    }
}

impl Interceptors for Installed {
    fn before(&self, op: Operation) -> BoxFuture<'_, Result<Operation, Refusal>> {
        let registry = self.registry();
        Box::pin(async move {
            match registry {
                Some(r) => r.before(op).await,
                None => Ok(op),
            }
        })
    }

    fn wants_after(&self, name: &str) -> bool {
        self.registry().is_some_and(|r| {
            r.afters
                .iter()
                .any(|p| p.manifest.after.as_ref().is_some_and(|a| a.wants(name)))
        })
    }

    fn after<'a>(&'a self, produced: &'a Produced) -> BoxFuture<'a, Result<Additions, Refusal>> {
        let registry = self.registry();
        Box::pin(async move {
            match registry {
                Some(r) => r.after(produced).await,
                None => Ok(Additions::default()),
            }
        })
    }

    fn verify<'a>(
        &'a self,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Verification, Refusal>> {
        let registry = self.registry();
        Box::pin(async move {
            match registry {
                Some(r) => r.verify(credentials).await,
                None => Ok(Verification::Abstain),
            }
        })
    }
}

/// The host's permission resolvers, asked by `services::authorization::permits`: any deny wins,
/// then any allow.
impl PermissionResolvers for PluginHost {
    fn active(&self) -> bool {
        self.has_resolvers()
    }

    fn decide(
        &self,
        principal: &Principal,
        resources: &[String],
        acl_allows: bool,
        facts: RequestFacts<'_>,
    ) -> impl std::future::Future<Output = Decision> + Send {
        let registry = self.registry();
        async move {
            registry
                .decide(principal, resources, acl_allows, facts)
                .await
        }
    }
}
