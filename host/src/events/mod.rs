//! Events and their dispatcher: what Magento's event manager does for `customer_login` and the
//! other events this server emits.
//!
//! This module owns the typed [`Event`]s and the [`Dispatcher`] that hands them to observers.
//! An observer subscribes to event names, either *sync* (run in order before the operation
//! answers; a slow one delays it) or *async* (run one at a time by a background task from a
//! bounded queue, after the operation answered; when the queue is full the event is dropped
//! for that observer and counted, never blocking a request). A failing observer is logged with
//! its name and never fails the operation that emitted the event. The plugin host subscribes
//! its observer plugins here; the built-in [`AuditLog`] writes one log line per event.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::domain::{AccountKind, RevocationReason};

pub mod intercept;

pub use intercept::{
    Additions, AllowedRequest, Caller, Credentials, IntegrationInput, Interceptors, Operation,
    Produced, Refusal, SignIn, Verification,
};

/// A successful customer sign-in for a token ([S-3.4]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerLogin {
    pub customer_id: i64,
    pub email: String,
    pub firstname: String,
    pub lastname: String,
    /// Unix seconds.
    pub at: i64,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
}

/// A successful admin sign-in for a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminLogin {
    pub admin_id: i64,
    pub username: String,
    /// Unix seconds.
    pub at: i64,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
}

/// An integration, as events name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationRef {
    pub id: i64,
    pub name: String,
}

fn user_type_code<S: serde::Serializer>(kind: &AccountKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(kind.user_type().code())
}

fn reason_word<S: serde::Serializer>(r: &RevocationReason, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.as_str())
}

fn account_of_code<'de, D: serde::Deserializer<'de>>(d: D) -> Result<AccountKind, D::Error> {
    let code = i64::deserialize(d)?;
    crate::domain::UserType::try_from(code)
        .ok()
        .and_then(|t| t.account())
        .ok_or_else(|| serde::de::Error::custom(format!("user type {code} is not an account")))
}

fn reason_of_word<'de, D: serde::Deserializer<'de>>(d: D) -> Result<RevocationReason, D::Error> {
    let word = String::deserialize(d)?;
    [
        RevocationReason::OwnRequest,
        RevocationReason::Admin,
        RevocationReason::Deactivated,
        RevocationReason::Deleted,
    ]
    .into_iter()
    .find(|r| r.as_str() == word)
    .ok_or_else(|| serde::de::Error::custom(format!("unknown revocation reason `{word}`")))
}

/// Whose tokens were revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokensRevoked {
    /// An admin's or a customer's; serialized as Magento's user type (2 admin, 3 customer).
    #[serde(
        rename = "user_type",
        serialize_with = "user_type_code",
        deserialize_with = "account_of_code"
    )]
    pub account: AccountKind,
    pub user_id: i64,
    /// What caused it, serialized as `self`, `admin`, `deactivated` or `deleted`.
    #[serde(serialize_with = "reason_word", deserialize_with = "reason_of_word")]
    pub reason: RevocationReason,
}

/// Everything the server emits. New events are added as new variants; observers match the
/// ones they know by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    CustomerLogin(CustomerLogin),
    AdminLogin(AdminLogin),
    /// Created (`created: true`) or changed.
    IntegrationSaved {
        #[serde(flatten)]
        integration: IntegrationRef,
        created: bool,
    },
    /// Activated or reauthorized: new credentials were issued.
    IntegrationActivated(IntegrationRef),
    /// Its definition file changed: tokens deleted, status reset.
    IntegrationReset(IntegrationRef),
    IntegrationDeleted(IntegrationRef),
    TokensRevoked(TokensRevoked),
}

