//! One loaded plugin and every call into it: a pool of warm instances per role, each call run
//! with the plugin's memory cap, an epoch deadline and a wall-clock bound, failures counted
//! towards a quarantine, and the answers held to the host's limits.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use wasmtime::component::InstancePre;
use wasmtime::{Engine, Store, UpdateDeadline};

use super::error::{CallError, Trap};
use super::manifest::{Manifest, Role};
use super::state::{self, Health, Identity, State};
use super::{engine, v1_0, v1_1};
use crate::events::Event;

/// Calls on one instance before it is replaced by a fresh one (started in the background, off
/// the request path: starting a CPython or SpiderMonkey instance takes milliseconds).
const RECYCLE_AFTER: u32 = 10_000;
/// Calls an instance due for replacement may still serve while its replacement starts.
const RECYCLE_GRACE: u32 = 1_000;
/// Longest reason a plugin may give for a deny or a veto.
pub const MAX_REASON: usize = 1024;
/// Most integrations one provider may declare.
pub const MAX_PROVIDED: usize = 1000;

/// The world bindings of one role, as the pool needs them.
pub(super) trait World: Sized + Send + 'static {
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
    v1_0::observer::ObserverPlugin,
    v1_0::observer::ObserverPluginPre<State>
);
world!(
    v1_0::resolver::PermissionResolverPlugin,
    v1_0::resolver::PermissionResolverPluginPre<State>
);
world!(
    v1_0::provider::ConfigProviderPlugin,
    v1_0::provider::ConfigProviderPluginPre<State>
);
world!(
    v1_1::observer::ObserverPlugin,
    v1_1::observer::ObserverPluginPre<State>
);
world!(
    v1_1::resolver::PermissionResolverPlugin,
    v1_1::resolver::PermissionResolverPluginPre<State>
);
world!(
    v1_1::provider::ConfigProviderPlugin,
    v1_1::provider::ConfigProviderPluginPre<State>
);

world!(
    v1_1::before::BeforeInterceptorPlugin,
    v1_1::before::BeforeInterceptorPluginPre<State>
);
world!(
    v1_1::after::AfterInterceptorPlugin,
    v1_1::after::AfterInterceptorPluginPre<State>
);
world!(
    v1_1::verifier::CredentialVerifierPlugin,
    v1_1::verifier::CredentialVerifierPluginPre<State>
);

/// Most claims or headers one after-interceptor may add.
pub const MAX_ADDITIONS: usize = 16;

/// A role's pool in the API version the plugin was built against. Calls go in the newest
/// version's types; an older version's module converts them to its own and the answers back.
pub(super) enum Versioned<Old: World, New: World> {
    V1_0(Pool<Old>),
    V1_1(Pool<New>),
}

pub(super) type ObserverPool =
    Versioned<v1_0::observer::ObserverPlugin, v1_1::observer::ObserverPlugin>;
pub(super) type ResolverPool =
    Versioned<v1_0::resolver::PermissionResolverPlugin, v1_1::resolver::PermissionResolverPlugin>;
pub(super) type ProviderPool =
    Versioned<v1_0::provider::ConfigProviderPlugin, v1_1::provider::ConfigProviderPlugin>;

pub(super) struct Warm<W> {
    store: Store<State>,
    world: W,
    calls: u32,
}

pub(super) struct Pool<W: World> {
    pre: Arc<W::Pre>,
    idle: Arc<Mutex<Vec<Warm<W>>>>,
}

/// How failures add up to a quarantine.
#[derive(Debug, Clone, Copy)]
pub(super) struct Policy {
    pub(super) failures: u32,
    pub(super) window: Duration,
    pub(super) quarantine: Duration,
    pub(super) warm: usize,
}

/// One loaded plugin.
pub struct Plugin {
    pub manifest: Manifest,
    pub dir: PathBuf,
    pub(super) identity: Arc<Identity>,
    pub(super) engine: Engine,
    pub(super) policy: Policy,
    /// Compiled now or read from the cache; `None` while its component is still compiling
    /// (at server start, in the background): it has no instances then.
    pub(super) origin: Option<engine::Origin>,
    pub(super) loaded_at: i64,
    pub(super) observer: Option<ObserverPool>,
    pub(super) resolver: Option<ResolverPool>,
    pub(super) provider: Option<ProviderPool>,
    /// Roles since 1.1: the newest bindings only.
    pub(super) before: Option<Pool<v1_1::before::BeforeInterceptorPlugin>>,
    pub(super) after: Option<Pool<v1_1::after::AfterInterceptorPlugin>>,
    pub(super) verifier: Option<Pool<v1_1::verifier::CredentialVerifierPlugin>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("id", &self.manifest.id)
            .field("version", &self.manifest.version)
            .finish_non_exhaustive()
    }
}

