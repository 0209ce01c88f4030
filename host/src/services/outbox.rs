//! At-least-once delivery of events to async observers, from the durable outbox.
//!
//! This module owns the form an event is written in ([`recorded`]: a stable id, the name, the
//! fields as JSON; the services write it in the transaction of the change it reports) and the
//! [`Outbox`] of a server: for each async observer subscribed to the dispatcher, it creates the
//! deliveries of new events, leases the due ones (two servers never work on the same one at
//! once) and calls the observer with the event and its [`Delivery`] (id and attempt). A failed
//! call (an error, a trap, a timeout) is tried again after a wait that doubles from
//! `events.retry_initial_ms` up to `events.retry_max_seconds`, until `events.max_attempts`;
//! then it is given up and kept for the operator to see. A call a quarantined plugin skipped
//! waits without counting an attempt. Deliveries survive restarts: they are rows, not tasks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::config::EventSettings;
use crate::events::{AsyncSubscriber, Delivery, Dispatcher, DurableDelivery, Event, ObserveError};
pub use crate::store::Backlog;
use crate::store::{Claimed, NewEvent, Store, StoreError};

/// The form `event` is written to the outbox in, with a new stable id.
pub fn recorded(event: &Event) -> NewEvent {
    NewEvent {
        event_id: uuid::Uuid::new_v4().to_string(),
        name: event.name(),
        payload: serde_json::to_string(event).expect("events serialize to JSON"),
    }
}

/// How long a server holds a delivery it works on before another may take it over (a server
/// that stopped in the middle of a call).
const LEASE_MS: i64 = 60_000;
/// Deliveries leased per observer and round.
const BATCH: i64 = 100;
/// Events turned into deliveries per observer and round.
const FAN_OUT: i64 = 1_000;
/// The least wait for an observer that skipped a call (a quarantined plugin).
const SKIPPED_WAIT_MS: i64 = 5_000;

/// How a delivery ended, as `/metrics` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Failed; tried again later.
    Retried,
    /// Failed the last attempt.
    GivenUp,
}

impl DeliveryOutcome {
    pub const ALL: [DeliveryOutcome; 3] = [
        DeliveryOutcome::Delivered,
        DeliveryOutcome::Retried,
        DeliveryOutcome::GivenUp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Retried => "retried",
            DeliveryOutcome::GivenUp => "given_up",
        }
    }
}

/// Deliveries by observer and outcome, since start.
#[derive(Debug, Default)]
pub struct DeliveryCounts(Mutex<BTreeMap<String, [u64; 3]>>);

impl DeliveryCounts {
    fn count(&self, observer: &str, outcome: DeliveryOutcome) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(observer.to_owned()).or_default()[outcome as usize] += 1;
    }

    /// Each observer's counts.
    pub fn snapshot(&self) -> Vec<(String, DeliveryOutcome, u64)> {
        let all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.iter()
            .flat_map(|(observer, counts)| {
                DeliveryOutcome::ALL
                    .into_iter()
                    .map(|o| (observer.clone(), o, counts[o as usize]))
            })
            .collect()
    }
}

/// Each async observer's deliveries not yet made, by observer name.
pub async fn backlogs(store: &Store) -> Result<BTreeMap<String, Backlog>, super::ServiceError> {
    Ok(store.backlogs().await?.into_iter().collect())
}

/// A server's delivery of the outbox to its async observers.
#[derive(Debug)]
pub struct Outbox {
    store: Store,
    events: Dispatcher,
    settings: EventSettings,
    wake: tokio::sync::Notify,
    /// One round at a time: the loop's and [`DurableDelivery::settle`]'s.
    round: tokio::sync::Mutex<()>,
    counts: Arc<DeliveryCounts>,
    /// Whether the last round failed on the database (logged once per outage).
    failing: AtomicBool,
}

impl Outbox {
    /// Starts delivering: the dispatcher hands its async observers' events to the outbox from
    /// now on. Stop it by aborting the task.
    pub fn start(
        store: Store,
        events: Dispatcher,
        settings: &EventSettings,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let outbox = Arc::new(Self {
            store,
            events: events.clone(),
            settings: settings.clone(),
            wake: tokio::sync::Notify::new(),
            round: tokio::sync::Mutex::new(()),
            counts: Arc::default(),
            failing: AtomicBool::new(false),
        });
        events.deliver_through(outbox.clone());
        let task = tokio::spawn(run(outbox.clone()));
        (outbox, task)
    }

    /// Deliveries by observer and outcome.
    pub fn counts(&self) -> Arc<DeliveryCounts> {
        self.counts.clone()
    }

