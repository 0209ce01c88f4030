//! The plugin host: WebAssembly components that extend the server where Magento uses PHP
//! observers and plugins ([S-5]).
//!
//! This module owns the registry of loaded plugins and every call into them. A plugin is a
//! folder under one of `plugins.directories` with a manifest ([`manifest`]) and a component
//! built against the WIT package in `wit/` ([`v1`]). Loading checks the manifest, compiles the
//! component (or reads it from the cache, [`engine`]), checks its exports against the roles and
//! API version the manifest names, and instantiates it once. A plugin that fails any of this is
//! reported with its folder and reason and left out (in strict mode the server refuses to
//! start); a folder that changes is reloaded, and when the new version fails the old one keeps
//! serving.
//!
//! Calls: each plugin keeps a few warm instances per role (a fresh one costs tens of
//! microseconds, a call on a warm one about one); a call takes one, runs with the plugin's
//! memory cap and an epoch deadline (the plugin yields to the server's scheduler every
//! millisecond, so a busy plugin never stalls other requests) inside a wall-clock bound, and
//! gives it back. Any trap or timeout discards the instance. Failures are counted per plugin:
//! `plugins.quarantine_failures` within the window quarantine it for `quarantine_seconds`, during
//! which its calls are skipped and count as failures under its error policy.
//!
//! Roles: observers are subscribed to the event [`Dispatcher`] (sync or async, ordered by sort
//! order then id, vetoes by their policy); permission resolvers answer in the authorization path
//! through [`PluginHost::decide`] (any deny wins, then any allow, then the ACL); config providers
//! feed the declarative integration sync through [`PluginHost::provided_integrations`].

pub mod engine;
pub mod manifest;
pub mod state;
pub mod v1;

use std::collections::BTreeMap;
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use serde::Serialize;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Engine, Store, UpdateDeadline};

use crate::config::PluginSettings;
use crate::events::{Dispatcher, Event, Mode, ObserveError, Observer};
use crate::services::authorization::{Decision, PermissionResolvers, Principal, RequestFacts};
use crate::services::integration::IntegrationForm;
use manifest::{Manifest, ObserverMode, ObserverOnError, ResolverOnError, Role};
use state::{Health, HealthReport, Identity, State};

/// Calls on one instance before it is replaced by a fresh one.
const RECYCLE_AFTER: u32 = 10_000;
/// Longest reason a plugin may give for a deny or a veto.
pub const MAX_REASON: usize = 1024;
/// Most integrations one provider may declare.
pub const MAX_PROVIDED: usize = 1000;

/// The world bindings of one role, as the pool needs them.
trait World: Sized + Send + 'static {
    type Pre: Send + Sync + 'static;
    fn pre(pre: InstancePre<State>) -> wasmtime::Result<Self::Pre>;
    fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<State>,
    ) -> impl Future<Output = wasmtime::Result<Self>> + Send;
}

macro_rules! world {
    ($world:ty, $pre:ty) => {
        impl World for $world {
            type Pre = $pre;
            fn pre(pre: InstancePre<State>) -> wasmtime::Result<Self::Pre> {
                <$pre>::new(pre)
            }
            fn instantiate(
                pre: &Self::Pre,
                store: &mut Store<State>,
            ) -> impl Future<Output = wasmtime::Result<Self>> + Send {
                pre.instantiate_async(store)
            }
        }
    };
}

world!(
    v1::observer::ObserverPlugin,
    v1::observer::ObserverPluginPre<State>
);
world!(
    v1::resolver::PermissionResolverPlugin,
    v1::resolver::PermissionResolverPluginPre<State>
);
world!(
    v1::provider::ConfigProviderPlugin,
    v1::provider::ConfigProviderPluginPre<State>
);

struct Warm<W> {
    store: Store<State>,
    world: W,
    calls: u32,
}

struct Pool<W: World> {
    pre: W::Pre,
    idle: Mutex<Vec<Warm<W>>>,
}

/// How failures add up to a quarantine.
#[derive(Debug, Clone, Copy)]
struct Policy {
    failures: u32,
    window: Duration,
    quarantine: Duration,
    warm: usize,
}

