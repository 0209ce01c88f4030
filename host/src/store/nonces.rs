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
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::Connection as _;
use tokio::sync::oneshot;

use super::{SqliteFile, Store, StoreError};

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

/// What the writer has done since it started: how well nonces group into commits.
#[derive(Debug, Default)]
pub struct NonceStats {
    batches: AtomicU64,
    nonces: AtomicU64,
}

impl NonceStats {
    /// Transactions committed (each holding one batch).
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Nonces sent to the database (a copy repeated within one batch is not).
    pub fn nonces(&self) -> u64 {
        self.nonces.load(Ordering::Relaxed)
    }

    fn committed(&self, nonces: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.nonces.fetch_add(nonces as u64, Ordering::Relaxed);
    }
}

/// Handle to the nonce writer; cheap to clone. The writer ends when the last handle drops.
#[derive(Debug, Clone)]
pub struct NonceWriter {
    queue: Queue,
    stats: Arc<NonceStats>,
}

impl NonceWriter {
    /// Starts the writer: a thread for SQLite, a task on the current tokio runtime for
    /// PostgreSQL.
    pub fn spawn(store: Store) -> Self {
        let stats = Arc::new(NonceStats::default());
        let counted = stats.clone();
        let queue = match &store.sqlite_file {
            Some(file) => {
                let (tx, rx) = std::sync::mpsc::channel();
                let file = file.clone();
                std::thread::Builder::new()
                    .name("nonce-writer".into())
                    .spawn(move || sqlite_writer(&file, rx, &counted))
                    .expect("the nonce writer thread starts");
                Queue::Thread(tx)
            }
            None => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                tokio::spawn(postgres_writer(store, rx, counted));
                Queue::Task(tx)
            }
        };
        Self { queue, stats }
    }

    /// The writer's counters.
    pub fn stats(&self) -> Arc<NonceStats> {
        self.stats.clone()
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
    // The insert checks its consumer itself (in the same transaction); deletions, which
    // cascade to nonces, run on the pool's connections.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    Ok(conn)
}

/// Moves every waiting nonce into `batch`, up to [`MAX_BATCH`].
fn take_waiting(rx: &std::sync::mpsc::Receiver<Pending>, batch: &mut Vec<Pending>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(p) => batch.push(p),
            Err(_) => break,
        }
    }
}

