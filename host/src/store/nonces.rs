//! Nonce writes in group commits, and whether each nonce is new.
//!
//! Recording a nonce is the one write of every signed request; one synchronous insert per
//! request caps throughput near a tenth of an unauthenticated request. [`NonceWriter`] owns a
//! writer that takes every nonce waiting at the moment it is free, writes them in one
//! transaction on a connection of its own, and answers each waiter whether its nonce was new
//! (a nonce repeated within one batch is answered "used" too).
//!
//! On PostgreSQL the primary key (consumer, nonce) decides, atomically across server processes:
//! the writer is a task on the runtime with its own connection, sending each batch as three
//! arrays in one statement.
//!
//! On SQLite the table is a log in arrival order (`seq`), and the writer thread decides from
//! [`Recent`]: the nonces of every consumer whose timestamp still lies within the window, as
//! keyed fingerprints, read from the log when the writer starts and kept level with it. Each
//! batch runs under the database's write lock (`BEGIN IMMEDIATE`): first it reads the rows
//! other server processes appended since its last batch, then it checks each nonce and appends
//! the new ones, then commits before anyone is answered. So a nonce is new once per consumer
//! across processes, as with a unique key; but the log takes a commit's nonces on a few
//! adjacent pages, where a key on (consumer, nonce) takes one page per nonce (a client's nonce
//! is random), which is what bounded signed requests on SQLite. The writer is a thread with a
//! direct connection (`rusqlite`, on the same SQLite library as the pool): a batch is a few
//! in-process calls, with no hop through an async runtime or a driver's worker thread, which
//! on two cores cost more than the inserts themselves.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
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

    /// Nonces written: on SQLite the new ones; on PostgreSQL every one sent to be inserted (a
    /// copy repeated within one batch is not sent).
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
    /// PostgreSQL. `window` is the timestamp window in seconds: on SQLite, how long a nonce is
    /// remembered in memory after its timestamp (a request carrying an older timestamp is
    /// refused before its nonce is looked at).
    pub fn spawn(store: Store, window: u64) -> Self {
        let stats = Arc::new(NonceStats::default());
        let counted = stats.clone();
        let queue = match &store.sqlite_file {
            Some(file) => {
                let (tx, rx) = std::sync::mpsc::channel();
                let file = file.clone();
                std::thread::Builder::new()
                    .name("nonce-writer".into())
                    .spawn(move || sqlite_writer(&file, window, rx, &counted))
                    .expect("the nonce writer thread starts");
                Queue::Thread(tx)
            }
            None => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                tokio::spawn(postgres_writer(store, keep_seconds(window), rx, counted));
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

thread_local! {
    /// The SQLite writer thread's busy timeout, and when its current wait for the lock began.
    static BUSY: std::cell::Cell<(Duration, Option<std::time::Instant>)> =
        const { std::cell::Cell::new((Duration::ZERO, None)) };
}

/// Waits for a locked database in steps of 100 µs, up to the busy timeout. SQLite's own busy
/// timeout sleeps 1, 2, 5, 10, 15, 20, 25 ... ms between tries: a writer that found the lock
/// taken for a moment (a cleanup job's delete) slept on for milliseconds after it was free,
/// with every signed request waiting on it.
fn wait_for_lock(attempt: i32) -> bool {
    BUSY.with(|busy| {
        let (limit, since) = busy.get();
        let since = match since {
            Some(t) if attempt > 0 => t,
            _ => std::time::Instant::now(),
        };
        busy.set((limit, Some(since)));
        if since.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_micros(100));
        true
    })
}

/// Opens the writer's connection; call it on the writer's thread (its busy handler keeps its
/// state there).
fn open_sqlite(path: &PathBuf, busy: Duration) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // Room for every multi-row insert, besides the transaction's and the catch-up's.
    conn.set_prepared_statement_cache_capacity(32);
    BUSY.with(|b| b.set((busy, None)));
    conn.busy_handler(Some(wait_for_lock))?;
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

/// How long after its timestamp's window a nonce is still remembered: room for the clocks of
/// several server processes on one machine to differ a little.
const MARGIN_SECONDS: i64 = 60;

/// Seconds after its timestamp a nonce counts as used: the window and a margin.
fn keep_seconds(window: u64) -> i64 {
    i64::try_from(window)
        .unwrap_or(i64::MAX / 4)
        .saturating_add(MARGIN_SECONDS)
}

/// Hashes a fingerprint, which is already a keyed hash, by one multiplication: its top bits
/// choose the shard, so the map must see them mixed into the bits it uses.
#[derive(Debug, Default)]
struct Fingerprint(u64);

impl Hasher for Fingerprint {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The nonces whose timestamp is within the window, of every consumer, as this SQLite writer
/// knows them from the log: up to `seq`, kept level with the log under the write lock before
/// each batch. A nonce is a 64-bit fingerprint of (consumer, nonce) under a key of this
/// process; two different nonces of one consumer share a fingerprint with a chance of about
/// one in 2^64 / (nonces in the window), and the only effect would be one refused request.
/// About 50 bytes per nonce within the window. Both structures grow in small steps: one map
/// of millions of entries doubling, or one queue of them being copied, would hold up every
/// signed request for a noticeable time.
#[derive(Debug)]
struct Recent {
    key: RandomState,
    /// Fingerprint to the latest timestamp it was seen with, in [`SHARDS`] maps by the
    /// fingerprint's top bits.
    seen: Vec<HashMap<u64, i64, BuildHasherDefault<Fingerprint>>>,
    /// Fingerprints in the order they came, to forget them once their timestamp is out of the
    /// window. Not sorted by timestamp: one far ahead (a client clock) holds back the ones
    /// behind it for at most twice the window, which only makes the check stricter.
    order: Arrivals,
    /// The last log row read or written.
    seq: i64,
    /// Timestamps before this are out of the window: not remembered.
    cutoff: i64,
    /// Seconds after its timestamp a nonce is remembered.
    keep: i64,
}

/// Maps of fingerprints in [`Recent`].
const SHARDS: usize = 256;

/// Entries per block of [`Arrivals`].
const BLOCK: usize = 4096;

/// A queue in blocks of [`BLOCK`] entries: growing never copies what it holds.
#[derive(Debug, Default)]
struct Arrivals(VecDeque<VecDeque<(i64, u64)>>);

impl Arrivals {
    fn push(&mut self, entry: (i64, u64)) {
        match self.0.back_mut() {
            Some(block) if block.len() < BLOCK => block.push_back(entry),
            _ => {
                let mut block = VecDeque::with_capacity(BLOCK);
                block.push_back(entry);
                self.0.push_back(block);
            }
        }
    }

    fn front(&self) -> Option<(i64, u64)> {
        self.0.front().and_then(|b| b.front().copied())
    }

    fn pop_front(&mut self) {
        if let Some(block) = self.0.front_mut() {
            block.pop_front();
            if block.is_empty() {
                self.0.pop_front();
            }
        }
    }
}

impl Recent {
    fn fingerprint(&self, consumer_id: i64, nonce: &str) -> u64 {
        self.key.hash_one((consumer_id, nonce))
    }

    fn shard(
        &mut self,
        fingerprint: u64,
    ) -> &mut HashMap<u64, i64, BuildHasherDefault<Fingerprint>> {
        &mut self.seen[(fingerprint >> 56) as usize % SHARDS]
    }

    /// Whether a nonce with this fingerprint is used.
    fn contains(&mut self, fingerprint: u64) -> bool {
        self.shard(fingerprint).contains_key(&fingerprint)
    }

    /// Reads what the log holds within the window: one read transaction, the log's rows up to
    /// its last `seq` at that moment.
    fn load(conn: &rusqlite::Connection, window: u64) -> rusqlite::Result<Self> {
        let keep = keep_seconds(window);
        let mut recent = Self {
            key: RandomState::new(),
            seen: (0..SHARDS).map(|_| HashMap::default()).collect(),
            order: Arrivals::default(),
            seq: 0,
            cutoff: crate::clock::now().saturating_sub(keep),
            keep,
        };
        conn.execute_batch("BEGIN")?;
        let loaded = recent.read_log(conn);
        conn.execute_batch(if loaded.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
        loaded.map(|()| recent)
    }

    fn read_log(&mut self, conn: &rusqlite::Connection) -> rusqlite::Result<()> {
        self.seq = conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM oauth_nonce", [], |r| {
            r.get(0)
        })?;
        let mut rows = conn.prepare(
            "SELECT consumer_id, nonce, timestamp FROM oauth_nonce
             WHERE timestamp >= ?1 AND seq <= ?2 ORDER BY timestamp",
        )?;
        let mut rows = rows.query((self.cutoff, self.seq))?;
        while let Some(row) = rows.next()? {
            self.add_row(row)?;
        }
        Ok(())
    }

    /// Reads the rows other processes appended since the last batch (within its write lock).
    /// A log whose newest row is older than the last one read lost rows this writer had read
    /// (the file was replaced, or its rows deleted by hand; the cleanup keeps the newest): it
    /// is read afresh, since new rows may now reuse the sequence numbers already passed.
    fn catch_up(&mut self, conn: &rusqlite::Connection) -> rusqlite::Result<()> {
        let newest: i64 = conn
            .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM oauth_nonce")?
            .query_row([], |r| r.get(0))?;
        if newest < self.seq {
            self.seen.iter_mut().for_each(HashMap::clear);
            self.order = Arrivals::default();
            return self.read_log(conn);
        }
        if newest == self.seq {
            return Ok(());
        }
        let mut rows = conn.prepare_cached(
            "SELECT consumer_id, nonce, timestamp, seq FROM oauth_nonce WHERE seq > ?1",
        )?;
        let mut rows = rows.query([self.seq])?;
        while let Some(row) = rows.next()? {
            self.add_row(row)?;
            self.seq = self.seq.max(row.get(3)?);
        }
        Ok(())
    }

    /// A log row read as `consumer_id, nonce, timestamp`.
    fn add_row(&mut self, row: &rusqlite::Row<'_>) -> rusqlite::Result<()> {
        let nonce: String = row.get(1)?;
        self.add(self.fingerprint(row.get(0)?, &nonce), row.get(2)?);
        Ok(())
    }

    fn add(&mut self, fingerprint: u64, timestamp: i64) {
        if timestamp < self.cutoff {
            return;
        }
        let latest = self
            .shard(fingerprint)
            .entry(fingerprint)
            .or_insert(timestamp);
        *latest = (*latest).max(timestamp);
        self.order.push((timestamp, fingerprint));
    }

    /// Forgets the nonces whose timestamp left the window.
    fn expire(&mut self, now: i64) {
        self.cutoff = now.saturating_sub(self.keep);
        while let Some((timestamp, fingerprint)) = self.order.front() {
            if timestamp >= self.cutoff {
                break;
            }
            self.order.pop_front();
            // Seen again later with a newer timestamp: that entry forgets it.
            let shard = self.shard(fingerprint);
            if shard.get(&fingerprint) == Some(&timestamp) {
                shard.remove(&fingerprint);
            }
        }
    }
}

/// The SQLite writer thread: waits for a nonce, takes every other one waiting, and decides and
/// writes them in one immediate transaction (a nonce of a consumer deleted meanwhile is
/// answered "used" and not written, so that it cannot fail the others' commit).
///
/// Under load (the last commit held more than one nonce, or more than one is waiting) it
/// first sleeps `nonce_commit_delay`, so that the nonces of the requests in flight join this
/// commit: a commit (locks, WAL frames, the WAL index) costs several times one more row, and
/// with every request waiting for its own commit the writer would otherwise wake for a few
/// nonces at a time. Sleeping, it is not woken by each new nonce. A lone request never waits.
///
/// Any failure drops the connection and what it knew: the next batch opens the file again and
/// reads the log afresh (the file may have been replaced).
fn sqlite_writer(
    file: &SqliteFile,
    window: u64,
    rx: std::sync::mpsc::Receiver<Pending>,
    stats: &NonceStats,
) {
    let mut state: Option<(rusqlite::Connection, Recent)> = None;
    let mut last_batch = 0;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        take_waiting(&rx, &mut batch);
        if !file.nonce_commit_delay.is_zero() && (last_batch > 1 || batch.len() > 1) {
            std::thread::sleep(file.nonce_commit_delay);
            take_waiting(&rx, &mut batch);
        }
        last_batch = batch.len();
        if state.is_none() {
            let opened = open_sqlite(&file.path, file.busy_timeout)
                .and_then(|conn| Recent::load(&conn, window).map(|recent| (conn, recent)));
            match opened {
                Ok(s) => state = Some(s),
                Err(e) => {
                    fail(batch, format!("cannot read {}: {e}", file.path.display()));
                    continue;
                }
            }
        }
        let (conn, recent) = state.as_mut().expect("opened above");
        match decide_sqlite(conn, recent, &batch) {
            Ok(fresh) => {
                stats.committed(fresh.iter().filter(|f| **f).count());
                for (p, new) in batch.into_iter().zip(fresh) {
                    let _ = p.reply.send(Ok(new));
                }
            }
            Err(e) => {
                state = None;
                fail(batch, e.to_string());
            }
        }
    }
}

