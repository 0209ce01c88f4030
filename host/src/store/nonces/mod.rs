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
//! `sqlite::Recent`: the nonces of every consumer whose timestamp still lies within the window, as
//! keyed fingerprints, read from the log when the writer starts and kept level with it. Each
//! batch runs under the database's write lock (`BEGIN IMMEDIATE`): first it reads the rows
//! other server processes appended since its last batch, then it checks each nonce and appends
//! the new ones, then commits before anyone is answered. So a nonce is new once per consumer
//! across processes, as with a unique key; but the log takes a commit's nonces on a few
//! adjacent pages, where a key on (consumer, nonce) takes one page per nonce (a client's nonce
//! is random), which is what bounded signed requests on SQLite. The writer is a thread with a
//! direct connection (`rusqlite`, on the same SQLite library as the pool): a batch is a few
//! in-process calls, with no hop through an async runtime or a driver's worker thread.
//!
//! The answers go back through `answer`: one wake-up per worker thread per batch.

mod answer;
mod batch;
mod postgres;
mod sqlite;

use std::sync::Arc;

pub use batch::NonceStats;
use batch::{Pending, keep_seconds};

use super::{Store, StoreError};

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
                    .spawn(move || sqlite::writer(&file, window, rx, &counted))
                    .expect("the nonce writer thread starts");
                Queue::Thread(tx)
            }
            None => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                tokio::spawn(postgres::writer(store, keep_seconds(window), rx, counted));
                Queue::Task(tx)
            }
        };
        Self { queue, stats }
    }

    /// Gives the calling thread a mailbox for the writer's answers (see `answer`): the
    /// requests waiting there are woken once per batch, not each from the writer's thread. Call
    /// it on each server worker thread, from within its runtime.
    pub fn mailbox_on_this_thread() {
        answer::on_this_thread();
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
        let (reply, answer) = answer::channel();
        let pending = Pending {
            consumer_id,
            nonce: nonce.to_owned(),
            timestamp,
            reply,
        };
        let gone = || StoreError::WriterStopped;
        match &self.queue {
            Queue::Thread(tx) => tx.send(pending).map_err(|_| gone())?,
            Queue::Task(tx) => tx.send(pending).map_err(|_| gone())?,
        }
        answer.await.ok_or_else(gone)?.map_err(StoreError::Batch)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::batch::MARGIN_SECONDS;

    use super::*;

    use crate::config::DatabaseSettings;

    async fn sqlite_store(dir: &Path) -> Store {
        sqlite_store_with(dir, &DatabaseSettings::default()).await
    }

    async fn sqlite_store_with(dir: &Path, settings: &DatabaseSettings) -> Store {
        let store = crate::store::sqlite_test_store(&dir.join("nonces.sqlite"), settings).await;
        store.migrate().await.expect("migrations run");
        store
    }

    /// A current-thread runtime for a test (also `answer`'s tests').
    pub(super) fn runtime() -> tokio::runtime::Runtime {
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

    /// Many nonces at once go into the log in multi-row inserts of every size, numbered in the
    /// order they were decided; copies within them are refused.
    #[test]
    fn a_large_batch_is_appended_in_order() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        runtime().block_on(async {
            let consumer = store_consumer(dir.path(), "c").await;
            let writer = NonceWriter::spawn(sqlite_store(dir.path()).await, 600);
            let now = crate::clock::now();
            let started_us = crate::clock::now_us();
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
            for ((_, nonce), expected) in rows.iter().zip(&new) {
                assert_eq!(nonce, *expected);
            }
            // Numbered by time: from when the first was appended, one after another within a
            // commit (each commit reads the clock once).
            assert!(rows[0].0 >= started_us, "{} < {started_us}", rows[0].0);
            assert!(rows[254].0 <= crate::clock::now_us() + 255);
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
            let before = log_rows(dir.path());
            // Cleaned up to a minute from now: every row but the newest.
            assert_eq!(
                store.delete_nonces_before(now + 60).await.expect("cleaned"),
                4
            );
            assert_eq!(log_rows(dir.path()), before[4..]);
            assert!(b.record(consumer, "b0", now).await.expect("recorded"));
            let rows = log_rows(dir.path());
            assert!(rows[1].0 > before[4].0 && rows[1].1 == "b0", "{rows:?}");
            assert!(!a.record(consumer, "b0", now).await.expect("recorded"));

            raw_delete_all(dir.path());
            assert!(b.record(consumer, "b1", now).await.expect("recorded"));
            assert_eq!(log_rows(dir.path()).len(), 1);
            assert!(!a.record(consumer, "b1", now).await.expect("recorded"));
            assert!(a.record(consumer, "a5", now).await.expect("recorded"));
            assert!(!b.record(consumer, "a5", now).await.expect("recorded"));
        });
    }

    /// A row's number is its arrival in microseconds, or its timestamp's if that is later (a
    /// client clock ahead), and always above the one before; the cleanup deletes a row once
    /// both are before its cutoff.
    #[test]
    fn rows_are_numbered_by_time() {
        use sqlite::next_seq;
        let (now, now_us) = (1_700_000_000, 1_700_000_000_250_000);
        assert_eq!(next_seq(0, now_us, now - 5), now_us);
        assert_eq!(next_seq(now_us, now_us, now), now_us + 1);
        assert_eq!(next_seq(0, now_us, now + 30), (now + 30) * 1_000_000);
        assert_eq!(next_seq(i64::MAX - 1, now_us, i64::MAX), i64::MAX);

        let dir = tempfile::tempdir().expect("a temporary folder");
        runtime().block_on(async {
            let store = sqlite_store(dir.path()).await;
            let consumer = store_consumer(dir.path(), "c").await;
            let writer = NonceWriter::spawn(sqlite_store(dir.path()).await, 600);
            let now = crate::clock::now();
            assert!(
                writer
                    .record(consumer, "past", now - 700)
                    .await
                    .expect("recorded")
            );
            assert!(
                writer
                    .record(consumer, "ahead", now + 500)
                    .await
                    .expect("recorded")
            );
            assert!(
                writer
                    .record(consumer, "last", now - 700)
                    .await
                    .expect("recorded")
            );
            let rows = log_rows(dir.path());
            assert!(rows[0].0 >= (now - 1) * 1_000_000 && rows[0].0 < (now + 60) * 1_000_000);
            assert_eq!(rows[1].0, (now + 500) * 1_000_000);
            assert_eq!(rows[2].0, (now + 500) * 1_000_000 + 1);
            // Up to now + 400 s: the first row only ("ahead" is not out of the window, and
            // "last", numbered after it, waits for it).
            assert_eq!(
                store
                    .delete_nonces_before(now + 400)
                    .await
                    .expect("cleaned"),
                1
            );
            assert_eq!(log_rows(dir.path()), rows[1..]);
        });
    }

    /// The rows numbered before migration 0015 (1, 2, 3 ...) are read at start-up as before,
    /// with the timed rows of the window, and none out of it; the cleanup deletes the old ones
    /// by their timestamp, and the numbers go on by time after them.
    #[test]
    fn rows_numbered_before_time_are_still_read_and_cleaned() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        runtime().block_on(async {
            let store = sqlite_store(dir.path()).await;
            let consumer = store_consumer(dir.path(), "c").await;
            let now = crate::clock::now();
            let timed = (now - 5000) * 1_000_000;
            rusqlite::Connection::open(dir.path().join("nonces.sqlite"))
                .expect("the file opens")
                .execute(
                    "INSERT INTO oauth_nonce (seq, nonce, timestamp, consumer_id) VALUES
                         (1, 'old-out', ?1 - 5000, ?2), (2, 'old-in', ?1 - 10, ?2),
                         (?3, 'timed-out', ?1 - 5000, ?2),
                         (?3 + 4990000000, 'timed-in', ?1 - 10, ?2)",
                    (now, consumer, timed),
                )
                .expect("rows");
            let writer = NonceWriter::spawn(sqlite_store(dir.path()).await, 600);
            for (nonce, new) in [
                ("old-out", true),
                ("old-in", false),
                ("timed-out", true),
                ("timed-in", false),
            ] {
                let answer = writer.record(consumer, nonce, now).await.expect("recorded");
                assert_eq!(answer, new, "{nonce}");
            }
            let newest = log_rows(dir.path()).last().expect("rows").0;
            assert!(newest >= now * 1_000_000, "{newest}");
            assert_eq!(
                store
                    .delete_nonces_before(now - 660)
                    .await
                    .expect("cleaned"),
                2
            );
            let left: Vec<String> = log_rows(dir.path()).into_iter().map(|r| r.1).collect();
            assert_eq!(left, ["old-in", "timed-in", "old-out", "timed-out"]);
        });
    }

    /// Migration 0006 keeps every row of the log with its number, and what it removes is gone:
    /// AUTOINCREMENT, the foreign key and the consumer index.
    #[test]
    fn the_plain_log_migration_keeps_the_rows() {
        let conn = rusqlite::Connection::open_in_memory().expect("a database");
        for sql in [
            include_str!("../migrations/sqlite/0001_initial.sql"),
            include_str!("../migrations/sqlite/0002_integration_config_hash.sql"),
            include_str!("../migrations/sqlite/0003_cron_schedule.sql"),
            include_str!("../migrations/sqlite/0004_admin_session.sql"),
            include_str!("../migrations/sqlite/0005_nonce_log.sql"),
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
        conn.execute_batch(include_str!(
            "../migrations/sqlite/0006_nonce_log_plain.sql"
        ))
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
        // Which migration 0015 drops: the log's own key is all it has.
        conn.execute_batch(include_str!(
            "../migrations/sqlite/0015_nonce_log_timed.sql"
        ))
        .expect("migration 0015");
        let indexes: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE tbl_name = 'oauth_nonce' AND type = 'index'",
                [],
                |r| r.get(0),
            )
            .expect("counted");
        assert_eq!(indexes, 0);
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