/// The least time a new instance has to start, whatever the plugin's call time limit.
const START_BUDGET: Duration = Duration::from_secs(1);

impl Plugin {
    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    pub fn health(&self) -> &Health {
        &self.identity.health
    }

    /// Whether its component is still compiling: until it is ready, each call in a role it
    /// plays fails with [`CallError::Loading`] and follows the role's error policy.
    pub fn loading(&self) -> bool {
        self.origin.is_none()
    }

    /// Why it has no instances for `role`.
    fn absent(&self, role: Role) -> CallError {
        if self.loading() {
            CallError::Loading
        } else {
            CallError::NotInRole(role)
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.manifest.limits.timeout_ms)
    }

    fn new_store(&self) -> Store<State> {
        let state = State::new(
            self.identity.clone(),
            (self.manifest.limits.memory_mib as usize) << 20,
            self.identity.granted.clock,
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

    async fn lease<W: World>(&self, pool: &Pool<W>) -> Result<Warm<W>, CallError> {
        if let Some(warm) = pool.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(warm);
        }
        let mut store = self.new_store();
        // Starting an instance has a budget of its own: a large component (CPython,
        // SpiderMonkey) takes milliseconds, more while a burst of requests starts many at once,
        // and that is not the plugin's call running long.
        let budget = self.timeout().max(START_BUDGET);
        store.data_mut().deadline = Instant::now() + budget;
        store.set_epoch_deadline(1);
        let started = tokio::time::timeout(
            budget * 2 + Duration::from_millis(50),
            W::instantiate(&*pool.pre, &mut store),
        )
        .await;
        match started {
            Ok(Ok(world)) => Ok(Warm {
                store,
                world,
                calls: 0,
            }),
            Ok(Err(e)) => Err(CallError::Start(Box::new(self.explain(&store, &e)))),
            Err(_) => Err(CallError::Start(Box::new(CallError::WallClock {
                ms: (budget * 2).as_millis() + 50,
            }))),
        }
    }

    fn give_back<W: World>(&self, pool: &Pool<W>, mut warm: Warm<W>) {
        warm.calls += 1;
        let due = warm.calls == RECYCLE_AFTER;
        if warm.calls < RECYCLE_AFTER + RECYCLE_GRACE {
            let mut idle = pool.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < self.policy.warm {
                idle.push(warm);
            }
        }
        // Once it is back in the pool, where the replacement finds and retires it.
        if due {
            self.replace_in_background(pool);
        }
    }

    /// Starts a fresh instance on a blocking thread and puts it in the pool in place of those
    /// due for replacement; until it is there they keep serving (within the grace).
    fn replace_in_background<W: World>(&self, pool: &Pool<W>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (pre, idle, mut store) = (pool.pre.clone(), pool.idle.clone(), self.new_store());
        let (keep, budget) = (self.policy.warm, self.timeout().max(START_BUDGET));
        runtime.clone().spawn_blocking(move || {
            store.data_mut().deadline = Instant::now() + budget;
            store.set_epoch_deadline(1);
            let world = match runtime.block_on(W::instantiate(&*pre, &mut store)) {
                Ok(world) => world,
                Err(e) => {
                    // Those due stay until their grace runs out; a lease starts one then.
                    tracing::warn!(plugin = %store.data().plugin.id, error = %e, "cannot start a replacement instance");
                    return;
                }
            };
            let mut idle = idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.retain(|w| w.calls < RECYCLE_AFTER);
            if idle.len() < keep {
                idle.push(Warm {
                    store,
                    world,
                    calls: 0,
                });
            }
        });
    }

    /// The bound on a whole call from the server's side, on top of the epoch deadline.
    fn wall_bound(&self) -> Duration {
        self.timeout() * 2 + Duration::from_millis(50)
    }

    fn wall_timeout(&self) -> CallError {
        CallError::WallClock {
            ms: self.wall_bound().as_millis(),
        }
    }

    /// A trap or error of the plugin, with what it wrote to standard error.
    fn explain(&self, store: &Store<State>, e: &wasmtime::Error) -> CallError {
        let trap = if store.data().memory_limit_hit() {
            Trap::MemoryLimit {
                mib: self.manifest.limits.memory_mib,
            }
        } else {
            match e.downcast_ref::<wasmtime::Trap>() {
                Some(wasmtime::Trap::Interrupt) => Trap::Timeout {
                    ms: self.manifest.limits.timeout_ms,
                },
                Some(wasmtime::Trap::StackOverflow) => Trap::StackOverflow,
                Some(wasmtime::Trap::MemoryOutOfBounds) => Trap::OutOfBounds,
                Some(wasmtime::Trap::UnreachableCodeReached) => Trap::Panicked,
                Some(t) => Trap::Other(t.to_string()),
                None => Trap::Host(format!("{e:#}")),
            }
        };
        let mut stderr = store.data().stderr();
        state::truncate(&mut stderr, 512);
        CallError::Trapped { trap, stderr }
    }

    /// Runs one call on a warm instance; the closure makes the call.
    async fn call<W, R, F>(&self, pool: &Pool<W>, run: F) -> Result<R, CallError>
    where
        W: World,
        F: for<'a> FnOnce(&'a W, &'a mut Store<State>) -> BoxFuture<'a, wasmtime::Result<R>>,
    {
        if self.health().quarantined() {
            return Err(CallError::Quarantined);
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
    pub(super) fn failed(&self, role: Role, error: CallError) -> CallError {
        if matches!(error, CallError::Quarantined | CallError::Loading) {
            return error;
        }
        tracing::warn!(plugin = %self.id(), role = role.as_str(), error = %error, "plugin call failed");
        let p = self.policy;
        if self.health().fail(
            role.as_str(),
            error.to_string(),
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

    /// Calls the observer export; with the delivery it handles when the outbox delivers the
    /// event (what the `delivery` capability answers during the call).
    pub async fn on_event(
        &self,
        event: &Event,
        delivery: Option<&crate::events::Delivery>,
    ) -> Result<v1_1::Outcome, CallError> {
        self.observe(v1_1::event(event), delivery).await
    }

    /// Calls the observer export with an event in the plugin API's own shape (which has cases
    /// the server does not emit yet, as `other`).
    pub async fn observe(
        &self,
        ev: v1_1::wit::Event,
        delivery: Option<&crate::events::Delivery>,
    ) -> Result<v1_1::Outcome, CallError> {
        let delivery = delivery.cloned();
        let out = match self.observer.as_ref() {
            None => Err(self.absent(Role::Observer)),
            Some(Versioned::V1_0(pool)) => {
                let ev = v1_0::event(&ev);
                self.call(pool, move |w, store| {
                    Box::pin(async move {
                        store.data_mut().delivery = delivery;
                        let out = w
                            .integration_host_plugin_observer()
                            .call_on_event(store, &ev)
                            .await?;
                        Ok(out.map(v1_0::outcome).map_err(v1_0::plugin_error))
                    })
                })
                .await
            }
            Some(Versioned::V1_1(pool)) => {
                self.call(pool, move |w, store| {
                    Box::pin(async move {
                        store.data_mut().delivery = delivery;
                        w.integration_host_plugin_observer()
                            .call_on_event(store, &ev)
                            .await
                    })
                })
                .await
            }
        }
        .and_then(|r| r.map_err(|e| CallError::Guest(v1_1::guest_error(e))));
        match out {
            Ok(v1_1::Outcome::Veto(reason)) if reason.len() > MAX_REASON => Err(self.failed(
                Role::Observer,
                CallError::Oversized(format!(
                    "answered a veto reason of {} bytes (at most {MAX_REASON})",
                    reason.len()
                )),
            )),
            Ok(o) => Ok(o),
            Err(e) => Err(self.failed(Role::Observer, e)),
        }
    }

    /// Calls the permission-resolver export.
    pub async fn resolve(
        &self,
        request: &Arc<v1_1::ResolverRequest>,
    ) -> Result<v1_1::Verdict, CallError> {
        let out = match self.resolver.as_ref() {
            None => Err(self.absent(Role::PermissionResolver)),
            Some(Versioned::V1_0(pool)) => {
                let request = v1_0::resolver_request(request);
                self.call(pool, move |w, store| {
                    Box::pin(async move {
                        let out = w
                            .integration_host_plugin_permission_resolver()
                            .call_resolve(store, &request)
                            .await?;
                        Ok(out.map(v1_0::verdict).map_err(v1_0::plugin_error))
                    })
                })
                .await
            }
            Some(Versioned::V1_1(pool)) => {
                // Shared, not copied, into the call (which must own what it holds).
                let request = Arc::clone(request);
                self.call(pool, move |w, store| {
                    Box::pin(async move {
                        w.integration_host_plugin_permission_resolver()
                            .call_resolve(store, &request)
                            .await
                    })
                })
                .await
            }
        }
        .and_then(|r| r.map_err(|e| CallError::Guest(v1_1::guest_error(e))));
        match out {
            Ok(v1_1::Verdict::Deny(reason)) if reason.len() > MAX_REASON => Err(self.failed(
                Role::PermissionResolver,
                CallError::Oversized(format!(
                    "answered a deny reason of {} bytes (at most {MAX_REASON})",
                    reason.len()
                )),
            )),
            Ok(v) => Ok(v),
            Err(e) => Err(self.failed(Role::PermissionResolver, e)),
        }
    }

    /// Calls the config-provider export.
    pub async fn integrations(&self) -> Result<Vec<v1_1::IntegrationDefinition>, CallError> {
        let out = match self.provider.as_ref() {
            None => Err(self.absent(Role::ConfigProvider)),
            Some(Versioned::V1_0(pool)) => {
                self.call(pool, |w, store| {
                    Box::pin(async move {
                        let out = w
                            .integration_host_plugin_config_provider()
                            .call_integrations(store)
                            .await?;
                        Ok(out
                            .map(|list| {
                                list.into_iter().map(v1_0::integration_definition).collect()
                            })
                            .map_err(v1_0::plugin_error))
                    })
                })
                .await
            }
            Some(Versioned::V1_1(pool)) => {
                self.call(pool, |w, store| {
                    Box::pin(async move {
                        w.integration_host_plugin_config_provider()
                            .call_integrations(store)
                            .await
                    })
                })
                .await
            }
        }
        .and_then(|r| r.map_err(|e| CallError::Guest(v1_1::guest_error(e))));
        match out {
            Ok(list) if list.len() > MAX_PROVIDED => Err(self.failed(
                Role::ConfigProvider,
                CallError::Oversized(format!(
                    "declared {} integrations (at most {MAX_PROVIDED})",
                    list.len()
                )),
            )),
            Ok(list) => Ok(list),
            Err(e) => Err(self.failed(Role::ConfigProvider, e)),
        }
    }

    /// Calls the before-interceptor export.
    pub async fn before(&self, op: &v1_1::Operation) -> Result<v1_1::Answer, CallError> {
        let role = Role::BeforeInterceptor;
        let pool = self.before.as_ref().ok_or_else(|| self.absent(role))?;
        let op = op.clone();
        let out = self
            .call(pool, move |w, store| {
                Box::pin(async move {
                    w.integration_host_plugin_before_interceptor()
                        .call_before(store, &op)
                        .await
                })
            })
            .await
            .and_then(|r| r.map_err(|e| CallError::Guest(v1_1::guest_error(e))));
        match out {
            Ok(v1_1::Answer::Refuse(message)) if message.len() > MAX_REASON => Err(self.failed(
                role,
                CallError::Oversized(format!(
                    "answered a refusal of {} bytes (at most {MAX_REASON})",
                    message.len()
                )),
            )),
            Ok(a) => Ok(a),
            Err(e) => Err(self.failed(role, e)),
        }
    }

    /// Calls the after-interceptor export.
    pub async fn after(&self, produced: &v1_1::Produced) -> Result<v1_1::Additions, CallError> {
        let role = Role::AfterInterceptor;
        let pool = self.after.as_ref().ok_or_else(|| self.absent(role))?;
        let produced = produced.clone();
        let out = self
            .call(pool, move |w, store| {
                Box::pin(async move {
                    w.integration_host_plugin_after_interceptor()
                        .call_after(store, &produced)
                        .await
                })
            })
            .await
            .and_then(|r| r.map_err(|e| CallError::Guest(v1_1::guest_error(e))));
        match out {
            Ok(a) if a.claims.len() > MAX_ADDITIONS || a.headers.len() > MAX_ADDITIONS => Err(self
                .failed(
                    role,
                    CallError::Oversized(format!(
                        "added {} claims and {} headers (at most {MAX_ADDITIONS} each)",
                        a.claims.len(),
                        a.headers.len()
                    )),
                )),
            Ok(a) => Ok(a),
            Err(e) => Err(self.failed(role, e)),
        }
    }

    /// Calls the credential-verifier export.
    pub async fn verify(
        &self,
        credentials: &v1_1::Credentials,
    ) -> Result<v1_1::Verification, CallError> {
        let role = Role::CredentialVerifier;
        let pool = self.verifier.as_ref().ok_or_else(|| self.absent(role))?;
        let credentials = credentials.clone();
        let out = self
            .call(pool, move |w, store| {
                Box::pin(async move {
                    w.integration_host_plugin_credential_verifier()
                        .call_verify(store, &credentials)
                        .await
                })
            })
            .await
            .and_then(|r| r.map_err(|e| CallError::Guest(v1_1::guest_error(e))));
        match out {
            Ok(v1_1::Verification::Refuse(text) | v1_1::Verification::Accept(text))
                if text.len() > MAX_REASON =>
            {
                Err(self.failed(
                    role,
                    CallError::Oversized(format!(
                        "answered {} bytes (at most {MAX_REASON})",
                        text.len()
                    )),
                ))
            }
            Ok(v) => Ok(v),
            Err(e) => Err(self.failed(role, e)),
        }
    }
}

impl Plugin {
    /// A pool for one role, with its first instance started.
    pub(super) async fn warm_up<W: World>(&self, pre: W::Pre) -> Result<Pool<W>, CallError> {
        let pool = Pool {
            pre: Arc::new(pre),
            idle: Arc::new(Mutex::new(Vec::new())),
        };
        let warm = self.lease(&pool).await?;
        pool.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(warm);
        Ok(pool)
    }
}
