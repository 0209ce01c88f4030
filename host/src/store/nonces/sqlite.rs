//! The SQLite writer: a thread with a direct connection, the nonces of the window kept in
//! memory as keyed fingerprints ([`Recent`]), each batch decided and appended to the log under
//! the database's write lock.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::path::PathBuf;
use std::time::Duration;

use super::answer::Answers;
use super::batch::{MAX_BATCH, NonceStats, Pending, fail, keep_seconds};
use crate::store::{SqliteFile, StoreError, checkpoint};

thread_local! {
    /// The SQLite writer thread's busy timeout, and when its current wait for the lock began.
    static BUSY: std::cell::Cell<(Duration, Option<std::time::Instant>)> =
        const { std::cell::Cell::new((Duration::ZERO, None)) };
}

/// Waits for a locked database in steps of 100 µs, up to the busy timeout. SQLite's own busy
/// timeout sleeps 1, 2, 5, 10, 15, 20, 25 ... ms between tries: a writer that found the lock
/// taken for a moment (a cleanup job's delete) slept on for milliseconds after it was free,
/// with every signed request waiting on it.
pub(super) fn wait_for_lock(attempt: i32) -> bool {
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
pub(super) fn open_sqlite(
    path: &PathBuf,
    busy: Duration,
) -> rusqlite::Result<rusqlite::Connection> {
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
    // Its commits never copy the log into the file (see `store::checkpoint`), save the tail
    // the checkpointer leaves it: it notes the log's length after each commit for that (the
    // hook replaces SQLite's own automatic checkpoint, so it comes after turning that off).
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    checkpoint::count_frames(&conn);
    Ok(conn)
}

/// Moves every waiting nonce into `batch`, up to [`MAX_BATCH`].
pub(super) fn take_waiting(rx: &std::sync::mpsc::Receiver<Pending>, batch: &mut Vec<Pending>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(p) => batch.push(p),
            Err(_) => break,
        }
    }
}

/// Hashes a fingerprint, which is already a keyed hash, by one multiplication: its top bits
/// choose the shard, so the map must see them mixed into the bits it uses.
#[derive(Debug, Default)]
pub(super) struct Fingerprint(u64);

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
pub(super) struct Recent {
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
pub(super) const SHARDS: usize = 256;

/// Entries per block of [`Arrivals`].
pub(super) const BLOCK: usize = 4096;

/// A queue in blocks of [`BLOCK`] entries: growing never copies what it holds.
#[derive(Debug, Default)]
pub(super) struct Arrivals(VecDeque<VecDeque<(i64, u64)>>);

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
        // Two ranges of the table's own key: the rows numbered before migration 0015 (all of
        // them: their numbers say nothing of their time), and the timed rows from the cutoff
        // on (one below it has a timestamp before it, see [`next_seq`]).
        let mut rows = conn.prepare(
            "SELECT consumer_id, nonce, timestamp FROM oauth_nonce
             WHERE seq >= ?1 AND seq <= ?2 AND timestamp >= ?3",
        )?;
        let timed = self.cutoff.saturating_mul(MICROS).max(TIMED_FROM);
        for (from, to) in [(0, TIMED_FROM - 1), (timed, self.seq)] {
            let mut rows = rows.query((from, to.min(self.seq), self.cutoff))?;
            while let Some(row) = rows.next()? {
                self.add_row(row)?;
            }
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
pub(super) fn writer(
    file: &SqliteFile,
    window: u64,
    rx: std::sync::mpsc::Receiver<Pending>,
    stats: &NonceStats,
) {
    let open = || {
        open_sqlite(&file.path, file.busy_timeout)
            .and_then(|conn| Recent::load(&conn, window).map(|recent| (conn, recent)))
    };
    // The log is read at once, not when the first signed request waits for it (with a few
    // million recent nonces that takes a second); a failure here is tried again, and reported,
    // with the first batch.
    let mut state: Option<(rusqlite::Connection, Recent)> = open().ok();
    let mut last_batch = 0;
    let mut tail_copies = checkpoint::TailCopies::default();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        take_waiting(&rx, &mut batch);
        if !file.nonce_commit_delay.is_zero() && (last_batch > 1 || batch.len() > 1) {
            std::thread::sleep(file.nonce_commit_delay);
            take_waiting(&rx, &mut batch);
        }
        last_batch = batch.len();
        if state.is_none() {
            match open() {
                Ok(s) => state = Some(s),
                Err(e) => {
                    fail(batch, StoreError::Direct(e));
                    continue;
                }
            }
        }
        let (conn, recent) = state.as_mut().expect("opened above");
        match decide_sqlite(conn, recent, &batch) {
            Ok(fresh) => {
                stats.committed(fresh.iter().filter(|f| **f).count());
                let mut answers = Answers::default();
                for (p, new) in batch.into_iter().zip(fresh) {
                    answers.send(p.reply, Ok(new));
                }
                drop(answers);
                tail_copies.after_batch(&file.log_tail, conn);
            }
            Err(e) => {
                state = None;
                fail(batch, e.into());
            }
        }
    }
}

/// One batch under the write lock: catch up with the log, decide each nonce, append the new
/// ones, commit. On an error the caller drops the connection (which rolls back) and `recent`.
pub(super) fn decide_sqlite(
    conn: &mut rusqlite::Connection,
    recent: &mut Recent,
    batch: &[Pending],
) -> rusqlite::Result<Vec<bool>> {
    // Statements prepared once per connection, the transaction's own included: parsing
    // `BEGIN` and `COMMIT` again cost as much as a few rows.
    let started = std::time::Instant::now();
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let locked = started.elapsed();
    recent.expire(crate::clock::now());
    recent.catch_up(conn)?;
    let caught_up = started.elapsed();
    let fresh = append_new(conn, recent, batch)?;
    let appended = started.elapsed();
    conn.prepare_cached("COMMIT")?.execute([])?;
    let took = started.elapsed();
    if took > SLOW_BATCH {
        let us = |d: std::time::Duration| d.as_micros() as u64;
        tracing::debug!(
            nonces = batch.len(),
            lock_us = us(locked),
            catch_up_us = us(caught_up - locked),
            append_us = us(appended - caught_up),
            commit_us = us(took - appended),
            "slow nonce batch"
        );
    }
    Ok(fresh)
}

/// A batch that takes longer than this is logged (at debug level), with where its time went.
const SLOW_BATCH: Duration = Duration::from_millis(5);

/// Appends the batch's new nonces to the log. Whether each consumer still exists is read
/// once (the transaction holds the write lock, so none is deleted meanwhile).
pub(super) fn append_new(
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
        // Under the write lock and level with the log, `recent.seq` is the log's largest.
        recent.seq = insert_rows(conn, &new, recent.seq, crate::clock::now_us())?;
    }
    Ok(fresh)
}

