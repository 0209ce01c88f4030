//! Nonce writes in group commits.
//!
//! Recording a nonce is the one write of every signed request; one synchronous insert per
//! request caps throughput near a tenth of an unauthenticated request. [`NonceWriter`] owns a
//! writer that takes every nonce waiting at the moment it is free, writes them in one
//! transaction on a connection of its own, and answers each waiter whether its nonce was new.
//! The primary key (consumer, nonce) keeps the check atomic across server processes; within one
//! batch, a repeated nonce is answered "used" without reaching the database.
//!
//! On SQLite the writer is a thread of its own with a direct connection (`rusqlite`, on the
//! same SQLite library as the pool): a batch is a few in-process calls, with no hop through an
//! async runtime or a driver's worker thread, which on two cores cost more than the inserts
//! themselves. On PostgreSQL it is a task on the runtime with its own connection, sending each
//! batch as three arrays in one statement.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use sqlx::Connection as _;
use tokio::sync::oneshot;

use super::{Store, StoreError};

/// Largest number of nonces written in one batch.
const MAX_BATCH: usize = 512;

struct Pending {
    consumer_id: i64,
    nonce: String,
    timestamp: i64,
    reply: oneshot::Sender<Result<bool, String>>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("consumer_id", &self.consumer_id)
            .finish_non_exhaustive()
    }
}

/// Where waiting nonces go. Unbounded: every entry is a request awaiting its answer, so the
/// number waiting is bounded by the requests in flight.
#[derive(Debug, Clone)]
enum Queue {
    Thread(std::sync::mpsc::Sender<Pending>),
    Task(tokio::sync::mpsc::UnboundedSender<Pending>),
}

/// Handle to the nonce writer; cheap to clone. The writer ends when the last handle drops.
#[derive(Debug, Clone)]
pub struct NonceWriter {
    queue: Queue,
}

impl NonceWriter {
    /// Starts the writer: a thread for SQLite, a task on the current tokio runtime for
    /// PostgreSQL.
    pub fn spawn(store: Store) -> Self {
        let queue = match &store.sqlite_file {
            Some(file) => {
                let (tx, rx) = std::sync::mpsc::channel();
                let path = file.path.clone();
                let busy = file.busy_timeout;
                std::thread::Builder::new()
                    .name("nonce-writer".into())
                    .spawn(move || sqlite_writer(path, busy, rx))
                    .expect("the nonce writer thread starts");
                Queue::Thread(tx)
            }
            None => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                tokio::spawn(postgres_writer(store, rx));
                Queue::Task(tx)
            }
        };
        Self { queue }
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
        match &self.queue {
            Queue::Thread(tx) => tx.send(pending).map_err(|_| gone())?,
            Queue::Task(tx) => tx.send(pending).map_err(|_| gone())?,
        }
        answer.await.map_err(|_| gone())?.map_err(StoreError::Batch)
    }
}

/// Splits off the copies of a nonce repeated within a batch (answered "used" at once).
fn dedupe(batch: Vec<Pending>) -> Vec<Pending> {
    let mut seen = HashSet::with_capacity(batch.len());
    let mut unique = Vec::with_capacity(batch.len());
    for p in batch {
        if seen.insert((p.consumer_id, p.nonce.clone())) {
            unique.push(p);
        } else {
            let _ = p.reply.send(Ok(false));
        }
    }
    unique
}

fn fail(batch: Vec<Pending>, message: String) {
    for p in batch {
        let _ = p.reply.send(Err(message.clone()));
    }
}

fn open_sqlite(path: &PathBuf, busy: Duration) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// The SQLite writer thread: waits for a nonce, takes every other one waiting, writes them in
/// one immediate transaction (each insert tells by its change count whether it was new).
fn sqlite_writer(path: PathBuf, busy: Duration, rx: std::sync::mpsc::Receiver<Pending>) {
    let mut conn: Option<rusqlite::Connection> = None;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let batch = dedupe(batch);
        if conn.is_none() {
            match open_sqlite(&path, busy) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    fail(batch, format!("cannot open {}: {e}", path.display()));
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("opened above");
        match insert_sqlite(c, &batch) {
            Ok(fresh) => {
                for (p, new) in batch.into_iter().zip(fresh) {
                    let _ = p.reply.send(Ok(new));
                }
            }
            Err(e) => {
                // The connection may be what failed (a replaced file): open another next time.
                conn = None;
                fail(batch, e.to_string());
            }
        }
    }
}

fn insert_sqlite(
    conn: &mut rusqlite::Connection,
    batch: &[Pending],
) -> rusqlite::Result<Vec<bool>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut fresh = Vec::with_capacity(batch.len());
    {
        let mut insert = tx.prepare(
            "INSERT INTO oauth_nonce (nonce, timestamp, consumer_id) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )?;
        for p in batch {
            fresh.push(insert.execute((&p.nonce, p.timestamp, p.consumer_id))? == 1);
        }
    }
    tx.commit()?;
    Ok(fresh)
}

/// The PostgreSQL writer task, with a connection of its own (outside the pool, so closing the
/// pool does not wait for it).
async fn postgres_writer(store: Store, mut rx: tokio::sync::mpsc::UnboundedReceiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut conn: Option<sqlx::PgConnection> = None;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let unique = dedupe(std::mem::take(&mut batch));
        if conn.is_none() {
            let super::Pool::Postgres(p) = &store.pool else {
                unreachable!("the task writer serves PostgreSQL")
            };
            match sqlx::PgConnection::connect_with(&p.connect_options()).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    fail(unique, e.to_string());
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("connected above");
        match insert_postgres(c, &unique).await {
            Ok(inserted) => {
                let inserted: HashSet<(i64, String)> = inserted.into_iter().collect();
                for p in unique {
                    let fresh = inserted.contains(&(p.consumer_id, p.nonce));
                    let _ = p.reply.send(Ok(fresh));
                }
            }
            Err(e) => {
                // The connection may be what failed (a restarted server): connect again next time.
                conn = None;
                fail(unique, e.to_string());
            }
        }
    }
}

/// Inserts the batch from three arrays and answers the (consumer, nonce) pairs that were new,
/// aggregated in one row.
async fn insert_postgres(
    conn: &mut sqlx::PgConnection,
    batch: &[Pending],
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
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
    .fetch_one(conn)
    .await?;
    Ok(ids.into_iter().zip(values).collect())
}