/// One loaded plugin.
pub struct Plugin {
    pub manifest: Manifest,
    pub dir: PathBuf,
    identity: Arc<Identity>,
    engine: Engine,
    policy: Policy,
    origin: engine::Origin,
    loaded_at: i64,
    observer: Option<Pool<v1::observer::ObserverPlugin>>,
    resolver: Option<Pool<v1::resolver::PermissionResolverPlugin>>,
    provider: Option<Pool<v1::provider::ConfigProviderPlugin>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("id", &self.manifest.id)
            .field("version", &self.manifest.version)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    pub fn health(&self) -> &Health {
        &self.identity.health
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.manifest.limits.timeout_ms)
    }

    fn new_store(&self) -> Store<State> {
        let state = State::new(
            self.identity.clone(),
            (self.manifest.limits.memory_mib as usize) << 20,
            self.manifest.capabilities.iter().any(|c| c == "clock"),
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| s.limiter());
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    fn begin(&self, store: &mut Store<State>) {
        store.data_mut().deadline = Instant::now() + self.timeout();
        store.set_epoch_deadline(1);
    }

    async fn lease<W: World>(&self, pool: &Pool<W>) -> Result<Warm<W>, String> {
        if let Some(warm) = pool.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(warm);
        }
        let mut store = self.new_store();
        self.begin(&mut store);
        let started =
            tokio::time::timeout(self.wall_bound(), W::instantiate(&pool.pre, &mut store)).await;
        match started {
            Ok(Ok(world)) => Ok(Warm {
                store,
                world,
                calls: 0,
            }),
            Ok(Err(e)) => Err(format!("cannot start: {}", self.explain(&store, &e))),
            Err(_) => Err(self.wall_timeout()),
        }
    }

    fn give_back<W: World>(&self, pool: &Pool<W>, mut warm: Warm<W>) {
        warm.calls += 1;
        if warm.calls >= RECYCLE_AFTER {
            return;
        }
        let mut idle = pool.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.policy.warm {
            idle.push(warm);
        }
    }

    /// The bound on a whole call from the server's side, on top of the epoch deadline.
    fn wall_bound(&self) -> Duration {
        self.timeout() * 2 + Duration::from_millis(50)
    }

    fn wall_timeout(&self) -> String {
        format!(
            "did not finish within its wall-clock bound of {} ms",
            self.wall_bound().as_millis()
        )
    }

    /// A trap or error of the plugin in words, with what it wrote to standard error.
    fn explain(&self, store: &Store<State>, e: &wasmtime::Error) -> String {
        let base = if store.data().memory_limit_hit() {
            format!(
                "exceeded its memory limit of {} MiB",
                self.manifest.limits.memory_mib
            )
        } else {
            match e.downcast_ref::<wasmtime::Trap>() {
                Some(wasmtime::Trap::Interrupt) => {
                    format!("timed out after {} ms", self.manifest.limits.timeout_ms)
                }
                Some(wasmtime::Trap::StackOverflow) => "overflowed its stack".to_owned(),
                // Rust and C guests keep a stack in linear memory without a guard page: its
                // overflow shows as an access below address zero.
                Some(wasmtime::Trap::MemoryOutOfBounds) => {
                    "accessed memory out of bounds (its stack overflowed, or a memory bug)"
                        .to_owned()
                }
                Some(wasmtime::Trap::UnreachableCodeReached) => "panicked or aborted".to_owned(),
                Some(t) => format!("trapped: {t}"),
                None => format!("failed: {e:#}"),
            }
        };
        let mut stderr = store.data().stderr();
        if stderr.is_empty() {
            base
        } else {
            state::truncate(&mut stderr, 512);
            format!("{base} ({stderr})")
        }
    }

    /// Runs one call on a warm instance; the closure makes the call.
    async fn call<W, R, F>(&self, pool: &Pool<W>, run: F) -> Result<R, String>
    where
        W: World,
        F: for<'a> FnOnce(&'a W, &'a mut Store<State>) -> BoxFuture<'a, wasmtime::Result<R>>,
    {
        if self.health().quarantined() {
            return Err("quarantined after repeated failures".to_owned());
        }
        self.health().calls.fetch_add(1, Ordering::Relaxed);
        let mut warm = self.lease(pool).await?;
        self.begin(&mut warm.store);
        let out = tokio::time::timeout(self.wall_bound(), run(&warm.world, &mut warm.store)).await;
        match out {
            Ok(Ok(value)) => {
                self.give_back(pool, warm);
                Ok(value)
            }
            Ok(Err(e)) => Err(self.explain(&warm.store, &e)),
            Err(_) => Err(self.wall_timeout()),
        }
    }

    /// Records a failed call and logs it; returns the error for the caller's policy.
    fn failed(&self, role: Role, error: String) -> String {
        if error.starts_with("quarantined") {
            return error;
        }
        tracing::warn!(plugin = %self.id(), role = role.as_str(), error = %error, "plugin call failed");
        let p = self.policy;
        if self.health().fail(
            role.as_str(),
            error.clone(),
            p.failures,
            p.window,
            p.quarantine,
        ) {
            tracing::error!(
                plugin = %self.id(),
                failures = p.failures,
                seconds = p.quarantine.as_secs(),
                "plugin quarantined after repeated failures; its calls are skipped until then"
            );
        }
        error
    }

    /// Calls the observer export.
    pub async fn on_event(&self, event: &Event) -> Result<v1::Outcome, String> {
        let pool = self.observer.as_ref().ok_or("not an observer")?;
        let ev = v1::event(event);
        let out = self
            .call(pool, move |w, store| {
                Box::pin(async move {
                    w.integration_host_plugin_observer()
                        .call_on_event(store, &ev)
                        .await
                })
            })
            .await
            .and_then(|r| r.map_err(|e| v1::describe(&e)));
        match out {
            Ok(v1::Outcome::Veto(reason)) if reason.len() > MAX_REASON => Err(self.failed(
                Role::Observer,
                format!(
                    "answered a veto reason of {} bytes (at most {MAX_REASON})",
                    reason.len()
                ),
            )),
            Ok(o) => Ok(o),
            Err(e) => Err(self.failed(Role::Observer, e)),
        }
    }

    /// Calls the permission-resolver export.
    pub async fn resolve(&self, request: &Arc<v1::ResolverRequest>) -> Result<v1::Verdict, String> {
        let pool = self.resolver.as_ref().ok_or("not a permission resolver")?;
        // Shared, not copied, into the call (which must own what it holds).
        let request = Arc::clone(request);
        let out = self
            .call(pool, move |w, store| {
                Box::pin(async move {
                    w.integration_host_plugin_permission_resolver()
                        .call_resolve(store, &request)
                        .await
                })
            })
            .await
            .and_then(|r| r.map_err(|e| v1::describe(&e)));
        match out {
            Ok(v1::Verdict::Deny(reason)) if reason.len() > MAX_REASON => Err(self.failed(
                Role::PermissionResolver,
                format!(
                    "answered a deny reason of {} bytes (at most {MAX_REASON})",
                    reason.len()
                ),
            )),
            Ok(v) => Ok(v),
            Err(e) => Err(self.failed(Role::PermissionResolver, e)),
        }
    }

    /// Calls the config-provider export.
    pub async fn integrations(&self) -> Result<Vec<v1::IntegrationDefinition>, String> {
        let pool = self.provider.as_ref().ok_or("not a config provider")?;
        let out = self
            .call(pool, |w, store| {
                Box::pin(async move {
                    w.integration_host_plugin_config_provider()
                        .call_integrations(store)
                        .await
                })
            })
            .await
            .and_then(|r| r.map_err(|e| v1::describe(&e)));
        match out {
            Ok(list) if list.len() > MAX_PROVIDED => Err(self.failed(
                Role::ConfigProvider,
                format!(
                    "declared {} integrations (at most {MAX_PROVIDED})",
                    list.len()
                ),
            )),
            Ok(list) => Ok(list),
            Err(e) => Err(self.failed(Role::ConfigProvider, e)),
        }
    }

    /// What `plugin list` and the REST API show.
    pub fn info(&self) -> PluginInfo {
        PluginInfo {
            id: self.manifest.id.clone(),
            version: self.manifest.version.clone(),
            api_version: format!("{}.{}", self.manifest.api.0, self.manifest.api.1),
            description: self.manifest.description.clone(),
            dir: self.dir.display().to_string(),
            roles: self.manifest.roles.clone(),
            sort_order: self.manifest.sort_order,
            events: self
                .manifest
                .observer
                .as_ref()
                .map(|o| o.events.clone())
                .unwrap_or_default(),
            mode: self.manifest.observer.as_ref().map(|o| o.mode),
            loaded_at: self.loaded_at,
            compiled: self.origin,
            health: self.health().report(),
        }
    }
}

