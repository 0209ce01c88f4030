//! Nonce writes in group commits.
//!
//! Recording a nonce is the one write of every signed request; one synchronous insert per
//! request caps throughput near a tenth of an unauthenticated request. [`NonceWriter`] owns a
//! task that takes every nonce waiting at the moment it is free, writes them with one
//! multi-row `INSERT` on a connection of its own, and answers each
//! waiter whether its nonce was new. The primary key (consumer, nonce) keeps the check atomic
//! across server processes; within one batch, a repeated nonce is answered "used" without
//! reaching the database.

use std::collections::HashSet;

use sqlx::Connection as _;
use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError};

/// Largest number of nonces written by one statement (3 parameters each).
const MAX_BATCH: usize = 512;
/// Nonces that may wait for the writer before callers wait to enqueue.
const QUEUE: usize = 8192;

struct Pending {
    consumer_id: i64,
    nonce: String,
    timestamp: i64,
    reply: oneshot::Sender<Result<bool, String>>,
}

/// Handle to the nonce-writing task; cheap to clone. The task ends when the last handle drops.
#[derive(Debug, Clone)]
pub struct NonceWriter {
    tx: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("consumer_id", &self.consumer_id)
            .finish_non_exhaustive()
    }
}

impl NonceWriter {
    /// Starts the writer on the current tokio runtime.
    pub fn spawn(store: Store) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, rx));
        Self { tx }
    }

    /// Records a nonce for a consumer. `false` when this consumer already used it.
    pub async fn record(
        &self,
        consumer_id: i64,
        nonce: &str,
        timestamp: i64,
    ) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            consumer_id,
            nonce: nonce.to_owned(),
            timestamp,
            reply,
        };
        let gone = || StoreError::Batch("the nonce writer has stopped".into());
        self.tx.send(pending).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?.map_err(StoreError::Batch)
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut conn = None;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        write(&store, &mut conn, std::mem::take(&mut batch)).await;
    }
}

/// The writer's own connection, outside the pool and held across batches: SQLite keeps its
/// page cache only while one connection does every write (a write through another connection
/// discards it), and no batch waits for the pool. Closing the pool does not wait for it; it
/// closes when the writer ends.
enum Connection {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

async fn write(store: &Store, conn: &mut Option<Connection>, batch: Vec<Pending>) {
    // A nonce repeated within the batch: only its first copy reaches the database.
    let mut seen = HashSet::with_capacity(batch.len());
    let mut unique = Vec::with_capacity(batch.len());
    let mut repeated = Vec::new();
    for p in batch {
        if seen.insert((p.consumer_id, p.nonce.clone())) {
            unique.push(p);
        } else {
            repeated.push(p);
        }
    }
    for p in repeated {
        let _ = p.reply.send(Ok(false));
    }
    let result = match conn {
        Some(c) => store.insert_nonces(c, &unique).await,
        None => match store.nonce_connection().await {
            Ok(c) => store.insert_nonces(conn.insert(c), &unique).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(Inserted::All) => {
            for p in unique {
                let _ = p.reply.send(Ok(true));
            }
        }
        Ok(Inserted::These(inserted)) => {
            let inserted: HashSet<(i64, String)> = inserted.into_iter().collect();
            for p in unique {
                let fresh = inserted.contains(&(p.consumer_id, p.nonce));
                let _ = p.reply.send(Ok(fresh));
            }
        }
        Err(e) => {
            // The connection may be what failed (a restarted server, a replaced file): the
            // next batch opens another.
            *conn = None;
            let message = e.to_string();
            for p in unique {
                let _ = p.reply.send(Err(message.clone()));
            }
        }
    }
}

/// Which nonces of a batch were new.
enum Inserted {
    All,
    These(Vec<(i64, String)>),
}

/// Every nonce of the batch, or none when one of them is already there (SQLite's default
/// conflict handling rolls the statement back).
const SQLITE_INSERT: &str = "INSERT INTO oauth_nonce (nonce, timestamp, consumer_id)
     SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each($1)";

/// The new nonces of the batch, after a conflict.
const SQLITE_INSERT_NEW: &str = "INSERT INTO oauth_nonce (nonce, timestamp, consumer_id)
     SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each($1) WHERE true
     ON CONFLICT DO NOTHING RETURNING consumer_id, nonce";

impl Store {
    async fn nonce_connection(&self) -> Result<Connection, StoreError> {
        Ok(match &self.pool {
            super::Pool::Sqlite(p) => Connection::Sqlite(
                sqlx::SqliteConnection::connect_with(&p.connect_options()).await?,
            ),
            super::Pool::Postgres(p) => {
                Connection::Postgres(sqlx::PgConnection::connect_with(&p.connect_options()).await?)
            }
        })
    }

    /// Inserts nonces with statements of constant text (prepared once on the writer's
    /// connection) and answers the (consumer, nonce) pairs that were new.
    ///
    /// SQLite reads the batch from one JSON parameter. Streaming back one row per new nonce
    /// costs more than the insert itself, so the usual case (every nonce new) is one
    /// statement in autocommit that either inserts every row or, on a replay, none; only then
    /// is the batch inserted again with `ON CONFLICT DO NOTHING RETURNING`. PostgreSQL reads
    /// three arrays and answers the new pairs aggregated in one row.
    async fn insert_nonces(
        &self,
        conn: &mut Connection,
        batch: &[Pending],
    ) -> Result<Inserted, StoreError> {
        if batch.is_empty() {
            return Ok(Inserted::All);
        }
        let rows = match conn {
            Connection::Sqlite(c) => {
                let rows: Vec<(&str, i64, i64)> = batch
                    .iter()
                    .map(|n| (n.nonce.as_str(), n.timestamp, n.consumer_id))
                    .collect();
                let json = serde_json::to_string(&rows).expect("tuples serialize");
                match sqlx::query(SQLITE_INSERT)
                    .bind(&json)
                    .execute(&mut *c)
                    .await
                {
                    Ok(_) => Inserted::All,
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Inserted::These(
                        sqlx::query_as::<_, (i64, String)>(SQLITE_INSERT_NEW)
                            .bind(&json)
                            .fetch_all(&mut *c)
                            .await?,
                    ),
                    Err(e) => return Err(e.into()),
                }
            }
            Connection::Postgres(c) => {
                let nonces: Vec<&str> = batch.iter().map(|n| n.nonce.as_str()).collect();
                let timestamps: Vec<i64> = batch.iter().map(|n| n.timestamp).collect();
                let consumers: Vec<i64> = batch.iter().map(|n| n.consumer_id).collect();
                let (ids, values): (Vec<i64>, Vec<String>) = sqlx::query_as(
                    "WITH ins AS (
                         INSERT INTO oauth_nonce (nonce, timestamp, consumer_id)
                         SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[])
                         ON CONFLICT DO NOTHING RETURNING consumer_id, nonce)
                     SELECT COALESCE(array_agg(consumer_id), '{}'), COALESCE(array_agg(nonce), '{}')
                     FROM ins",
                )
                .bind(nonces)
                .bind(timestamps)
                .bind(consumers)
                .fetch_one(&mut *c)
                .await?;
                Inserted::These(ids.into_iter().zip(values).collect())
            }
        };
        Ok(rows)
    }
}