/// One batch under the write lock: catch up with the log, decide each nonce, append the new
/// ones, commit. On an error the caller drops the connection (which rolls back) and `recent`.
fn decide_sqlite(
    conn: &mut rusqlite::Connection,
    recent: &mut Recent,
    batch: &[Pending],
) -> rusqlite::Result<Vec<bool>> {
    // Statements prepared once per connection, the transaction's own included: parsing
    // `BEGIN` and `COMMIT` again cost as much as a few rows.
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    recent.expire(crate::clock::now());
    recent.catch_up(conn)?;
    let fresh = append_new(conn, recent, batch)?;
    conn.prepare_cached("COMMIT")?.execute([])?;
    Ok(fresh)
}

/// Appends the batch's new nonces to the log. Whether each consumer still exists is read
/// once (the transaction holds the write lock, so none is deleted meanwhile).
fn append_new(
    conn: &rusqlite::Connection,
    recent: &mut Recent,
    batch: &[Pending],
) -> rusqlite::Result<Vec<bool>> {
    let mut consumers: Vec<(i64, bool)> = Vec::new();
    let mut exists = conn.prepare_cached("SELECT 1 FROM oauth_consumer WHERE id = ?1")?;
    let mut fresh = Vec::with_capacity(batch.len());
    let mut new = Vec::with_capacity(batch.len());
    for p in batch {
        let fingerprint = recent.fingerprint(p.consumer_id, &p.nonce);
        if recent.contains(fingerprint) {
            fresh.push(false);
            continue;
        }
        let live = match consumers.iter().find(|(id, _)| *id == p.consumer_id) {
            Some((_, live)) => *live,
            None => {
                let live = exists.exists([p.consumer_id])?;
                consumers.push((p.consumer_id, live));
                live
            }
        };
        if live {
            // Known at once, so that the same nonce later in the batch is refused; on an
            // error the caller forgets everything `recent` holds.
            recent.add(fingerprint, p.timestamp);
            new.push(p);
        }
        fresh.push(live);
    }
    if !new.is_empty() {
        insert_rows(conn, &new)?;
        // The rows of one transaction holding the write lock are numbered one after another.
        recent.seq = conn.last_insert_rowid();
    }
    Ok(fresh)
}