    /// One round over every async observer; answers whether any delivery was leased (there
    /// may be more to do at once).
    async fn round(&self) -> bool {
        let _one = self.round.lock().await;
        let subscribers = self.events.async_subscribers();
        let results =
            futures_util::future::join_all(subscribers.iter().map(|s| self.serve(s))).await;
        let mut leased = false;
        let mut failed = None;
        for r in results {
            match r {
                Ok(n) => leased |= n > 0,
                Err(e) => failed = Some(e),
            }
        }
        match failed {
            Some(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "cannot deliver events to async observers now; retrying");
                }
            }
            None => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("delivering events to async observers again");
                }
            }
        }
        leased
    }

    /// One observer's round: its new deliveries, then the due ones in event order.
    async fn serve(&self, sub: &AsyncSubscriber) -> Result<usize, StoreError> {
        let name = sub.observer.name();
        self.store
            .fan_out(name, &sub.events, sub.since_ms, FAN_OUT)
            .await?;
        let claimed = self
            .store
            .claim_deliveries(name, crate::clock::now_ms(), LEASE_MS, BATCH)
            .await?;
        let n = claimed.len();
        for c in claimed {
            self.deliver(sub, c).await?;
        }
        Ok(n)
    }

    async fn deliver(&self, sub: &AsyncSubscriber, c: Claimed) -> Result<(), StoreError> {
        let observer = sub.observer.name();
        let attempt = u32::try_from(c.attempts + 1).unwrap_or(u32::MAX);
        let event: Event = match serde_json::from_str(&c.payload) {
            Ok(e) => e,
            Err(e) => {
                // Written by a newer server, or damaged: no attempt can read it.
                let why = format!("the event cannot be read: {e}");
                return self.failed(observer, &c, attempt, why, true).await;
            }
        };
        let delivery = Delivery {
            event_id: c.event_id.clone(),
            attempt,
            recorded_at: c.created_at,
        };
        match sub.observer.observe_delivery(&event, &delivery).await {
            Ok(()) => self.delivered(observer, &c).await,
            Err(ObserveError::Veto(reason)) => {
                tracing::warn!(
                    event = %c.name, event_id = %c.event_id, observer, reason = %reason,
                    "an async observer vetoed; only sync observers can veto, ignored"
                );
                self.delivered(observer, &c).await
            }
            Err(ObserveError::Skipped(why)) => {
                let wait = (self.settings.retry_initial_ms as i64).max(SKIPPED_WAIT_MS);
                self.store
                    .delivery_failed(
                        observer,
                        c.outbox_id,
                        false,
                        crate::clock::now_ms() + wait,
                        None,
                        &why,
                    )
                    .await
            }
            Err(ObserveError::Failed(e)) => {
                let last = attempt >= self.settings.max_attempts;
                self.failed(observer, &c, attempt, e, last).await
            }
        }
    }

    async fn delivered(&self, observer: &str, c: &Claimed) -> Result<(), StoreError> {
        self.store.delivery_done(observer, c.outbox_id).await?;
        self.counts.count(observer, DeliveryOutcome::Delivered);
        Ok(())
    }

    async fn failed(
        &self,
        observer: &str,
        c: &Claimed,
        attempt: u32,
        error: String,
        last: bool,
    ) -> Result<(), StoreError> {
        let now = crate::clock::now_ms();
        if last {
            tracing::warn!(
                event = %c.name, event_id = %c.event_id, observer, attempt, error = %error,
                "an event could not be delivered to an async observer; given up"
            );
            self.store
                .delivery_failed(
                    observer,
                    c.outbox_id,
                    true,
                    now,
                    Some(crate::clock::now()),
                    &error,
                )
                .await?;
            self.counts.count(observer, DeliveryOutcome::GivenUp);
        } else {
            let wait = backoff(&self.settings, attempt);
            tracing::info!(
                event = %c.name, event_id = %c.event_id, observer, attempt, error = %error,
                retry_in_ms = wait,
                "an async observer failed an event; it will be tried again"
            );
            self.store
                .delivery_failed(observer, c.outbox_id, true, now + wait, None, &error)
                .await?;
            self.counts.count(observer, DeliveryOutcome::Retried);
        }
        Ok(())
    }
}

/// Milliseconds to wait after failed attempt number `attempt` (1 for the first).
fn backoff(settings: &EventSettings, attempt: u32) -> i64 {
    let max = settings.retry_max_seconds.saturating_mul(1000);
    let wait = settings
        .retry_initial_ms
        .saturating_mul(1u64 << (attempt.saturating_sub(1)).min(40));
    i64::try_from(wait.min(max)).unwrap_or(i64::MAX)
}

impl DurableDelivery for Outbox {
    fn wake(&self) {
        self.wake.notify_one();
    }

    fn settle(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move { while self.round().await {} })
    }
}

async fn run(outbox: Arc<Outbox>) {
    let poll = Duration::from_millis(outbox.settings.poll_ms.max(10));
    loop {
        if !outbox.round().await {
            tokio::select! {
                () = outbox.wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_the_most() {
        let s = EventSettings {
            retry_initial_ms: 100,
            retry_max_seconds: 1,
            ..Default::default()
        };
        let waits: Vec<i64> = (1..=6).map(|a| backoff(&s, a)).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(&s, u32::MAX), 1000);
    }

    #[test]
    fn an_event_reads_back_as_written() {
        let event = Event::TokensRevoked(crate::events::TokensRevoked {
            account: crate::domain::AccountKind::Customer,
            user_id: 7,
            reason: crate::domain::RevocationReason::Deactivated,
        });
        let written = recorded(&event);
        assert_eq!(written.name, "tokens_revoked");
        assert_eq!(written.event_id.len(), 36);
        let back: Event = serde_json::from_str(&written.payload).unwrap();
        assert_eq!(back, event);
        assert_ne!(recorded(&event).event_id, written.event_id);
    }
}
