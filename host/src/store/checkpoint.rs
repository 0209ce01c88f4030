//! SQLite's write-ahead log copied back into the database file by a thread of its own, never by
//! a commit.
//!
//! Left to itself, SQLite checkpoints on the connection whose commit took the log past 1,000
//! pages: that commit then copies thousands of pages and syncs the file before it returns. When
//! it is the nonce writer's, every signed request waiting on that commit waits for the copy too;
//! while a cleanup job deletes millions of rows, the log fills within a second and the signed
//! requests' p99 rose fourfold. Every connection of a [`super::Store`] on SQLite therefore has
//! `wal_autocheckpoint = 0`, and [`Checkpointer`] runs a `PASSIVE` checkpoint every
//! [`INTERVAL`] on a connection of its own: it copies what no reader still needs, never waits
//! for a lock, and never holds up a writer. Each process on the file runs one (the server, a
//! `cron run`); two at once simply take turns. The last connection to close checkpoints as
//! SQLite always does.
//!
//! A log is only started afresh (written again from its beginning) by a write that begins when
//! every frame in it has been copied. Under steady signed traffic the nonce writer commits every
//! millisecond or so, so a checkpoint on another thread never saw the log's end: the log grew by
//! about 28 MB a second (284 MB after a 10-second benchmark round), and once the machine had
//! dropped its older pages from memory, writing the log again from its start read each block back
//! from disk first (a third of the nonce writer's time, in `ext4_block_write_begin`). So each
//! run records in [`LogTail`] how far it copied when it copied every frame it saw, and the nonce
//! writer, after answering its next batch, copies the few frames written since on its own
//! connection ([`TailCopies`]): its next write then starts the log afresh. It does so at most
//! once every [`TAIL_EVERY`] (the copy syncs both files: 2-5 ms), and only when at most
//! [`MAX_TAIL_FRAMES`] came after the run (it learns the log's length from SQLite's WAL hook on
//! each commit), and only when other connections committed at most [`MAX_OTHER_COMMITS`] times
//! since the last one (SQLite's `data_version`, read after each batch): while another process
//! writes a lot (a cleanup job deleting a million tokens), the copy syncs that process's writes
//! too and took 9-45 ms, with every signed request waiting (their p99 rose from 6-8 ms to
//! 8-10 ms). A copy slower than [`SLOW_TAIL`] all the same doubles the time to the next. The
//! log's file keeps its largest size, as SQLite's default is: cutting it back
//! (`journal_size_limit`) cost the commit that did it 27-36 ms.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the log is checkpointed. A checkpoint with nothing to copy reads the log's index
/// and returns; one with pages to copy syncs the database file once.
pub(super) const INTERVAL: Duration = Duration::from_millis(100);

/// A checkpointer's run that takes longer than this is logged (at debug level).
const SLOW: Duration = Duration::from_millis(5);

/// How often the nonce writer copies the log's tail at most: each copy syncs the log and the
/// file (2-5 ms while signed requests wait), and a second of the writer's commits is a log of
/// about 30 MB, which the machine still holds in memory when it is written again.
const TAIL_EVERY: Duration = Duration::from_secs(1);

/// A tail copy slower than this (the disk busy with another process's writes, as a cleanup
/// job's: 12-46 ms measured) doubles the time to the next one, up to [`MAX_TAIL_WAIT`].
const SLOW_TAIL: Duration = Duration::from_millis(10);

/// The longest time between two tail copies after slow ones.
const MAX_TAIL_WAIT: Duration = Duration::from_secs(32);

/// The most frames the nonce writer copies as a tail: a few milliseconds of its own commits
/// are a few dozen. A longer tail means another process is writing a lot (a cleanup job), and
/// copying it would hold up signed requests for tens of milliseconds.
const MAX_TAIL_FRAMES: i64 = 256;

/// The most batches after which the nonce writer saw another connection's commit, since the
/// previous tail copy (or skipped one), for the next copy to run: a few writes a second (tokens
/// issued, an admin's changes) leave it be; a bulk writer commits hundreds of times a second
/// (a cleanup job's batches: about 300).
const MAX_OTHER_COMMITS: u32 = 20;

/// Where the checkpointer's last run left the log: the frames it copied when it copied every
/// one it saw, else 0. The nonce writer copies the frames after them (see the module's
/// documentation).
#[derive(Debug, Default)]
pub(crate) struct LogTail(AtomicI64);

impl LogTail {
    fn record(&self, caught_up_to: Option<i64>) {
        self.0.store(caught_up_to.unwrap_or(0), Ordering::Relaxed);
    }

    /// The frames past the checkpointer's last run in a log of `frames`, if it caught up and
    /// the log has not started afresh since.
    fn past(&self, frames: i64) -> Option<i64> {
        let copied = self.0.load(Ordering::Relaxed);
        (copied > 0 && frames > copied).then(|| frames - copied)
    }
}