/// Rows per `INSERT` statement at most (a power of two).
const INSERT_ROWS: usize = 64;

/// `INSERT INTO oauth_nonce ... VALUES` with 1, 2, 4 ... [`INSERT_ROWS`] rows.
static INSERTS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    std::iter::successors(Some(1_usize), |n| (*n < INSERT_ROWS).then_some(n * 2))
        .map(|n| {
            let rows = vec!["(?, ?, ?)"; n].join(", ");
            format!("INSERT INTO oauth_nonce (nonce, timestamp, consumer_id) VALUES {rows}")
        })
        .collect()
});

/// Appends rows in a few multi-row statements (the largest that fit, by powers of two): each
/// statement run costs about as much as a row inserted.
fn insert_rows(conn: &rusqlite::Connection, rows: &[&Pending]) -> rusqlite::Result<()> {
    let mut rest = rows;
    while !rest.is_empty() {
        let log2 = rest.len().min(INSERT_ROWS).ilog2();
        let n = 1_usize << log2;
        let mut insert = conn.prepare_cached(&INSERTS[log2 as usize])?;
        for (i, p) in rest[..n].iter().enumerate() {
            insert.raw_bind_parameter(3 * i + 1, p.nonce.as_str())?;
            insert.raw_bind_parameter(3 * i + 2, p.timestamp)?;
            insert.raw_bind_parameter(3 * i + 3, p.consumer_id)?;
        }
        insert.raw_execute()?;
        rest = &rest[n..];
    }
    Ok(())
}