impl Event {
    /// The event's name, as observers subscribe to it.
    pub fn name(&self) -> &'static str {
        match self {
            Event::CustomerLogin(_) => "customer_login",
            Event::AdminLogin(_) => "admin_login",
            Event::IntegrationSaved { .. } => "integration_saved",
            Event::IntegrationActivated(_) => "integration_activated",
            Event::IntegrationReset(_) => "integration_reset",
            Event::IntegrationDeleted(_) => "integration_deleted",
            Event::TokensRevoked(_) => "tokens_revoked",
        }
    }

    /// Every event name, for validating subscriptions.
    pub const NAMES: &'static [&'static str] = &[
        "customer_login",
        "admin_login",
        "integration_saved",
        "integration_activated",
        "integration_reset",
        "integration_deleted",
        "tokens_revoked",
    ];
}

/// Why an observer did not simply proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObserveError {
    /// Refuse the operation (honoured from sync observers of vetoable events), with the reason
    /// shown to the caller.
    Veto(String),
    /// The observer failed; logged with its name (a durable delivery is tried again).
    Failed(String),
    /// The observer did not run (a quarantined plugin): a durable delivery waits for it
    /// without counting an attempt.
    Skipped(String),
}

/// One delivery of an event from the durable outbox to an async observer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The event's stable id: the same on every attempt, for dropping duplicates.
    pub event_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Unix seconds when the event was written.
    pub recorded_at: i64,
}

/// Where async observers get their events from when the server keeps them durably (the
/// outbox): the dispatcher wakes it after an event and waits on it in [`Dispatcher::flush`].
pub trait DurableDelivery: Send + Sync + 'static {
    /// A new event was written: deliver soon.
    fn wake(&self);
    /// Delivers everything due now (failures wait for their next attempt).
    fn settle(&self) -> BoxFuture<'_, ()>;
}

impl From<String> for ObserveError {
    fn from(e: String) -> Self {
        ObserveError::Failed(e)
    }
}

/// A sync observer refused the operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Veto {
    /// The observer's name.
    pub observer: String,
    /// Shown to the caller.
    pub reason: String,
}

/// Something that reacts to events.
pub trait Observer: Send + Sync + 'static {
    /// Shown in logs when it fails; [`Dispatcher::subscribe_ordered`] replaces an earlier
    /// subscription of the same name.
    fn name(&self) -> &str;
    /// Handles one event; a failure is logged with the observer's name.
    fn observe<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, Result<(), ObserveError>>;

    /// Handles one durable delivery of an event (async observers of a server with an outbox);
    /// by default as [`Observer::observe`].
    fn observe_delivery<'a>(
        &'a self,
        event: &'a Event,
        delivery: &'a Delivery,
    ) -> BoxFuture<'a, Result<(), ObserveError>> {
        let _ = delivery;
        self.observe(event)
    }
}

/// When an observer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Before the operation answers, by sort order then name.
    Sync,
    /// After, from a bounded queue, one at a time.
    Async,
}

struct Subscription {
    events: Vec<String>,
    mode: Mode,
    /// Unix milliseconds: a durable observer new to the outbox starts with the events written
    /// from then on.
    since_ms: i64,
    /// Lower runs first; ties by observer name.
    sort_order: i32,
    observer: Arc<dyn Observer>,
}

impl Subscription {
    fn wants(&self, name: &str) -> bool {
        self.events.iter().any(|e| e == name || e == "*")
    }
}

type Queued = (Arc<Event>, Arc<dyn Observer>);

/// Events waiting for async observers before new ones are dropped.
pub const QUEUE: usize = 1024;

/// Hands events to observers; cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    subscriptions: Arc<RwLock<Vec<Subscription>>>,
    queue: mpsc::Sender<Queued>,
    dropped: Arc<AtomicU64>,
    idle: Arc<tokio::sync::Notify>,
    pending: Arc<AtomicU64>,
    /// Before and after plugins and the credential verifier ([`intercept`]); none by default.
    interceptors: Arc<RwLock<Option<Arc<dyn Interceptors>>>>,
    /// When set, async observers get events from the outbox, not from the in-memory queue.
    durable: Arc<RwLock<Option<Arc<dyn DurableDelivery>>>>,
}