/// A loaded plugin as `plugin list` and `GET /rest/V1/plugins` show it.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    pub id: String,
    pub version: String,
    pub api_version: String,
    pub description: String,
    pub dir: String,
    pub roles: Vec<Role>,
    pub sort_order: i32,
    pub events: Vec<String>,
    pub mode: Option<ObserverMode>,
    pub loaded_at: i64,
    pub compiled: engine::Origin,
    pub health: HealthReport,
}

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

#[derive(Clone)]
struct Entry {
    fingerprint: u64,
    plugin: Option<Arc<Plugin>>,
    problem: Option<Problem>,
}

#[derive(Default)]
struct Registry {
    entries: BTreeMap<PathBuf, Entry>,
    /// Resolvers in call order: sort order, then id.
    resolvers: Vec<Arc<Plugin>>,
    problems: Vec<Problem>,
}

impl Registry {
    fn plugins(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.entries.values().filter_map(|e| e.plugin.as_ref())
    }
}

/// What a load or reload did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadReport {
    pub loaded: Vec<String>,
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

struct Inner {
    settings: PluginSettings,
    wasm: Option<(Engine, Linker<State>)>,
    cache: PathBuf,
    registry: RwLock<Arc<Registry>>,
    any_resolver: AtomicBool,
    events: Dispatcher,
    seq: Arc<AtomicU64>,
    health: Mutex<BTreeMap<String, Arc<Health>>>,
    reloading: tokio::sync::Mutex<()>,
}

