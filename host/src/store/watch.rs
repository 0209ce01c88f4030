//! Writes other processes make to the database, noticed cheaply, so that caches over the store
//! stay current across processes.
//!
//! Caches are current while [`Store::generation`](super::Store::generation) has not moved, and
//! every write through this process moves it at once. Writes by other processes (a second
//! server, the CLI, SQL typed by hand):
//!
//! - **SQLite** ([`Watch`]): SQLite's `PRAGMA data_version` changes on a connection whenever
//!   another connection committed. Reading it takes a read transaction (a few microseconds,
//!   mostly the file's shared-memory locks), so it is read at most once every [`INTERVAL`], by
//!   whichever thread asks for the generation first after the interval ran out: a change made
//!   elsewhere is seen within that interval. Most commits touch nothing the caches hold (the
//!   nonce writer commits every few milliseconds under load, the cleanup jobs batch after
//!   batch), so when `data_version` moved the watch also reads `cache_epoch`, which triggers on
//!   the cached tables move in the writing transaction (migration 0013, the counterpart of
//!   PostgreSQL's notify triggers): the caches start over only when it moved.
//! - **PostgreSQL** ([`Listener`]): triggers on the tables the caches read announce every
//!   committed change on the channel [`CHANNEL`] (migration 0005), and a listener task of each
//!   server process moves the generation when a notice arrives (milliseconds after the commit).
//!   When its connection drops it may have missed notices: it moves the generation after each
//!   reconnection, and while it is not listening the generation moves on every read, so that
//!   nothing cached is trusted.
//!
//! The PostgreSQL listener is also the first to learn that the database went away: its
//! connection breaks when the server stops or restarts. From then until it listens again the
//! store is unavailable ([`Availability`]): queries fail at once with
//! [`StoreError::Unavailable`](super::StoreError::Unavailable) (503 to clients) instead of
//! waiting out the pool's acquire timeout for a connection that cannot be made.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a write by another process can go unnoticed.
pub const INTERVAL: Duration = Duration::from_millis(50);

/// The `data_version` watch on one SQLite file.
#[derive(Debug)]
pub(super) struct Watch {
    path: PathBuf,
    busy: Duration,
    origin: Instant,
    /// When the next check is due, in nanoseconds since `origin`.
    due: AtomicU64,
    /// The watching connection and what it last read; `None` until the first check, after a
    /// failed one, and once closed (then `closed` is set).
    conn: Mutex<Option<(rusqlite::Connection, Seen)>>,
    closed: std::sync::atomic::AtomicBool,
}

impl Watch {
    pub(super) fn new(path: PathBuf, busy: Duration) -> Self {
        Self {
            path,
            busy,
            origin: Instant::now(),
            due: AtomicU64::new(0),
            conn: Mutex::new(None),
            closed: Default::default(),
        }
    }