/// An async observer as the outbox delivers to it.
#[derive(Clone)]
pub struct AsyncSubscriber {
    pub observer: Arc<dyn Observer>,
    /// The event names it subscribed to (`*` for all).
    pub events: Vec<String>,
    /// Unix milliseconds when it subscribed.
    pub since_ms: i64,
}

impl std::fmt::Debug for AsyncSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSubscriber")
            .field("observer", &self.observer.name())
            .field("events", &self.events)
            .finish()
    }
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

/// Why a subscription was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event `{0}`; events are {names}", names = Event::NAMES.join(", "))]
pub struct UnknownEvent(pub String);

impl Default for Dispatcher {
    fn default() -> Self {
        Self::new()
    }
}

impl Dispatcher {
    /// A dispatcher whose async observers run on the current tokio runtime.
    pub fn new() -> Self {
        let (queue, mut rx) = mpsc::channel::<Queued>(QUEUE);
        let idle = Arc::new(tokio::sync::Notify::new());
        let pending = Arc::new(AtomicU64::new(0));
        let (task_idle, task_pending) = (idle.clone(), pending.clone());
        tokio::spawn(async move {
            while let Some((event, observer)) = rx.recv().await {
                if let Some(reason) = run(observer.as_ref(), &event).await {
                    tracing::warn!(
                        event = event.name(),
                        observer = observer.name(),
                        reason = %reason,
                        "an async observer vetoed; only sync observers can veto, ignored"
                    );
                }
                if task_pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                    task_idle.notify_waiters();
                }
            }
        });
        Self {
            subscriptions: Default::default(),
            queue,
            dropped: Default::default(),
            idle,
            pending,
            interceptors: Default::default(),
            durable: Default::default(),
        }
    }

    /// Hands async observers' events to `durable` from now on (the server's outbox).
    pub fn deliver_through(&self, durable: Arc<dyn DurableDelivery>) {
        *self.durable.write().unwrap_or_else(|e| e.into_inner()) = Some(durable);
    }

    fn durable(&self) -> Option<Arc<dyn DurableDelivery>> {
        self.durable
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The async observers, for the outbox to deliver to.
    pub fn async_subscribers(&self) -> Vec<AsyncSubscriber> {
        self.subscriptions
            .read()
            .expect("subscriptions lock")
            .iter()
            .filter(|s| s.mode == Mode::Async)
            .map(|s| AsyncSubscriber {
                observer: s.observer.clone(),
                events: s.events.clone(),
                since_ms: s.since_ms,
            })
            .collect()
    }

    /// Installs the interceptors the services call (the plugin host does, once).
    pub fn intercept_with(&self, interceptors: Arc<dyn Interceptors>) {
        *self.interceptors.write().unwrap_or_else(|e| e.into_inner()) = Some(interceptors);
    }

    fn interceptors(&self) -> Option<Arc<dyn Interceptors>> {
        self.interceptors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs the before-interceptors of an operation: the input to go on with (the same
    /// operation, on the same subject), or a refusal.
    pub async fn before(&self, op: Operation) -> Result<Operation, Refusal> {
        match self.interceptors() {
            Some(i) => i.before(op).await,
            None => Ok(op),
        }
    }

    /// Whether any after-interceptor wants results named `name`.
    pub fn wants_after(&self, name: &str) -> bool {
        self.interceptors().is_some_and(|i| i.wants_after(name))
    }

    /// Runs the after-interceptors of a result: what they add, or a refusal.
    pub async fn after(&self, produced: &Produced) -> Result<Additions, Refusal> {
        match self.interceptors() {
            Some(i) => i.after(produced).await,
            None => Ok(Additions::default()),
        }
    }

    /// Asks the credential verifier about a sign-in; abstains when none is loaded.
    pub async fn verify(&self, credentials: &Credentials) -> Result<Verification, Refusal> {
        match self.interceptors() {
            Some(i) => i.verify(credentials).await,
            None => Ok(Verification::Abstain),
        }
    }

    /// Subscribes `observer` to the named events (`*` for all of them), at sort order 0.
    pub fn subscribe(
        &self,
        events: &[&str],
        mode: Mode,
        observer: Arc<dyn Observer>,
    ) -> Result<(), UnknownEvent> {
        self.insert(events, mode, 0, observer, false)
    }

    /// Removes the subscription of the observer of that name, if any.
    pub fn unsubscribe(&self, name: &str) {
        self.subscriptions
            .write()
            .expect("subscriptions lock")
            .retain(|s| s.observer.name() != name);
    }

    /// Subscribes `observer` to the named events, run by `sort_order` then name (like
    /// Magento's `sortOrder`). An earlier subscription of the same name is replaced at once,
    /// so no event is seen by both or by neither (how a reloaded plugin takes over).
    pub fn subscribe_ordered(
        &self,
        events: &[&str],
        mode: Mode,
        sort_order: i32,
        observer: Arc<dyn Observer>,
    ) -> Result<(), UnknownEvent> {
        self.insert(events, mode, sort_order, observer, true)
    }

    fn insert(
        &self,
        events: &[&str],
        mode: Mode,
        sort_order: i32,
        observer: Arc<dyn Observer>,
        replace: bool,
    ) -> Result<(), UnknownEvent> {
        if let Some(unknown) = events
            .iter()
            .find(|e| **e != "*" && !Event::NAMES.contains(e))
        {
            return Err(UnknownEvent((*unknown).to_owned()));
        }
        let mut subs = self.subscriptions.write().expect("subscriptions lock");
        if replace {
            subs.retain(|s| s.observer.name() != observer.name());
        }
        subs.push(Subscription {
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            mode,
            since_ms: crate::clock::now_ms(),
            sort_order,
            observer,
        });
        // Stable: equal keys keep their subscription order.
        subs.sort_by(|a, b| {
            (a.sort_order, a.observer.name()).cmp(&(b.sort_order, b.observer.name()))
        });
        Ok(())
    }

    /// Dispatches an event that reports something already done: a veto cannot undo it, so
    /// it is logged and ignored.
    pub async fn notify(&self, event: Event) {
        let name = event.name();
        if let Err(veto) = self.dispatch(event).await {
            tracing::warn!(
                event = name,
                observer = %veto.observer,
                reason = %veto.reason,
                "an observer vetoed an event that reports a finished operation; ignored"
            );
        }
    }

    /// Runs the sync observers of the event in order, then queues it for the async ones (or,
    /// with an outbox, where the service wrote the event with its change, wakes its delivery).
    /// The first veto of a sync observer stops the sync observers and is returned; async
    /// observers then do not see the event.
    pub async fn dispatch(&self, event: Event) -> Result<(), Veto> {
        self.dispatch_sync(&event).await?;
        self.after_written(event);
        Ok(())
    }

    /// Runs the sync observers of the event in order; the first veto stops them and is
    /// returned.
    pub async fn dispatch_sync(&self, event: &Event) -> Result<(), Veto> {
        for observer in self.observers(Mode::Sync, event.name()) {
            if let Some(reason) = run(observer.as_ref(), event).await {
                return Err(Veto {
                    observer: observer.name().to_owned(),
                    reason,
                });
            }
        }
        Ok(())
    }

    /// The observers of that mode subscribed to event `name`, in their order.
    fn observers(&self, mode: Mode, name: &str) -> Vec<Arc<dyn Observer>> {
        let subs = self.subscriptions.read().expect("subscriptions lock");
        subs.iter()
            .filter(|s| s.mode == mode && s.wants(name))
            .map(|s| s.observer.clone())
            .collect()
    }

    /// Hands an event its sync observers accepted to the async ones: wakes the outbox's
    /// delivery (the event was written to it), or without an outbox, queues it in memory.
    pub fn after_written(&self, event: Event) {
        let name = event.name();
        let later = self.observers(Mode::Async, name);
        if later.is_empty() {
            return;
        }
        if let Some(durable) = self.durable() {
            durable.wake();
            return;
        }
        let event = Arc::new(event);
        for observer in later {
            self.pending.fetch_add(1, Ordering::AcqRel);
            if let Err(e) = self.queue.try_send((event.clone(), observer)) {
                self.pending.fetch_sub(1, Ordering::AcqRel);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                let (_, observer) = e.into_inner();
                tracing::warn!(
                    event = name,
                    observer = observer.name(),
                    "the async observer queue is full; event dropped for this observer"
                );
            }
        }
    }

    /// Events dropped because the async queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every queued async observer call has run, or with an outbox, every
    /// delivery due now was tried (at shutdown, and in tests).
    pub async fn flush(&self) {
        if let Some(durable) = self.durable() {
            durable.settle().await;
            return;
        }
        loop {
            let notified = self.idle.notified();
            if self.pending.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Runs one observer; returns its veto, if it vetoed.
async fn run(observer: &dyn Observer, event: &Event) -> Option<String> {
    match observer.observe(event).await {
        Ok(()) => None,
        Err(ObserveError::Veto(reason)) => Some(reason),
        Err(ObserveError::Failed(e) | ObserveError::Skipped(e)) => {
            tracing::warn!(
                event = event.name(),
                observer = observer.name(),
                error = %e,
                "an event observer failed"
            );
            None
        }
    }
}

/// Writes one structured log line per event (`target: integration_host::audit`).
#[derive(Debug, Default)]
pub struct AuditLog;

impl Observer for AuditLog {
    fn name(&self) -> &str {
        "audit-log"
    }

    fn observe<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, Result<(), ObserveError>> {
        Box::pin(async move {
            let fields = serde_json::to_string(event).map_err(|e| e.to_string())?;
            tracing::info!(target: "integration_host::audit", event = event.name(), details = %fields, "event");
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    struct Recorder {
        seen: Mutex<Vec<String>>,
        fail: bool,
        gate: Option<Arc<tokio::sync::Semaphore>>,
    }

    impl Recorder {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                seen: Mutex::new(Vec::new()),
                fail: false,
                gate: None,
            })
        }
        fn seen(&self) -> Vec<String> {
            self.seen.lock().unwrap().clone()
        }
    }

    impl Observer for Recorder {
        fn name(&self) -> &str {
            "recorder"
        }
        fn observe<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, Result<(), ObserveError>> {
            Box::pin(async move {
                if let Some(gate) = &self.gate {
                    gate.acquire().await.unwrap().forget();
                }
                self.seen.lock().unwrap().push(event.name().to_owned());
                if self.fail {
                    Err(ObserveError::Failed("boom".into()))
                } else {
                    Ok(())
                }
            })
        }
    }

    fn deleted(id: i64) -> Event {
        Event::IntegrationDeleted(IntegrationRef {
            id,
            name: format!("n{id}"),
        })
    }

    #[tokio::test]
    async fn sync_runs_before_dispatch_returns_and_filters_by_name() {
        let d = Dispatcher::new();
        let all = Recorder::new();
        let only_deleted = Recorder::new();
        d.subscribe(&["*"], Mode::Sync, all.clone()).unwrap();
        d.subscribe(&["integration_deleted"], Mode::Sync, only_deleted.clone())
            .unwrap();
        d.dispatch(deleted(1)).await.unwrap();
        d.dispatch(Event::TokensRevoked(TokensRevoked {
            account: AccountKind::Customer,
            user_id: 1,
            reason: RevocationReason::OwnRequest,
        }))
        .await
        .unwrap();
        assert_eq!(all.seen(), ["integration_deleted", "tokens_revoked"]);
        assert_eq!(only_deleted.seen(), ["integration_deleted"]);
        assert_eq!(
            d.subscribe(&["customer_logout"], Mode::Sync, all.clone()),
            Err(UnknownEvent("customer_logout".into()))
        );
    }

    #[tokio::test]
    async fn a_failing_observer_does_not_stop_the_others() {
        let d = Dispatcher::new();
        let failing = Arc::new(Recorder {
            seen: Mutex::new(Vec::new()),
            fail: true,
            gate: None,
        });
        let after = Recorder::new();
        d.subscribe(&["*"], Mode::Sync, failing.clone()).unwrap();
        d.subscribe(&["*"], Mode::Sync, after.clone()).unwrap();
        d.dispatch(deleted(1)).await.unwrap();
        assert_eq!(failing.seen().len(), 1);
        assert_eq!(after.seen().len(), 1);
    }

    struct Named {
        name: String,
        log: Arc<Mutex<Vec<String>>>,
        veto: bool,
    }

    impl Observer for Named {
        fn name(&self) -> &str {
            &self.name
        }
        fn observe<'a>(&'a self, _event: &'a Event) -> BoxFuture<'a, Result<(), ObserveError>> {
            Box::pin(async move {
                self.log.lock().unwrap().push(self.name.clone());
                if self.veto {
                    Err(ObserveError::Veto(format!("no, says {}", self.name)))
                } else {
                    Ok(())
                }
            })
        }
    }

    #[tokio::test]
    async fn ordered_observers_run_by_sort_order_then_name_and_a_veto_stops_the_rest() {
        let d = Dispatcher::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let named = |name: &str, veto| {
            Arc::new(Named {
                name: name.into(),
                log: log.clone(),
                veto,
            })
        };
        d.subscribe_ordered(&["*"], Mode::Sync, 10, named("b", false))
            .unwrap();
        d.subscribe_ordered(&["*"], Mode::Sync, 10, named("a", false))
            .unwrap();
        d.subscribe_ordered(&["*"], Mode::Sync, 5, named("c", false))
            .unwrap();
        d.dispatch(deleted(1)).await.unwrap();
        assert_eq!(*log.lock().unwrap(), ["c", "a", "b"]);

        // Subscribing a name again replaces it in place of order; unsubscribe removes it.
        log.lock().unwrap().clear();
        d.subscribe_ordered(&["*"], Mode::Sync, 7, named("b", true))
            .unwrap();
        let veto = d.dispatch(deleted(2)).await.unwrap_err();
        assert_eq!(veto.observer, "b");
        assert_eq!(veto.reason, "no, says b");
        assert_eq!(
            *log.lock().unwrap(),
            ["c", "b"],
            "a runs after the veto: skipped"
        );
        log.lock().unwrap().clear();
        d.unsubscribe("b");
        d.notify(deleted(3)).await;
        assert_eq!(*log.lock().unwrap(), ["c", "a"]);
    }

    #[tokio::test]
    async fn async_observers_run_later_and_a_full_queue_drops_without_blocking() {
        let d = Dispatcher::new();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let slow = Arc::new(Recorder {
            seen: Mutex::new(Vec::new()),
            fail: false,
            gate: Some(gate.clone()),
        });
        d.subscribe(&["*"], Mode::Async, slow.clone()).unwrap();
        // One is taken by the task and waits at the gate; QUEUE more fill the channel.
        for i in 0..(QUEUE as i64 + 10) {
            d.dispatch(deleted(i)).await.unwrap();
        }
        assert!(d.dropped() >= 9, "dropped {}", d.dropped());
        assert!(slow.seen().is_empty());
        gate.add_permits(QUEUE + 10);
        d.flush().await;
        assert_eq!(slow.seen().len() as u64, QUEUE as u64 + 10 - d.dropped());
    }
}