/// The plugin host; cheap to clone.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("directories", &self.inner.settings.directories)
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
        Ok(Self {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                wasm,
                cache: engine::cache_dir(settings, data_dir),
                registry: RwLock::new(Arc::new(Registry::default())),
                any_resolver: AtomicBool::new(false),
                events,
                seq: Arc::new(AtomicU64::new(0)),
                health: Mutex::default(),
                reloading: tokio::sync::Mutex::new(()),
            }),
        })
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
        self.inner.wasm.is_some()
    }

    /// The loaded plugins, by id.
    pub fn list(&self) -> Vec<PluginInfo> {
        let mut out: Vec<PluginInfo> = self.registry().plugins().map(|p| p.info()).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// The folders that failed to load, as of the last load or reload.
    pub fn problems(&self) -> Vec<Problem> {
        self.registry().problems.clone()
    }

    /// A loaded plugin by id.
    pub fn get(&self, id: &str) -> Option<Arc<Plugin>> {
        self.registry().plugins().find(|p| p.id() == id).cloned()
    }

    /// Loads new and changed plugin folders, drops removed ones, and swaps the registry: calls
    /// already running finish on the version they started with.
    pub async fn reload(&self) -> ReloadReport {
        let mut report = ReloadReport::default();
        let Some((engine, linker)) = &self.inner.wasm else {
            return report;
        };
        let _one_at_a_time = self.inner.reloading.lock().await;
        let current = self.registry();
        let (dirs, dir_problems) = manifest::plugin_dirs(&self.inner.settings.directories);
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
            {
                next.entries.insert(dir, old.clone());
                continue;
            }
            let old_plugin = old.and_then(|o| o.plugin.clone());
            match self.load_one(engine, linker, &dir).await {
                Ok(plugin) => {
                    let plugin = Arc::new(plugin);
                    if let Some(old) = &old_plugin {
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
                        error,
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
                    error: format!("the id is already used by {}", first.display()),
                    still_serving: false,
                });
                report
                    .loaded
                    .retain(|i| i != plugin.id() || seen.contains_key(i));
                entry.plugin = None;
            } else {
                seen.insert(plugin.id().to_owned(), dir.clone());
            }
        }
        for (dir, entry) in &current.entries {
            let Some(old) = &entry.plugin else { continue };
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
        next.problems
            .extend(next.entries.values().filter_map(|e| e.problem.clone()));
        let mut resolvers: Vec<Arc<Plugin>> = next
            .plugins()
            .filter(|p| p.resolver.is_some())
            .cloned()
            .collect();
        resolvers
            .sort_by(|a, b| (a.manifest.sort_order, a.id()).cmp(&(b.manifest.sort_order, b.id())));
        next.resolvers = resolvers;
        report.problems = next.problems.clone();
        let next = Arc::new(next);
        self.subscribe_observers(&current, &next);
        self.inner
            .any_resolver
            .store(!next.resolvers.is_empty(), Ordering::Release);
        *self
            .inner
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner()) = next;
        for id in report.loaded.iter().chain(&report.reloaded) {
            tracing::info!(plugin = %id, "plugin loaded");
        }
        for id in &report.removed {
            tracing::info!(plugin = %id, "plugin removed");
        }
        for p in &report.problems {
            tracing::error!(plugin = p.id.as_deref().unwrap_or(""), dir = %p.dir, error = %p.error, still_serving = p.still_serving, "plugin not loaded");
        }
        report
    }

    fn subscribe_observers(&self, current: &Registry, next: &Registry) {
        let events = &self.inner.events;
        for old in current.plugins().filter(|p| p.observer.is_some()) {
            if !next
                .plugins()
                .any(|p| p.id() == old.id() && p.observer.is_some())
            {
                events.unsubscribe(&observer_name(old.id()));
            }
        }
        for plugin in next.plugins() {
            let Some(section) = &plugin.manifest.observer else {
                continue;
            };
            let same = current.plugins().any(|p| Arc::ptr_eq(p, plugin));
            if same {
                continue;
            }
            let names: Vec<&str> = section.events.iter().map(String::as_str).collect();
            let mode = match section.mode {
                ObserverMode::Sync => Mode::Sync,
                ObserverMode::Async => Mode::Async,
            };
            let observer = Arc::new(PluginObserver {
                name: observer_name(plugin.id()),
                plugin: plugin.clone(),
            });
            if let Err(e) =
                events.subscribe_ordered(&names, mode, plugin.manifest.sort_order, observer)
            {
                tracing::error!(plugin = %plugin.id(), error = %e, "cannot subscribe the plugin's observer");
            }
        }
    }

    async fn load_one(
        &self,
        engine: &Engine,
        linker: &Linker<State>,
        dir: &Path,
    ) -> Result<Plugin, (Option<String>, String)> {
        let text = std::fs::read_to_string(dir.join(manifest::FILE))
            .map_err(|e| (None, format!("cannot read {}: {e}", manifest::FILE)))?;
        let manifest =
            manifest::parse(dir, &text, &self.inner.settings).map_err(|e| (None, e.to_string()))?;
        let id = manifest.id.clone();
        let fail = |m: String| (Some(id.clone()), m);
        let bytes = std::fs::read(&manifest.component).map_err(|e| {
            fail(format!(
                "cannot read the component {}: {e}",
                manifest.component.display()
            ))
        })?;
        let (engine2, cache) = (engine.clone(), self.inner.cache.clone());
        let (component, origin) =
            tokio::task::spawn_blocking(move || engine::load_component(&engine2, &bytes, &cache))
                .await
                .map_err(|e| fail(format!("compiling panicked: {e}")))?
                .map_err(|e| fail(format!("not a valid component: {e:#}")))?;
        check_exports(engine, &component, &manifest).map_err(fail)?;
        let pre = linker.instantiate_pre(&component).map_err(|e| {
            fail(format!(
                "the component imports something this server does not provide: {e:#}"
            ))
        })?;
        let health = {
            let mut all = self.inner.health.lock().unwrap_or_else(|p| p.into_inner());
            all.entry(id.clone())
                .or_insert_with(|| Arc::new(Health::new(self.inner.seq.clone())))
                .clone()
        };
        health.clear_quarantine();
        let s = &self.inner.settings;
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
            fail(format!("does not fit the {} world: {e:#}", role.as_str()))
        };
        if plugin.manifest.has(Role::Observer) {
            let pre = <v1::observer::ObserverPlugin as World>::pre(pre.clone())
                .map_err(|e| role_err(Role::Observer, e))?;
            plugin.observer = Some(plugin.warm_up(pre).await.map_err(fail)?);
        }
        if plugin.manifest.has(Role::PermissionResolver) {
            let pre = <v1::resolver::PermissionResolverPlugin as World>::pre(pre.clone())
                .map_err(|e| role_err(Role::PermissionResolver, e))?;
            plugin.resolver = Some(plugin.warm_up(pre).await.map_err(fail)?);
        }
        if plugin.manifest.has(Role::ConfigProvider) {
            let pre = <v1::provider::ConfigProviderPlugin as World>::pre(pre)
                .map_err(|e| role_err(Role::ConfigProvider, e))?;
            plugin.provider = Some(plugin.warm_up(pre).await.map_err(fail)?);
        }
        Ok(plugin)
    }

    /// Loads one plugin folder on its own (not registered, no observer subscribed): what
    /// `plugin check` and `plugin bench` use.
    pub async fn load_folder(&self, dir: &Path) -> Result<Arc<Plugin>, Problem> {
        let problem = |id, error| Problem {
            dir: dir.display().to_string(),
            id,
            error,
            still_serving: false,
        };
        let Some((engine, linker)) = &self.inner.wasm else {
            return Err(problem(None, "this host has no engine".into()));
        };
        self.load_one(engine, linker, dir)
            .await
            .map(Arc::new)
            .map_err(|(id, e)| problem(id, e))
    }

    /// Whether any config provider is loaded.
    pub fn has_providers(&self) -> bool {
        self.registry().plugins().any(|p| p.provider.is_some())
    }

    /// Whether any permission resolver is loaded (the fast path skips them all otherwise).
    pub fn has_resolvers(&self) -> bool {
        self.inner.any_resolver.load(Ordering::Acquire)
    }

    /// Asks every permission resolver about one request: any deny wins, then any allow.
    pub async fn decide(
        &self,
        principal: &Principal,
        resources: &[String],
        acl_allows: bool,
        facts: RequestFacts<'_>,
    ) -> Decision {
        if !self.has_resolvers() {
            return Decision::Abstain;
        }
        let registry = self.registry();
        let request = Arc::new(v1::ResolverRequest {
            principal: v1::principal(principal),
            resources: resources.to_vec(),
            acl_allows,
            method: facts.method.to_owned(),
            path: facts.path.to_owned(),
            client_address: facts.client_address,
            now: crate::clock::now(),
        });
        let mut allowed_by = None;
        for plugin in &registry.resolvers {
            let verdict = match plugin.resolve(&request).await {
                Ok(v) => v,
                Err(e) => match plugin.manifest.resolver.as_ref().map(|r| r.on_error) {
                    Some(ResolverOnError::Deny) => v1::Verdict::Deny(format!("failed: {e}")),
                    _ => v1::Verdict::Abstain,
                },
            };
            match verdict {
                v1::Verdict::Deny(reason) => {
                    tracing::info!(plugin = %plugin.id(), reason = %reason, path = facts.path, "a permission resolver denied the request");
                    return Decision::Deny {
                        plugin: plugin.id().to_owned(),
                        reason,
                    };
                }
                v1::Verdict::Allow if allowed_by.is_none() => {
                    allowed_by = Some(plugin.id().to_owned());
                }
                _ => {}
            }
        }
        match allowed_by {
            Some(plugin) => Decision::Allow { plugin },
            None => Decision::Abstain,
        }
    }

    /// The integrations every config provider declares, as definition forms by source
    /// (`plugin:<id>`). Any provider failing makes the whole answer an error, so a sync never
    /// deletes what a broken provider declared.
    pub async fn provided_integrations(
        &self,
    ) -> Result<Vec<(String, Vec<IntegrationForm>)>, Vec<String>> {
        let mut providers: Vec<Arc<Plugin>> = self
            .registry()
            .plugins()
            .filter(|p| p.provider.is_some())
            .cloned()
            .collect();
        providers
            .sort_by(|a, b| (a.manifest.sort_order, a.id()).cmp(&(b.manifest.sort_order, b.id())));
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for p in providers {
            match p.integrations().await {
                Ok(list) => out.push((
                    format!("plugin:{}", p.id()),
                    list.into_iter()
                        .map(|d| IntegrationForm {
                            name: d.name,
                            email: d.email,
                            endpoint: d.endpoint_url,
                            identity_link_url: d.identity_link_url,
                            all_resources: d.all_resources,
                            resources: d.resources,
                        })
                        .collect(),
                )),
                Err(e) => errors.push(format!("plugin:{}: {e}", p.id())),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

impl Plugin {
    async fn warm_up<W: World>(&self, pre: W::Pre) -> Result<Pool<W>, String> {
        let pool = Pool {
            pre,
            idle: Mutex::new(Vec::new()),
        };
        let warm = self.lease(&pool).await?;
        pool.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(warm);
        Ok(pool)
    }
}

fn observer_name(id: &str) -> String {
    format!("plugin:{id}")
}

/// Checks that the component exports the interface of every role the manifest lists, at the
/// manifest's API version.
fn check_exports(engine: &Engine, component: &Component, m: &Manifest) -> Result<(), String> {
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
            return Err(format!(
                "the component was built against another API version: it exports `{other}`, but its manifest says api_version {}.{} (`{want}`)",
                m.api.0, m.api.1
            ));
        }
        return Err(format!(
            "the manifest lists the role {} but the component does not export `{want}` (it exports: {})",
            role.as_str(),
            if exports.is_empty() {
                "nothing".to_owned()
            } else {
                exports.join(", ")
            }
        ));
    }
    Ok(())
}

/// A digest of what a plugin folder holds: the manifest's text and the component's size and
/// modification time.
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
    }
    h.finish()
}