    /// Whether another connection may have committed since the last check. Checks when one is
    /// due (one thread checks; the others go on without waiting for it); a check that fails
    /// answers `true`, since it cannot tell.
    pub(super) fn poll(&self) -> bool {
        let now = self.origin.elapsed().as_nanos() as u64;
        let due = self.due.load(Ordering::Acquire);
        if now < due || self.closed.load(Ordering::Acquire) {
            return false;
        }
        let next = now + INTERVAL.as_nanos() as u64;
        if self
            .due
            .compare_exchange(due, next, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        let mut slot = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        match self.check(&mut slot) {
            Ok(changed) => changed,
            Err(_) => {
                *slot = None;
                true
            }
        }
    }

    fn check(&self, slot: &mut Option<(rusqlite::Connection, Seen)>) -> rusqlite::Result<bool> {
        if let Some((conn, seen)) = slot.as_mut() {
            let version: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
            if version == seen.version {
                return Ok(false);
            }
            // Something committed: a change only if it touched what the caches read.
            let epoch = cache_epoch(conn)?;
            let changed = epoch != seen.epoch;
            *seen = Seen { version, epoch };
            return Ok(changed);
        }
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(self.busy)?;
        let version: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        let epoch = cache_epoch(&conn)?;
        *slot = Some((conn, Seen { version, epoch }));
        // Nothing cached can predate this connection's first value by more than the time since
        // the last check, but the first check of all (or the one after a failure) cannot say
        // what happened before it.
        Ok(true)
    }

    /// Closes the connection; later polls answer `false`.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.conn.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// What the SQLite watch last read.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// `PRAGMA data_version`: moves with every commit by another connection.
    version: i64,
    /// `cache_epoch.n`: moves with every change to a table the caches read (SQLite migration
    /// 0013's triggers).
    epoch: i64,
}

/// The epoch of the tables the caches read. Before migration 0013 the table is missing: an
/// error, which the watch answers as a change.
fn cache_epoch(conn: &rusqlite::Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT n FROM cache_epoch WHERE id = 1")?
        .query_row([], |r| r.get(0))
}

/// The PostgreSQL channel the change triggers notify.
pub const CHANNEL: &str = "integration_host_changes";

/// Whether the database is known to be unreachable. Only the PostgreSQL listener sets it; an
/// SQLite file never goes away this way.
#[derive(Debug, Default)]
pub(super) struct Availability {
    down: AtomicBool,
}

impl Availability {
    pub(super) fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    fn set_down(&self, down: bool) {
        if self.down.swap(down, Ordering::AcqRel) != down {
            if down {
                tracing::warn!(
                    "the database is unreachable: requests that need it answer 503 until it is back"
                );
            } else {
                tracing::info!("the database is reachable again");
            }
        }
    }
}

/// The state of a PostgreSQL change listener, shared with its task.
#[derive(Debug, Default)]
pub(super) struct Listener {
    /// Whether the listener's connection is up and subscribed: only then are notices trusted.
    listening: AtomicBool,
    /// Notices received (and reconnections), for the tests and the logs.
    pub(super) notices: AtomicU64,
}

impl Listener {
    /// Whether caches can be trusted between notices.
    pub(super) fn listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Listens on `pool` until the task is dropped, calling `changed` for every notice, after
    /// every reconnection, and while it cannot listen (then once a second at most, with the
    /// generation moving on every read meanwhile).
    pub(super) async fn run(
        self: std::sync::Arc<Self>,
        pool: sqlx::PgPool,
        availability: std::sync::Arc<Availability>,
        changed: impl Fn() + Send + 'static,
    ) {
        let mut backoff = Duration::from_millis(100);
        while !pool.is_closed() {
            let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
                Ok(l) => l,
                Err(e) => {
                    if is_connection_error(&e) {
                        availability.set_down(true);
                    }
                    self.listening.store(false, Ordering::Release);
                    tracing::warn!(error = %e, "cannot listen for changes made by other processes; caches are bypassed meanwhile");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            // A lost connection is reported at once (not after reconnecting, which waits for
            // the pool while the database is down): this task reconnects itself.
            listener.eager_reconnect(false);
            if let Err(e) = listener.listen(CHANNEL).await {
                self.listening.store(false, Ordering::Release);
                tracing::warn!(error = %e, "cannot listen for changes made by other processes; caches are bypassed meanwhile");
                tokio::time::sleep(backoff).await;
                continue;
            }
            // Anything may have changed while it was not listening.
            self.listening.store(true, Ordering::Release);
            availability.set_down(false);
            changed();
            backoff = Duration::from_millis(100);
            loop {
                match listener.try_recv().await {
                    Ok(Some(_)) => {
                        self.notices.fetch_add(1, Ordering::Relaxed);
                        changed();
                    }
                    // The connection dropped (the database stopped, restarted or is out of
                    // reach): connect again, and until then nothing cached is trusted and
                    // queries fail fast.
                    Ok(None) => {
                        self.listening.store(false, Ordering::Release);
                        availability.set_down(true);
                        self.notices.fetch_add(1, Ordering::Relaxed);
                        changed();
                        tracing::warn!(
                            "lost the listener for changes made by other processes; caches are bypassed until it is back"
                        );
                        break;
                    }
                    Err(e) => {
                        if is_connection_error(&e) {
                            availability.set_down(true);
                        }
                        self.listening.store(false, Ordering::Release);
                        tracing::warn!(error = %e, "lost the listener for changes made by other processes; caches are bypassed until it is back");
                        break;
                    }
                }
            }
        }
    }
}

/// Whether an error says the database cannot be reached (rather than that a statement
/// failed): the connection broke, could not be made, or the server is shutting down.
pub(super) fn is_connection_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => true,
        // Class 08 (connection exception), 57P01-57P03 (admin or crash shutdown, cannot connect
        // now).
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_to_the_cached_tables_by_another_connection_is_seen_within_the_interval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.sqlite");
        let writer = rusqlite::Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode=WAL; CREATE TABLE t(x);
                 CREATE TABLE cache_epoch (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
                 INSERT INTO cache_epoch VALUES (1, 0);",
            )
            .unwrap();
        let watch = Watch::new(path, Duration::from_secs(1));
        assert!(watch.poll(), "the first check cannot tell what came before");
        assert!(!watch.poll(), "not due yet");
        std::thread::sleep(INTERVAL);
        assert!(!watch.poll(), "nothing committed");
        writer.execute("INSERT INTO t VALUES (1)", []).unwrap();
        std::thread::sleep(INTERVAL);
        assert!(
            !watch.poll(),
            "a commit that leaves the cached tables alone is no change"
        );
        writer
            .execute("UPDATE cache_epoch SET n = n + 1", [])
            .unwrap();
        assert!(!watch.poll(), "not due yet");
        std::thread::sleep(INTERVAL);
        assert!(watch.poll(), "the commit is seen");
        std::thread::sleep(INTERVAL);
        assert!(!watch.poll(), "and only once");
        watch.close();
        std::thread::sleep(INTERVAL);
        writer
            .execute("UPDATE cache_epoch SET n = n + 1", [])
            .unwrap();
        assert!(!watch.poll(), "closed");
    }
}