/// Microseconds in a second.
const MICROS: i64 = 1_000_000;

/// Every `seq` [`next_seq`] gives is above this (2001-09-09, in microseconds); the rows below
/// it were numbered one after another from 1, before migration 0015, and the nonce cleanup
/// removes them like any other once they are out of the window.
const TIMED_FROM: i64 = 1_000_000_000_000_000;

/// The `seq` of the first row of a commit appended after `last` at `now_us`, whose rows'
/// timestamps (seconds) are at most `timestamp`: the microsecond of its arrival or of the
/// latest timestamp, whichever is later, and above `last`; the commit's other rows follow it
/// one by one. So a row whose `seq` is below a time in microseconds has a timestamp before
/// that time: the nonce cleanup and the start-up read find their rows by a range of the
/// table's own key, and the log needs no index on the timestamp (which cost every commit a
/// B-tree of random pages, and signed requests a few per cent of their throughput). A client's
/// timestamp ahead of the clock (by up to the window) moves the numbers ahead for as long:
/// the rows then wait up to a window longer for the cleanup, which only keeps them longer.
pub(super) fn next_seq(last: i64, now_us: i64, timestamp: i64) -> i64 {
    last.saturating_add(1)
        .max(now_us)
        .max(timestamp.saturating_mul(MICROS))
}

/// Rows per `INSERT` statement at most (a power of two).
pub(super) const INSERT_ROWS: usize = 64;

/// `INSERT INTO oauth_nonce ... VALUES` with 1, 2, 4 ... [`INSERT_ROWS`] rows.
pub(super) static INSERTS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    std::iter::successors(Some(1_usize), |n| (*n < INSERT_ROWS).then_some(n * 2))
        .map(|n| {
            let rows = vec!["(?, ?, ?, ?)"; n].join(", ");
            format!("INSERT INTO oauth_nonce (seq, nonce, timestamp, consumer_id) VALUES {rows}")
        })
        .collect()
});

/// Appends rows after `last` in a few multi-row statements (the largest that fit, by powers of
/// two: each statement run costs about as much as a row inserted), numbered from
/// [`next_seq`] on. Returns the last row's `seq`.
pub(super) fn insert_rows(
    conn: &rusqlite::Connection,
    rows: &[&Pending],
    last: i64,
    now_us: i64,
) -> rusqlite::Result<i64> {
    let latest = rows.iter().map(|p| p.timestamp).max().unwrap_or(0);
    // The first row's number is given; the others' are left to SQLite (NULL: the largest plus
    // one), which appends them without first looking each number up.
    let mut first = Some(next_seq(last, now_us, latest));
    let mut rest = rows;
    while !rest.is_empty() {
        let log2 = rest.len().min(INSERT_ROWS).ilog2();
        let n = 1_usize << log2;
        let mut insert = conn.prepare_cached(&INSERTS[log2 as usize])?;
        for (i, p) in rest[..n].iter().enumerate() {
            insert.raw_bind_parameter(4 * i + 1, first.take())?;
            insert.raw_bind_parameter(4 * i + 2, p.nonce.as_str())?;
            insert.raw_bind_parameter(4 * i + 3, p.timestamp)?;
            insert.raw_bind_parameter(4 * i + 4, p.consumer_id)?;
        }
        insert.raw_execute()?;
        rest = &rest[n..];
    }
    Ok(conn.last_insert_rowid())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
