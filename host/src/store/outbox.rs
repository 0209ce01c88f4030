//! The durable outbox of events (`event_outbox`), each async observer's deliveries
//! (`event_delivery`) and how far they were created (`event_cursor`).
//!
//! An event is written by [`record_event!`] inside the transaction of the change it reports, so
//! it exists exactly when the change does, whichever process made it. A server creates the
//! deliveries of its async observers from the events past their cursor ([`Store::fan_out`]),
//! leases the due ones ([`Store::claim_deliveries`]) and settles each: delivered (deleted),
//! retried later, or given up. Ids are in commit order: SQLite has one writer at a time, and on
//! PostgreSQL writers of events take turns through an advisory lock held until they commit, so
//! a cursor never passes an event that commits later.

use super::{Pool, Store, StoreError};
use crate::store::BeginWrite as _;

/// An event to write: its stable id (what observers drop duplicates by), name and fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub event_id: String,
    pub name: &'static str,
    /// The event as JSON.
    pub payload: String,
}

/// A delivery a server leased to work on.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Claimed {
    pub outbox_id: i64,
    pub event_id: String,
    pub name: String,
    pub payload: String,
    /// Unix seconds when the event was written.
    pub created_at: i64,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// An observer's deliveries not yet made.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Backlog {
    /// Waiting for a first or a further attempt.
    pub pending: i64,
    /// Given up after the last attempt.
    pub given_up: i64,
    /// Unix seconds when the oldest pending event was written.
    pub oldest_pending_at: Option<i64>,
}

/// Seconds between two updates of an idle cursor's `seen_at`.
const SEEN_EVERY: i64 = 3600;

/// The advisory lock key events are written under on PostgreSQL.
const EVENT_LOCK: i64 = 0x6576_656e_7473; // "events"