#[cfg(test)]
mod epoch_tests {
    use crate::config::DatabaseSettings;
    use crate::store::sqlite_test_store;

    /// The migrated schema moves `cache_epoch` with every change to a table the caches read,
    /// and leaves it alone for the nonce log (the busiest writer).
    #[tokio::test]
    async fn the_cached_tables_move_the_epoch_and_the_nonce_log_does_not() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("db.sqlite");
        let store = sqlite_test_store(&path, &DatabaseSettings::default()).await;
        store.migrate().await.expect("migrated");
        let conn = rusqlite::Connection::open(&path).unwrap();
        let epoch = || super::cache_epoch(&conn).unwrap();
        let triggers: Vec<(String, i64)> = conn
            .prepare(
                "SELECT tbl_name, count(*) FROM sqlite_master
                 WHERE type = 'trigger' AND name LIKE '%cache_epoch%' GROUP BY tbl_name ORDER BY tbl_name",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let expected: Vec<(String, i64)> = [
            "admin_user",
            "authorization_role",
            "authorization_rule",
            "customer",
            "integration",
            "jwt_auth_revoked",
            "oauth_consumer",
            "oauth_token",
        ]
        .iter()
        .map(|t| (t.to_string(), 3))
        .collect();
        assert_eq!(
            triggers, expected,
            "insert, update and delete of each cached table"
        );

        let start = epoch();
        conn.execute(
            "INSERT INTO oauth_nonce (nonce, timestamp, consumer_id) VALUES ('n', 1, 1)",
            [],
        )
        .unwrap();
        conn.execute("DELETE FROM oauth_nonce", []).unwrap();
        assert_eq!(epoch(), start, "the nonce log is not cached");
        conn.execute(
            "INSERT INTO authorization_role (parent_id, role_type, user_id, user_type, role_name)
             VALUES (NULL, 'G', NULL, NULL, 'Watchers')",
            [],
        )
        .unwrap();
        assert_eq!(epoch(), start + 1);
        conn.execute(
            "UPDATE authorization_role SET role_name = 'Lookouts' WHERE role_name = 'Watchers'",
            [],
        )
        .unwrap();
        conn.execute(
            "DELETE FROM authorization_role WHERE role_name = 'Lookouts'",
            [],
        )
        .unwrap();
        assert_eq!(epoch(), start + 3);
    }
}