/// An observer plugin subscribed to the dispatcher.
struct PluginObserver {
    name: String,
    plugin: Arc<Plugin>,
}

impl Observer for PluginObserver {
    fn name(&self) -> &str {
        &self.name
    }

    fn observe<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, Result<(), ObserveError>> {
        Box::pin(async move {
            let on_error = self
                .plugin
                .manifest
                .observer
                .as_ref()
                .map(|o| o.on_error)
                .unwrap_or_default();
            match self.plugin.on_event(event).await {
                Ok(v1::Outcome::Proceed) => Ok(()),
                Ok(v1::Outcome::Veto(reason)) => Err(ObserveError::Veto(reason)),
                Err(e) if on_error == ObserverOnError::Veto => Err(ObserveError::Veto(format!(
                    "The request was refused because the plugin `{}` failed.",
                    self.plugin.id()
                )))
                .inspect_err(|_| {
                    tracing::warn!(plugin = %self.plugin.id(), error = %e, "a fail-closed observer failed: vetoing");
                }),
                Err(e) => Err(ObserveError::Failed(e)),
            }
        })
    }
}

/// Runs the reload poller: checks the plugin folders every `plugins.reload_poll_ms` and
/// reloads on change, then calls `after` with the report (the server re-syncs integrations
/// when a config provider changed).
pub fn spawn_reloader<F>(host: PluginHost, after: F) -> Option<tokio::task::JoinHandle<()>>
where
    F: Fn(ReloadReport) -> BoxFuture<'static, ()> + Send + Sync + 'static,
{
    let every = host.inner.settings.reload_poll_ms;
    if every == 0 || !host.enabled() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(every));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if !host.folders_changed() {
                continue;
            }
            let report = host.reload().await;
            after(report).await;
        }
    }))
}

impl PluginHost {
    /// Whether any plugin folder differs from what the registry was built from.
    pub fn folders_changed(&self) -> bool {
        let registry = self.registry();
        let (dirs, _) = manifest::plugin_dirs(&self.inner.settings.directories);
        if dirs.len() != registry.entries.len() {
            return true;
        }
        dirs.iter().any(|d| {
            registry
                .entries
                .get(d)
                .is_none_or(|e| e.fingerprint != fingerprint(d))
        })
    }
}

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
        PluginHost::decide(self, principal, resources, acl_allows, facts)
    }
}
