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

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

/// How often the log is checkpointed. A checkpoint with nothing to copy reads the log's index
/// and returns; one with pages to copy syncs the database file once.
pub(super) const INTERVAL: Duration = Duration::from_millis(100);

/// The checkpoint thread of one [`super::Store`]; it stops when this is closed or dropped.
#[derive(Debug)]
pub(super) struct Checkpointer {
    stop: Mutex<Option<Sender<()>>>,
}

impl Checkpointer {
    /// Starts the thread on the database file at `path`.
    pub(super) fn start(path: PathBuf) -> std::io::Result<Self> {
        let (stop, stopped) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&path, &stopped))?;
        Ok(Self {
            stop: Mutex::new(Some(stop)),
        })
    }

    /// Stops the thread (after the checkpoint it may be running).
    pub(super) fn close(&self) {
        self.stop.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

fn run(path: &PathBuf, stopped: &Receiver<()>) {
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
        if let Err(e) = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "the write-ahead log checkpoint failed; reopening");
            conn = None;
        }
    }
}

#[cfg(test)]
mod tests {
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
}