/// Writes `$event` (a [`NewEvent`]) in transaction `$tx`, on either backend.
macro_rules! record_event {
    ($tx:ident, $event:expr, $postgres:expr) => {{
        let event: &$crate::store::NewEvent = $event;
        if $postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind($crate::store::outbox::event_lock())
                .execute(&mut *$tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO event_outbox (event_id, name, payload, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&event.event_id)
        .bind(event.name)
        .bind(&event.payload)
        .bind($crate::clock::now())
        .execute(&mut *$tx)
        .await?;
    }};
}
pub(crate) use record_event;

pub(crate) fn event_lock() -> i64 {
    EVENT_LOCK
}

impl Store {
    /// Whether the store is PostgreSQL (for [`record_event!`]).
    pub(super) fn is_postgres(&self) -> bool {
        matches!(self.pool, Pool::Postgres(_))
    }

    /// Writes an event that reports no change of its own (a sign-in), in its own transaction.
    pub async fn record_event(&self, event: &NewEvent) -> Result<(), StoreError> {
        let postgres = self.is_postgres();
        super::on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            record_event!(tx, event, postgres);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Creates the deliveries of `observer` for up to `limit` events past its cursor whose name
    /// it subscribed to (`*` for all), and moves the cursor past them. An observer seen for the
    /// first time starts with the events written from the second it subscribed (`since_ms`).
    /// Answers how many deliveries were created; two servers doing this at once create each
    /// delivery once.
    pub async fn fan_out(
        &self,
        observer: &str,
        events: &[String],
        since_ms: i64,
        limit: i64,
    ) -> Result<u64, StoreError> {
        let now = crate::clock::now();
        let all = events.iter().any(|e| e == "*");
        let names = events.join(",");
        // A read first: nothing to do (no new event, the cursor seen lately) writes nothing.
        let (cursor, newest): (Option<(i64, i64)>, Option<i64>) = super::on_pool!(self, |p| {
            let cursor = sqlx::query_as(
                "SELECT last_outbox_id, seen_at FROM event_cursor WHERE observer = $1",
            )
            .bind(observer)
            .fetch_optional(p)
            .await?;
            let newest = sqlx::query_scalar("SELECT MAX(id) FROM event_outbox")
                .fetch_one(p)
                .await?;
            (cursor, newest)
        });
        if let Some((last, seen_at)) = cursor
            && newest.unwrap_or(0) <= last
            && now - seen_at < SEEN_EVERY
        {
            return Ok(0);
        }
        super::on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            sqlx::query(
                "INSERT INTO event_cursor (observer, last_outbox_id, seen_at)
                 SELECT $1, COALESCE((SELECT MAX(id) FROM event_outbox WHERE created_at < $3), 0), $2
                 ON CONFLICT (observer) DO NOTHING",
            )
            .bind(observer)
            .bind(now)
            .bind(since_ms.div_euclid(1000))
            .execute(&mut *tx)
            .await?;
            let cursor: i64 =
                sqlx::query_scalar("SELECT last_outbox_id FROM event_cursor WHERE observer = $1")
                    .bind(observer)
                    .fetch_one(&mut *tx)
                    .await?;
            let upto: Option<i64> = sqlx::query_scalar(
                "SELECT MAX(id) FROM (SELECT id FROM event_outbox WHERE id > $1 ORDER BY id LIMIT $2) AS next",
            )
            .bind(cursor)
            .bind(limit)
            .fetch_one(&mut *tx)
            .await?;
            let Some(upto) = upto else {
                sqlx::query("UPDATE event_cursor SET seen_at = $2 WHERE observer = $1")
                    .bind(observer)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(0);
            };
            // The names are matched as a comma-separated list: event names have no commas.
            let created = sqlx::query(
                "INSERT INTO event_delivery (observer, outbox_id, next_attempt_at)
                 SELECT $1, id, 0 FROM event_outbox
                 WHERE id > $2 AND id <= $3
                   AND ($4 OR ',' || $5 || ',' LIKE '%,' || name || ',%')
                 ON CONFLICT (observer, outbox_id) DO NOTHING",
            )
            .bind(observer)
            .bind(cursor)
            .bind(upto)
            .bind(all)
            .bind(&names)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query(
                "UPDATE event_cursor SET last_outbox_id = $2, seen_at = $3
                 WHERE observer = $1 AND last_outbox_id < $2",
            )
            .bind(observer)
            .bind(upto)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(created)
        })
    }

    /// Leases up to `limit` of `observer`'s due deliveries (not given up, due by `now_ms`, not
    /// leased by another server) until `now_ms + lease_ms`, oldest event first.
    pub async fn claim_deliveries(
        &self,
        observer: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        // The same statement, but that PostgreSQL skips rows another server is leasing now.
        let sqlite = concat!(
            "UPDATE event_delivery SET leased_until = $3 WHERE observer = $1 AND outbox_id IN (",
            "SELECT outbox_id FROM event_delivery WHERE ",
            "observer = $1 AND given_up_at IS NULL AND next_attempt_at <= $2 AND leased_until <= $2",
            " ORDER BY outbox_id LIMIT $4) RETURNING outbox_id"
        );
        let postgres = concat!(
            "UPDATE event_delivery SET leased_until = $3 WHERE observer = $1 AND outbox_id IN (",
            "SELECT outbox_id FROM event_delivery WHERE ",
            "observer = $1 AND given_up_at IS NULL AND next_attempt_at <= $2 AND leased_until <= $2",
            " ORDER BY outbox_id LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING outbox_id"
        );
        let until = now_ms + lease_ms;
        // A read first: no due delivery takes no write lock.
        let due: Option<i64> = super::on_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT outbox_id FROM event_delivery
                 WHERE observer = $1 AND given_up_at IS NULL AND next_attempt_at <= $2 AND leased_until <= $2
                 LIMIT 1",
            )
            .bind(observer)
            .bind(now_ms)
            .fetch_optional(p)
            .await?
        });
        if due.is_none() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = super::on_pool!(self, |p| {
            let sql = if self.is_postgres() { postgres } else { sqlite };
            sqlx::query_scalar(sql)
                .bind(observer)
                .bind(now_ms)
                .bind(until)
                .bind(limit)
                .fetch_all(p)
                .await?
        });
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            let row: Option<Claimed> = super::on_pool!(self, |p| {
                sqlx::query_as(
                    "SELECT o.id AS outbox_id, o.event_id, o.name, o.payload, o.created_at, d.attempts
                     FROM event_outbox o JOIN event_delivery d ON d.outbox_id = o.id AND d.observer = $1
                     WHERE o.id = $2",
                )
                .bind(observer)
                .bind(id)
                .fetch_optional(p)
                .await?
            });
            claimed.extend(row);
        }
        claimed.sort_by_key(|c| c.outbox_id);
        Ok(claimed)
    }

    /// The delivery was made: it is deleted.
    pub async fn delivery_done(&self, observer: &str, outbox_id: i64) -> Result<(), StoreError> {
        super::on_pool!(self, |p| sqlx::query(
            "DELETE FROM event_delivery WHERE observer = $1 AND outbox_id = $2"
        )
        .bind(observer)
        .bind(outbox_id)
        .execute(p)
        .await
        .map(drop)?);
        Ok(())
    }

    /// An attempt failed: counted, and tried again at `next_ms`, or given up at `given_up`
    /// (Unix seconds). `counted` is false when the observer did not run (a quarantined plugin).
    pub async fn delivery_failed(
        &self,
        observer: &str,
        outbox_id: i64,
        counted: bool,
        next_ms: i64,
        given_up: Option<i64>,
        error: &str,
    ) -> Result<(), StoreError> {
        super::on_pool!(self, |p| sqlx::query(
            "UPDATE event_delivery
             SET attempts = attempts + $3, next_attempt_at = $4, leased_until = 0,
                 given_up_at = $5, last_error = $6
             WHERE observer = $1 AND outbox_id = $2"
        )
        .bind(observer)
        .bind(outbox_id)
        .bind(i64::from(counted))
        .bind(next_ms)
        .bind(given_up)
        .bind(error)
        .execute(p)
        .await
        .map(drop)?);
        Ok(())
    }

    /// Each observer's deliveries not yet made, by observer name.
    pub async fn backlogs(&self) -> Result<Vec<(String, Backlog)>, StoreError> {
        let rows: Vec<(String, i64, i64, Option<i64>)> = super::on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT d.observer,
                        SUM(CASE WHEN d.given_up_at IS NULL THEN 1 ELSE 0 END),
                        SUM(CASE WHEN d.given_up_at IS NULL THEN 0 ELSE 1 END),
                        MIN(CASE WHEN d.given_up_at IS NULL THEN o.created_at END)
                 FROM event_delivery d JOIN event_outbox o ON o.id = d.outbox_id
                 GROUP BY d.observer ORDER BY d.observer",
            )
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(observer, pending, given_up, oldest)| {
                (
                    observer,
                    Backlog {
                        pending,
                        given_up,
                        oldest_pending_at: oldest,
                    },
                )
            })
            .collect())
    }

    /// The cleanup: forgets observers no server had since `cutoff`, then deletes, in batches,
    /// the events every cursor is past with no delivery left, and those older than `cutoff`
    /// with none pending (their given-up deliveries go with them). Answers how many.
    pub async fn delete_settled_events(&self, cutoff: i64) -> Result<u64, StoreError> {
        self.in_batches(|limit| self.delete_settled_batch(cutoff, limit))
            .await
    }

    /// One batch of [`Self::delete_settled_events`]: up to `limit` events.
    async fn delete_settled_batch(&self, cutoff: i64, limit: i64) -> Result<u64, StoreError> {
        super::on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            sqlx::query("DELETE FROM event_cursor WHERE seen_at < $1")
                .bind(cutoff)
                .execute(&mut *tx)
                .await?;
            let deleted = sqlx::query(
                "DELETE FROM event_outbox WHERE id IN (
                     SELECT o.id FROM event_outbox o
                     WHERE (o.created_at < $1
                            AND NOT EXISTS (SELECT 1 FROM event_delivery d
                                            WHERE d.outbox_id = o.id AND d.given_up_at IS NULL))
                        OR (o.id <= COALESCE((SELECT MIN(last_outbox_id) FROM event_cursor),
                                             (SELECT MAX(id) FROM event_outbox))
                            AND NOT EXISTS (SELECT 1 FROM event_delivery d WHERE d.outbox_id = o.id))
                     ORDER BY o.id LIMIT $2)",
            )
            .bind(cutoff)
            .bind(limit)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query(
                "DELETE FROM event_delivery WHERE given_up_at IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM event_outbox o WHERE o.id = event_delivery.outbox_id)",
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(deleted)
        })
    }
}