/// The SQLite writer thread: waits for a nonce, takes every other one waiting, writes them in
/// one immediate transaction (each insert tells by its change count whether it was new; a
/// nonce of a consumer deleted meanwhile is not written, and answered "used", so that it
/// cannot fail the others' commit).
///
/// Under load (the last commit held more than one nonce, or more than one is waiting) it
/// first sleeps `nonce_commit_delay`, so that the nonces of the requests in flight join this
/// commit: a commit (locks, WAL frames, the WAL index) costs several times one more row, and
/// with every request waiting for its own commit the writer would otherwise wake for a few
/// nonces at a time. Sleeping, it is not woken by each new nonce. A lone request never waits.
fn sqlite_writer(file: &SqliteFile, rx: std::sync::mpsc::Receiver<Pending>, stats: &NonceStats) {
    let mut conn: Option<rusqlite::Connection> = None;
    let mut last_batch = 0;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        take_waiting(&rx, &mut batch);
        if !file.nonce_commit_delay.is_zero() && (last_batch > 1 || batch.len() > 1) {
            std::thread::sleep(file.nonce_commit_delay);
            take_waiting(&rx, &mut batch);
        }
        last_batch = batch.len();
        let batch = dedupe(batch);
        if conn.is_none() {
            match open_sqlite(&file.path, file.busy_timeout) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    fail(batch, format!("cannot open {}: {e}", file.path.display()));
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("opened above");
        match insert_sqlite(c, &batch) {
            Ok(fresh) => {
                stats.committed(batch.len());
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
    // Statements prepared once per connection, the transaction's own included: parsing
    // `BEGIN` and `COMMIT` again cost as much as a few rows.
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let written = insert_rows(conn, batch);
    let end = if written.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    let ended = conn.prepare_cached(end)?.execute([]);
    let fresh = written?;
    ended?;
    Ok(fresh)
}

/// The rows of one batch, within its transaction. Whether each consumer still exists is read
/// once (the transaction holds the write lock, so none is deleted meanwhile); each row is then
/// a one-row insert, which needs no statement journal.
fn insert_rows(conn: &rusqlite::Connection, batch: &[Pending]) -> rusqlite::Result<Vec<bool>> {
    let mut consumers: Vec<(i64, bool)> = Vec::new();
    let mut exists = conn.prepare_cached("SELECT 1 FROM oauth_consumer WHERE id = ?1")?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO oauth_nonce (nonce, timestamp, consumer_id) VALUES (?1, ?2, ?3)",
    )?;
    let mut fresh = Vec::with_capacity(batch.len());
    for p in batch {
        let live = match consumers.iter().find(|(id, _)| *id == p.consumer_id) {
            Some((_, live)) => *live,
            None => {
                let live = exists.exists([p.consumer_id])?;
                consumers.push((p.consumer_id, live));
                live
            }
        };
        fresh.push(live && insert.execute((&p.nonce, p.timestamp, p.consumer_id))? == 1);
    }
    Ok(fresh)
}

/// The PostgreSQL writer task, with a connection of its own (outside the pool, so closing the
/// pool does not wait for it).
async fn postgres_writer(
    store: Store,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Pending>,
    stats: Arc<NonceStats>,
) {
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
                stats.committed(unique.len());
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
             SELECT n.* FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) AS n (nonce, ts, consumer)
             WHERE EXISTS (SELECT 1 FROM oauth_consumer c WHERE c.id = n.consumer)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::config::{DatabaseSettings, DatabaseUrl};

    async fn sqlite_store(dir: &Path) -> Store {
        let url = DatabaseUrl::Sqlite(dir.join("nonces.sqlite"));
        let store = Store::connect(&url, &DatabaseSettings::default())
            .await
            .expect("the database opens");
        store.migrate().await.expect("migrations run");
        store
    }

    /// Each nonce is new once per consumer: a copy in the same batch and a nonce used before
    /// are both answered "used", whichever commit they land in; the counters follow.
    #[test]
    fn a_nonce_is_new_once() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let store = sqlite_store(dir.path()).await;
            let consumer = store
                .insert_consumer("c", "k", b"sealed")
                .await
                .expect("a consumer")
                .id;
            let writer = NonceWriter::spawn(store);
            let local = tokio::task::LocalSet::new();
            let answers = local
                .run_until(async {
                    let tasks: Vec<_> = ["a", "b", "c", "a", "d"]
                        .into_iter()
                        .map(|nonce| {
                            let w = writer.clone();
                            tokio::task::spawn_local(async move {
                                w.record(consumer, nonce, 1).await.expect("recorded")
                            })
                        })
                        .collect();
                    let mut answers = Vec::new();
                    for t in tasks {
                        answers.push(t.await.expect("the task ends"));
                    }
                    answers
                })
                .await;
            assert_eq!(answers, [true, true, true, false, true]);
            let (batches, nonces) = (writer.stats().batches(), writer.stats().nonces());
            assert!((1..=5).contains(&batches), "{batches} commits");
            // The second "a" reaches the database only when it came in another batch.
            assert!((4..=5).contains(&nonces), "{nonces} nonces");
            assert!(!writer.record(consumer, "b", 1).await.expect("recorded"));
            assert!(writer.record(consumer, "e", 1).await.expect("recorded"));
            // A consumer deleted meanwhile: refused, and the batch it is in still commits.
            assert!(
                !writer
                    .record(consumer + 1000, "f", 1)
                    .await
                    .expect("recorded")
            );
            assert_eq!(writer.stats().batches(), batches + 3);
        });
    }
}