thread_local! {
    /// The frames in the log after this thread's last commit (SQLite's WAL hook), on the
    /// connection [`count_frames`] set up.
    static LOG_FRAMES: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// Has every commit on `conn` note the log's length for [`TailCopies`] on this thread. Replaces
/// SQLite's own automatic checkpoint, which is off on every connection anyway.
pub(super) fn count_frames(conn: &rusqlite::Connection) {
    fn note(_: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
        LOG_FRAMES.with(|f| f.set(i64::from(frames)));
        Ok(())
    }
    conn.wal_hook(Some(note));
}

/// The nonce writer's copies of the log's tail: when the next may run, and how long after it.
#[derive(Debug)]
pub(super) struct TailCopies {
    next: std::time::Instant,
    wait: Duration,
    /// The connection's `data_version` after the last batch (it moves with other connections'
    /// commits), and how many batches saw it move since the last copy was due.
    version: i64,
    others: u32,
    /// [`TAIL_EVERY`] and [`SLOW_TAIL`], but for tests.
    every: Duration,
    slow: Duration,
}

impl Default for TailCopies {
    fn default() -> Self {
        Self {
            next: std::time::Instant::now(),
            wait: TAIL_EVERY,
            version: 0,
            others: 0,
            every: TAIL_EVERY,
            slow: SLOW_TAIL,
        }
    }
}

impl TailCopies {
    /// After a batch committed on `conn` (set up with [`count_frames`]): when the checkpointer's
    /// last run copied every frame it saw, at most [`MAX_TAIL_FRAMES`] came after them, the
    /// time for the next copy has come, and other connections committed after at most
    /// [`MAX_OTHER_COMMITS`] batches since the last time it came, copies them into the file.
    /// A failure is only logged: the checkpointer runs again within [`INTERVAL`].
    pub(super) fn after_batch(&mut self, tail: &LogTail, conn: &rusqlite::Connection) {
        match conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
        {
            Ok(v) if v != self.version => {
                self.version = v;
                self.others = self.others.saturating_add(1);
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "reading the data version failed"),
        }
        let frames = LOG_FRAMES.with(std::cell::Cell::get);
        if tail.past(frames).is_none_or(|n| n > MAX_TAIL_FRAMES)
            || std::time::Instant::now() < self.next
        {
            return;
        }
        if std::mem::take(&mut self.others) > MAX_OTHER_COMMITS {
            self.next = std::time::Instant::now() + self.every;
            return;
        }
        match passive(conn, "nonce writer") {
            Ok((_, took)) if took > self.slow => {
                self.wait = (self.wait * 2).min(MAX_TAIL_WAIT);
            }
            Ok(_) => self.wait = self.every,
            Err(e) => tracing::debug!(error = %e, "copying the write-ahead log's tail failed"),
        }
        tail.record(None);
        self.next = std::time::Instant::now() + self.wait;
    }
}

/// One `PASSIVE` checkpoint: the frames it copied if it copied every one in the log (none left
/// for it, no other checkpoint running), and how long it took. Slow ones are logged with their
/// frames.
fn passive(conn: &rusqlite::Connection, by: &str) -> rusqlite::Result<(Option<i64>, Duration)> {
    let started = std::time::Instant::now();
    let (busy, log, copied): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let took = started.elapsed();
    if took > SLOW {
        tracing::debug!(
            by,
            log,
            copied,
            took_us = took.as_micros() as u64,
            "slow checkpoint"
        );
    }
    Ok((
        (busy == 0 && log > 0 && copied == log).then_some(copied),
        took,
    ))
}

/// The checkpointer's runs, as `slow checkpoint` lines name them (`by`).
const CHECKPOINTER: &str = "checkpointer";

/// The checkpoint thread of one [`super::Store`]; it stops when this is closed or dropped.
#[derive(Debug)]
pub(super) struct Checkpointer {
    stop: Mutex<Option<Sender<()>>>,
}

impl Checkpointer {
    /// Starts the thread on the database file at `path`; it records each run in `tail`.
    pub(super) fn start(path: PathBuf, tail: Arc<LogTail>) -> std::io::Result<Self> {
        let (stop, stopped) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&path, &tail, &stopped))?;
        Ok(Self {
            stop: Mutex::new(Some(stop)),
        })
    }

    /// Stops the thread (after the checkpoint it may be running).
    pub(super) fn close(&self) {
        self.stop.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

fn run(path: &PathBuf, tail: &LogTail, stopped: &Receiver<()>) {
    let mut conn: Option<rusqlite::Connection> = None;
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
        if conn.is_none() {
            conn = rusqlite::Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .ok();
        }
        let Some(c) = &conn else { continue };
        // Busy (another process checkpointing, or a reader at the log's start) is an answer,
        // not an error; an error (the file replaced, an I/O failure) opens the file afresh.
        match passive(c, CHECKPOINTER) {
            Ok((caught_up_to, _)) => tail.record(caught_up_to),
            Err(e) => {
                tail.record(None);
                tracing::debug!(error = %e, "the write-ahead log checkpoint failed; reopening");
                conn = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::config::DatabaseSettings;
    use crate::store::sqlite_test_store;

    /// Commits never checkpoint (the pool's and the nonce writer's connections have
    /// `wal_autocheckpoint = 0`), yet what they wrote reaches the database file within moments.
    #[tokio::test]
    async fn the_log_reaches_the_file_without_a_commit_copying_it() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("db.sqlite");
        let store = sqlite_test_store(&path, &DatabaseSettings::default()).await;
        let crate::store::Pool::Sqlite(pool) = &store.pool else {
            unreachable!("an SQLite store")
        };
        let autocheckpoint: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(pool)
            .await
            .expect("the pragma reads");
        assert_eq!(autocheckpoint, 0);
        sqlx::query("CREATE TABLE filler (pad BLOB)")
            .execute(pool)
            .await
            .expect("a table");
        let before = std::fs::metadata(&path).expect("the file").len();
        // 8 MiB in 64 commits: past SQLite's own threshold of 1,000 pages several times.
        for _ in 0..64 {
            sqlx::query("INSERT INTO filler (pad) VALUES (zeroblob(131072))")
                .execute(pool)
                .await
                .expect("a row");
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let now = std::fs::metadata(&path).expect("the file").len();
            if now >= before + 8 * 1024 * 1024 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the database file is still {now} bytes (was {before}) 10 s after the writes"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        store.close().await;
    }

    /// A write transaction that SQLite rolled back by itself (as on a full disk), then dropped:
    /// its connection is not handed out again believing it is still in a transaction (the next
    /// `BEGIN IMMEDIATE` failed with "attempted to call begin_with at non-zero transaction
    /// depth", seen as a 500 after a full disk recovered).
    #[tokio::test]
    async fn a_transaction_sqlite_ended_by_itself_does_not_poison_its_connection() {
        use crate::store::BeginWrite as _;
        let dir = tempfile::tempdir().expect("a temporary folder");
        let settings = DatabaseSettings {
            pool_size: 1,
            ..Default::default()
        };
        let store = sqlite_test_store(&dir.path().join("db.sqlite"), &settings).await;
        let crate::store::Pool::Sqlite(pool) = &store.pool else {
            unreachable!("an SQLite store")
        };
        for _ in 0..3 {
            let mut tx = pool.begin_write().await.expect("a write transaction");
            // What SQLite does on its own after SQLITE_FULL: the transaction is gone.
            sqlx::raw_sql("ROLLBACK")
                .execute(&mut *tx)
                .await
                .expect("rolled back behind sqlx's back");
            drop(tx);
        }
        let mut tx = pool
            .begin_write()
            .await
            .expect("the pool's connection begins again");
        sqlx::query("SELECT 1")
            .execute(&mut *tx)
            .await
            .expect("a statement");
        tx.commit().await.expect("a commit");
        store.close().await;
    }

    /// A writer and a checkpointing connection on one new file in WAL mode; the writer commits
    /// a page's worth with `write`.
    fn log_pair(dir: &std::path::Path) -> (rusqlite::Connection, rusqlite::Connection) {
        let path = dir.join("log.sqlite");
        let writer = rusqlite::Connection::open(&path).expect("the file");
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
                 CREATE TABLE t (pad BLOB);",
            )
            .expect("a WAL file");
        let checkpointer = rusqlite::Connection::open(&path).expect("a second connection");
        (writer, checkpointer)
    }

    fn write(conn: &rusqlite::Connection) {
        conn.execute("INSERT INTO t (pad) VALUES (zeroblob(3000))", [])
            .expect("a commit");
    }

    /// What the checkpointer's run would record had it copied every frame it saw: the frames
    /// this checkpoint copied (a reader holds the rest back).
    fn copy_some(checkpointer: &rusqlite::Connection, tail: &super::LogTail) {
        let copied: i64 = checkpointer
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(2))
            .expect("a checkpoint");
        assert!(copied > 0);
        tail.record(Some(copied));
    }

    /// While the writer commits during each of the checkpointer's runs, they never see the log's
    /// end, and the log only grows; once the writer copies the tail after each run, its next
    /// commit writes the log from its start, and the log's file stops growing. A long tail (a
    /// busy other process) is left to the checkpointer.
    #[test]
    fn the_writer_copying_the_tail_starts_the_log_afresh() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let (writer, checkpointer) = log_pair(dir.path());
        super::count_frames(&writer);
        let log = dir.path().join("log.sqlite-wal");
        let size = || std::fs::metadata(&log).expect("the log's file").len();
        let tail = super::LogTail::default();
        let mut copies = super::TailCopies {
            every: Duration::ZERO,
            wait: Duration::ZERO,
            ..Default::default()
        };
        // One round: `commits` commits, then a checkpointer's run while the writer commits again
        // (a reader holding the snapshot from before that commit stands for the run having taken
        // its snapshot before it), then `after`.
        let reader = rusqlite::Connection::open(dir.path().join("log.sqlite")).expect("a reader");
        let round = |commits: usize, after: &mut dyn FnMut()| {
            for _ in 0..commits {
                write(&writer);
            }
            reader
                .execute_batch("BEGIN; SELECT count(*) FROM t;")
                .expect("a read transaction");
            write(&writer);
            copy_some(&checkpointer, &tail);
            reader.execute_batch("COMMIT").expect("the read ends");
            after();
        };
        let mut sizes = Vec::new();
        for _ in 0..4 {
            round(1, &mut || {});
            sizes.push(size());
        }
        assert!(
            sizes.windows(2).all(|w| w[1] > w[0]),
            "without the tail copies the log grows with every round: {sizes:?}"
        );
        round(1, &mut || copies.after_batch(&tail, &writer));
        let settled = size();
        for _ in 0..6 {
            round(1, &mut || copies.after_batch(&tail, &writer));
            assert_eq!(tail.past(i64::MAX), None, "a copied tail is copied once");
        }
        assert_eq!(
            size(),
            settled,
            "the log starts afresh after each tail copy"
        );
        // A tail longer than the most the writer copies: left alone.
        round(1, &mut || {
            for _ in 0..super::MAX_TAIL_FRAMES {
                write(&writer);
            }
            copies.after_batch(&tail, &writer);
        });
        assert!(
            tail.past(i64::MAX).is_some(),
            "the long tail was not copied"
        );
    }

    /// While another connection commits after more than [`super::MAX_OTHER_COMMITS`] of the
    /// writer's batches (a bulk writer), the tail is left to the checkpointer; a few other
    /// commits (tokens issued now and then) do not stop the copy.
    #[test]
    fn a_busy_other_writer_leaves_the_tail_to_the_checkpointer() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let (writer, other) = log_pair(dir.path());
        super::count_frames(&writer);
        let tail = super::LogTail::default();
        let mut copies = super::TailCopies::default();
        let batches = |copies: &mut super::TailCopies, others: u32| {
            copies.next = Instant::now() + Duration::from_secs(60);
            for n in 0..=super::MAX_OTHER_COMMITS {
                if n < others {
                    write(&other);
                }
                write(&writer);
                copies.after_batch(&tail, &writer);
            }
            copies.next = Instant::now();
            tail.record(Some(1));
            copies.after_batch(&tail, &writer);
        };
        batches(&mut copies, super::MAX_OTHER_COMMITS + 1);
        assert!(
            tail.past(i64::MAX).is_some(),
            "the tail was copied under a busy other writer"
        );
        assert!(copies.next > Instant::now(), "the next copy waits its turn");
        batches(&mut copies, 3);
        assert_eq!(
            tail.past(i64::MAX),
            None,
            "a few other commits do not stop the copy"
        );
    }

    /// A slow copy doubles the wait for the next one (up to the longest), a quick one brings it
    /// back; none runs before its time, nor when the checkpointer's run did not catch up.
    #[test]
    fn slow_tail_copies_wait_twice_as_long_each_time() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let (writer, _) = log_pair(dir.path());
        super::count_frames(&writer);
        write(&writer);
        write(&writer);
        let tail = super::LogTail::default();
        let mut copies = super::TailCopies {
            slow: Duration::ZERO,
            ..Default::default()
        };
        let due = |copies: &mut super::TailCopies| copies.next = Instant::now();
        let copied =
            |copies: &super::TailCopies| copies.next > Instant::now() + Duration::from_millis(500);
        copies.after_batch(&tail, &writer);
        assert!(!copied(&copies), "nothing copied after no caught-up run");
        let mut waits = Vec::new();
        for _ in 0..7 {
            due(&mut copies);
            tail.record(Some(1));
            copies.after_batch(&tail, &writer);
            assert!(copied(&copies));
            waits.push(copies.wait.as_secs());
        }
        assert_eq!(waits, [2, 4, 8, 16, 32, 32, 32]);
        // Not due yet: nothing runs.
        let next = copies.next;
        tail.record(Some(1));
        copies.after_batch(&tail, &writer);
        assert_eq!(copies.next, next);
        copies.slow = Duration::MAX;
        due(&mut copies);
        copies.after_batch(&tail, &writer);
        assert_eq!(copies.wait, super::TAIL_EVERY);
    }
}