/// The PostgreSQL writer task, with a connection of its own (outside the pool, so closing the
/// pool does not wait for it).
async fn postgres_writer(
    store: Store,
    keep: i64,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Pending>,
    stats: Arc<NonceStats>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut conn: Option<sqlx::PgConnection> = None;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut unique = dedupe(std::mem::take(&mut batch));
        // In key order, so that two processes inserting overlapping batches take the rows'
        // locks in one order and cannot deadlock.
        unique.sort_unstable_by(|a, b| (a.consumer_id, &a.nonce).cmp(&(b.consumer_id, &b.nonce)));
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
        match insert_postgres(c, &unique, crate::clock::now().saturating_sub(keep)).await {
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
/// aggregated in one row. A nonce last used with a timestamp before `cutoff` (out of the
/// window, not yet cleaned up) is new again, as on SQLite: its row takes the new timestamp.
async fn insert_postgres(
    conn: &mut sqlx::PgConnection,
    batch: &[Pending],
    cutoff: i64,
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
             ON CONFLICT (consumer_id, nonce) DO UPDATE SET timestamp = EXCLUDED.timestamp
                 WHERE oauth_nonce.timestamp < $4
             RETURNING consumer_id, nonce)
         SELECT COALESCE(array_agg(consumer_id), '{}'), COALESCE(array_agg(nonce), '{}')
         FROM ins",
    )
    .bind(nonces)
    .bind(timestamps)
    .bind(consumers)
    .bind(cutoff)
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
        sqlite_store_with(dir, &DatabaseSettings::default()).await
    }

    async fn sqlite_store_with(dir: &Path, settings: &DatabaseSettings) -> Store {
        let url = DatabaseUrl::Sqlite(dir.join("nonces.sqlite"));
        let store = Store::connect(&url, settings)
            .await
            .expect("the database opens");
        store.migrate().await.expect("migrations run");
        store
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    }

    /// Each nonce is new once per consumer: a copy in the same batch and a nonce used before
    /// are both answered "used", whichever commit they land in; the counters follow.
    #[test]
    fn a_nonce_is_new_once() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        runtime().block_on(async {
            let store = sqlite_store(dir.path()).await;
            let consumer = store
                .insert_consumer("c", "k", b"sealed")
                .await
                .expect("a consumer")
                .id;
            let writer = NonceWriter::spawn(store, 600);
            let now = crate::clock::now();
            let answers = record_at_once(&writer, consumer, &["a", "b", "c", "a", "d"], now).await;
            assert_eq!(answers, [true, true, true, false, true]);
            let batches = writer.stats().batches();
            assert!((1..=5).contains(&batches), "{batches} commits");
            assert_eq!(writer.stats().nonces(), 4);
            // Used before, even with another timestamp within the window.
            assert!(!writer.record(consumer, "b", now).await.expect("recorded"));
            assert!(
                !writer
                    .record(consumer, "b", now - 300)
                    .await
                    .expect("recorded")
            );
            assert!(writer.record(consumer, "e", now).await.expect("recorded"));
            // Another consumer's nonces are its own.
            let other = store_consumer(dir.path(), "o").await;
            assert!(writer.record(other, "a", now).await.expect("recorded"));
            // A consumer deleted meanwhile: refused, and the batch it is in still commits.
            assert!(
                !writer
                    .record(consumer + 1000, "f", now)
                    .await
                    .expect("recorded")
            );
            assert_eq!(writer.stats().batches(), batches + 5);
            assert_eq!(writer.stats().nonces(), 6);
        });
    }

    /// Records every nonce from its own task, all waiting at once (so in few batches), and
    /// gives the answers in the nonces' order.
    async fn record_at_once(
        writer: &NonceWriter,
        consumer: i64,
        nonces: &[impl AsRef<str>],
        now: i64,
    ) -> Vec<bool> {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let tasks: Vec<_> = nonces
                    .iter()
                    .map(|nonce| {
                        let (w, nonce) = (writer.clone(), nonce.as_ref().to_owned());
                        tokio::task::spawn_local(async move {
                            w.record(consumer, &nonce, now).await.expect("recorded")
                        })
                    })
                    .collect();
                let mut answers = Vec::new();
                for t in tasks {
                    answers.push(t.await.expect("the task ends"));
                }
                answers
            })
            .await
    }

    async fn store_consumer(dir: &Path, key: &str) -> i64 {
        sqlite_store(dir)
            .await
            .insert_consumer(key, key, b"sealed")
            .await
            .expect("a consumer")
            .id
    }

    /// Two writers on one file, as two server processes: a nonce either one took is used for
    /// the other, and for a writer started later (a restart) that reads the log afresh.
    #[test]
    fn writers_on_one_file_agree() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        runtime().block_on(async {
            let consumer = store_consumer(dir.path(), "c").await;
            let a = NonceWriter::spawn(sqlite_store(dir.path()).await, 600);
            let b = NonceWriter::spawn(sqlite_store(dir.path()).await, 600);
            let now = crate::clock::now();
            for i in 0..50 {
                let nonce = format!("n{i}");
                let (first, second) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
                assert!(first.record(consumer, &nonce, now).await.expect("recorded"));
                assert!(
                    !second
                        .record(consumer, &nonce, now)
                        .await
                        .expect("recorded")
                );
                assert!(!first.record(consumer, &nonce, now).await.expect("recorded"));
            }
            // Both at once, many times: exactly one of each pair is new.
            for i in 0..50 {
                let nonce = format!("both{i}");
                let (x, y) = tokio::join!(
                    a.record(consumer, &nonce, now),
                    b.record(consumer, &nonce, now)
                );
                assert_eq!(
                    u8::from(x.expect("recorded")) + u8::from(y.expect("recorded")),
                    1,
                    "{nonce}"
                );
            }
            let later = NonceWriter::spawn(sqlite_store(dir.path()).await, 600);
            assert!(!later.record(consumer, "n7", now).await.expect("recorded"));
            assert!(
                !later
                    .record(consumer, "both3", now)
                    .await
                    .expect("recorded")
            );
            assert!(later.record(consumer, "new", now).await.expect("recorded"));
            assert!(!a.record(consumer, "new", now).await.expect("recorded"));
        });
    }

    /// The log's rows, as (seq, nonce) in `seq` order.
    fn log_rows(dir: &Path) -> Vec<(i64, String)> {
        let conn = rusqlite::Connection::open(dir.join("nonces.sqlite")).expect("the file opens");
        let mut rows = conn
            .prepare("SELECT seq, nonce FROM oauth_nonce ORDER BY seq")
            .expect("a query");
        rows.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("the rows")
            .collect::<Result<_, _>>()
            .expect("read")
    }

    /// Many nonces at once go into the log in multi-row inserts of every size, numbered one
    /// after another in the order they were decided; copies within them are refused.
    #[test]
    fn a_large_batch_is_appended_in_order() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        runtime().block_on(async {
            let consumer = store_consumer(dir.path(), "c").await;
            let writer = NonceWriter::spawn(sqlite_store(dir.path()).await, 600);
            let now = crate::clock::now();
            let nonces: Vec<String> = (0..300).map(|i| format!("n{}", i % 255)).collect();
            let answers = record_at_once(&writer, consumer, &nonces, now).await;
            let new: Vec<&String> = nonces
                .iter()
                .zip(&answers)
                .filter_map(|(n, new)| new.then_some(n))
                .collect();
            assert_eq!(new.len(), 255);
            // All were waiting at once: a few batches, so multi-row inserts of many sizes.
            assert!(
                writer.stats().batches() < 50,
                "{} batches",
                writer.stats().batches()
            );
            assert!(answers[..255].iter().all(|new| *new));
            let rows = log_rows(dir.path());
            assert_eq!(rows.len(), 255);
            for (i, ((seq, nonce), expected)) in rows.iter().zip(&new).enumerate() {
                assert_eq!(*seq, i as i64 + 1);
                assert_eq!(nonce, *expected);
            }
            // Another process reads them all from the log.
            let other = NonceWriter::spawn(sqlite_store(dir.path()).await, 600);
            for nonce in &new {
                assert!(!other.record(consumer, nonce, now).await.expect("recorded"));
            }
        });
    }

    /// The cleanup leaves the newest row, so a new row never takes a number a writer has
    /// read; and a writer that finds the log behind what it read (its rows deleted by hand)
    /// reads it afresh instead of missing what others append under the old numbers.
    #[test]
    fn sequence_numbers_are_never_reused_unseen() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        runtime().block_on(async {
            let store = sqlite_store(dir.path()).await;
            let consumer = store_consumer(dir.path(), "c").await;
            let a = NonceWriter::spawn(sqlite_store(dir.path()).await, 600);
            let b = NonceWriter::spawn(sqlite_store(dir.path()).await, 600);
            let now = crate::clock::now();
            for i in 0..5 {
                assert!(
                    a.record(consumer, &format!("a{i}"), now - 700)
                        .await
                        .expect("recorded")
                );
            }
            assert_eq!(store.delete_nonces_before(now).await.expect("cleaned"), 4);
            assert_eq!(log_rows(dir.path()), [(5, "a4".to_owned())]);
            assert!(b.record(consumer, "b0", now).await.expect("recorded"));
            assert_eq!(log_rows(dir.path())[1], (6, "b0".to_owned()));
            assert!(!a.record(consumer, "b0", now).await.expect("recorded"));

            raw_delete_all(dir.path());
            assert!(b.record(consumer, "b1", now).await.expect("recorded"));
            assert_eq!(log_rows(dir.path()), [(1, "b1".to_owned())]);
            assert!(!a.record(consumer, "b1", now).await.expect("recorded"));
            assert!(a.record(consumer, "a5", now).await.expect("recorded"));
            assert!(!b.record(consumer, "a5", now).await.expect("recorded"));
        });
    }

    /// Migration 0006 keeps every row of the log with its number, and what it removes is gone:
    /// AUTOINCREMENT, the foreign key and the consumer index.
    #[test]
    fn the_plain_log_migration_keeps_the_rows() {
        let conn = rusqlite::Connection::open_in_memory().expect("a database");
        for sql in [
            include_str!("migrations/sqlite/0001_initial.sql"),
            include_str!("migrations/sqlite/0002_integration_config_hash.sql"),
            include_str!("migrations/sqlite/0003_cron_schedule.sql"),
            include_str!("migrations/sqlite/0004_admin_session.sql"),
            include_str!("migrations/sqlite/0005_nonce_log.sql"),
        ] {
            conn.execute_batch(sql).expect("an earlier migration");
        }
        conn.execute_batch(
            "INSERT INTO oauth_consumer (name, key, secret, created_at, updated_at)
                 VALUES ('c', 'k', x'00', 0, 0);
             INSERT INTO oauth_nonce (nonce, timestamp, consumer_id) VALUES
                 ('a', 10, 1), ('b', 20, 1), ('c', 30, 1), ('d', 40, 1);
             DELETE FROM oauth_nonce WHERE nonce = 'b';",
        )
        .expect("rows");
        conn.execute_batch(include_str!("migrations/sqlite/0006_nonce_log_plain.sql"))
            .expect("migration 0006");
        let rows: Vec<(i64, String, i64, i64)> = conn
            .prepare("SELECT seq, nonce, timestamp, consumer_id FROM oauth_nonce ORDER BY seq")
            .expect("a query")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("read");
        let expected = [(1, "a", 10), (3, "c", 30), (4, "d", 40)]
            .map(|(seq, nonce, ts)| (seq, nonce.to_owned(), ts, 1));
        assert_eq!(rows, expected);
        let schema: Vec<String> = conn
            .prepare("SELECT sql FROM sqlite_master WHERE tbl_name = 'oauth_nonce'")
            .expect("a query")
            .query_map([], |r| r.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("read");
        assert_eq!(schema.len(), 2, "{schema:?}");
        let schema = schema.join("\n");
        for gone in ["AUTOINCREMENT", "REFERENCES", "oauth_nonce_consumer"] {
            assert!(!schema.contains(gone), "{schema}");
        }
        assert!(schema.contains("oauth_nonce_timestamp"), "{schema}");
    }

    fn raw_delete_all(dir: &Path) {
        rusqlite::Connection::open(dir.join("nonces.sqlite"))
            .expect("the file opens")
            .execute("DELETE FROM oauth_nonce", [])
            .expect("deleted");
    }

    /// The writer waits for a lock another connection holds, up to the busy timeout, and
    /// gives up after it (answering an error, not "used"); once the lock is free it goes on.
    #[test]
    fn the_writer_waits_for_the_lock_up_to_the_busy_timeout() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        runtime().block_on(async {
            let consumer = store_consumer(dir.path(), "c").await;
            let settings = DatabaseSettings {
                sqlite_busy_timeout_ms: 300,
                ..DatabaseSettings::default()
            };
            let writer = NonceWriter::spawn(sqlite_store_with(dir.path(), &settings).await, 600);
            let now = crate::clock::now();
            assert!(
                writer
                    .record(consumer, "first", now)
                    .await
                    .expect("recorded")
            );
            let holder = rusqlite::Connection::open(dir.path().join("nonces.sqlite"))
                .expect("another connection");
            // Held for less than the timeout: the writer waits, then records.
            holder.execute_batch("BEGIN IMMEDIATE").expect("the lock");
            let release = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                holder.execute_batch("COMMIT").expect("released");
                holder
            });
            assert!(
                writer
                    .record(consumer, "waited", now)
                    .await
                    .expect("recorded")
            );
            let holder = release.join().expect("the releasing thread");
            // Held for longer: an error, and the next nonce after the release is recorded.
            holder.execute_batch("BEGIN IMMEDIATE").expect("the lock");
            let started = std::time::Instant::now();
            assert!(writer.record(consumer, "refused", now).await.is_err());
            assert!(started.elapsed() >= Duration::from_millis(300));
            holder.execute_batch("COMMIT").expect("released");
            assert!(
                writer
                    .record(consumer, "refused", now)
                    .await
                    .expect("recorded")
            );
        });
    }

    /// The arrival queue keeps its order across blocks and lets go of each emptied block.
    #[test]
    fn arrivals_keep_their_order_across_blocks() {
        let mut arrivals = Arrivals::default();
        let n = (BLOCK * 2 + 7) as i64;
        for i in 0..n {
            arrivals.push((i, i as u64));
        }
        assert_eq!(arrivals.0.len(), 3);
        for i in 0..n {
            assert_eq!(arrivals.front(), Some((i, i as u64)));
            arrivals.pop_front();
        }
        assert_eq!(arrivals.front(), None);
        assert!(arrivals.0.is_empty());
    }

    /// A nonce is remembered while a request carrying its timestamp could still pass the
    /// timestamp check, and then forgotten: memory holds the window, not the whole log.
    #[test]
    fn a_nonce_is_forgotten_once_its_timestamp_left_the_window() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        runtime().block_on(async {
            let consumer = store_consumer(dir.path(), "c").await;
            let writer = NonceWriter::spawn(sqlite_store(dir.path()).await, 600);
            let now = crate::clock::now();
            let old = now - 600 - MARGIN_SECONDS - 5;
            assert!(writer.record(consumer, "old", old).await.expect("recorded"));
            assert!(
                writer
                    .record(consumer, "edge", now - 600)
                    .await
                    .expect("recorded")
            );
            // The next batch forgets what is out of the window, and a fresh writer never
            // reads it; both still know the nonce at the edge.
            assert!(writer.record(consumer, "old", now).await.expect("recorded"));
            assert!(
                !writer
                    .record(consumer, "edge", now)
                    .await
                    .expect("recorded")
            );
            let later = NonceWriter::spawn(sqlite_store(dir.path()).await, 600);
            assert!(!later.record(consumer, "edge", now).await.expect("recorded"));
            assert!(!later.record(consumer, "old", now).await.expect("recorded"));
        });
    }
}
