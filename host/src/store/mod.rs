//! All SQL of the server, behind one repository API for SQLite and PostgreSQL.
//!
//! This module owns the connection pool, the migrations (one tree per backend under
//! `migrations/`) and every query. The rest of the server calls typed methods on [`Store`] and
//! never sees a backend. Queries are written once with `$n` placeholders, which both drivers
//! understand, and run on whichever pool is configured through [`on_pool!`]; where the dialects
//! differ, the method says so and holds both statements.

mod accounts;
mod acl;
mod checkpoint;
mod codes;
mod consumers;
mod error;
mod integration_search;
mod integrations;
mod jobs;
pub mod magento;
mod maintenance;
mod nonces;
pub(crate) mod outbox;
mod plugin_kv;
mod reader;
mod roles;
mod sealed;
pub mod search;
mod sessions;
pub mod space;
mod tokens;
mod watch;

use std::path::PathBuf;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use accounts::{ADMINISTRATORS, AccountRow, AdminInsert, NewAccount};
pub use consumers::{ConsumerRow, NewConsumer, SealedToken, TokenRow};
pub use error::StoreError;
pub use integration_search::IntegrationPage;
pub use integration_search::columns as integration_columns;
pub use integrations::{IntegrationFields, IntegrationRow};
pub use jobs::JobRun;
pub use maintenance::{MigrationReport, SyncLock};
pub use nonces::{NonceStats, NonceWriter};
pub use outbox::{Backlog, Claimed, NewEvent};
pub use plugin_kv::KvWrite;
pub use roles::{AdminRole, RoleAssignment, RoleDeletion, RoleRow, RoleSave};
pub use sealed::{Reseal, SealedColumn};
pub use sessions::SessionRow;
pub use tokens::CLEANUP_BATCH;
pub use watch::INTERVAL as WATCH_INTERVAL;

use crate::config::{DatabaseSettings, DatabaseUrl};

/// Runs `$body` with `$p` bound to the concrete pool, whichever backend it is.
/// Fails at once with [`StoreError::Unavailable`] while the database is known to be down.
macro_rules! on_pool {
    ($store:expr, |$p:ident| $body:expr) => {{
        $store.ensure_available()?;
        match &$store.pool {
            $crate::store::Pool::Sqlite($p) => $body,
            $crate::store::Pool::Postgres($p) => $body,
        }
    }};
}
pub(crate) use on_pool;

/// A read: on SQLite through the direct [`reader`] (`$c` a `rusqlite::Connection`, `$direct`
/// a `rusqlite::Result`), on PostgreSQL through the pool (`$p` the pool, `$pool` the value,
/// `?` on sqlx errors allowed).
macro_rules! read {
    ($store:expr, direct: |$c:ident| $direct:expr, pool: |$p:ident| $pool:expr $(,)?) => {
        match &$store.reader {
            Some(r) => r.read(|$c| $direct),
            None => Ok($crate::store::on_pool!($store, |$p| $pool)),
        }
    };
}
pub(crate) use read;

/// Opens a write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`):
/// a deferred transaction that reads first could not become a writer once another connection
/// (the outbox's delivery, the nonce writer, another process) committed in between, and would
/// fail where this one waits its turn within the busy timeout.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error>> + Send
    {
        self.begin_with("BEGIN IMMEDIATE")
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error>> + Send
    {
        self.begin()
    }
}

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The identity of the SQLite file when it was opened, to notice it being deleted or replaced,
/// and how writers of their own (the nonce writer) wait on it.
#[derive(Debug, Clone)]
pub(super) struct SqliteFile {
    pub(super) path: PathBuf,
    dev: u64,
    ino: u64,
    /// How long a write waits for another connection's lock.
    pub(super) busy_timeout: Duration,
    /// How long the nonce writer lets nonces gather under load.
    pub(super) nonce_commit_delay: Duration,
    /// How far the checkpointer last caught up with the log, for the nonce writer (see
    /// [`checkpoint`]).
    pub(super) log_tail: std::sync::Arc<checkpoint::LogTail>,
}

/// The database: a connection pool and every query the server runs.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    sqlite_file: Option<SqliteFile>,
    /// Direct read connections, on SQLite.
    reader: Option<std::sync::Arc<reader::Reader>>,
    /// On SQLite, the thread that checkpoints the write-ahead log (see [`checkpoint`]).
    checkpointer: Option<std::sync::Arc<checkpoint::Checkpointer>>,
    /// Bumped after every committed write of credentials, integrations, permissions or
    /// accounts made through this handle (and its clones), so that caches built from reads
    /// taken before a write can tell they are stale.
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// On SQLite, notices writes by other processes (see [`watch`]).
    watch: Option<std::sync::Arc<watch::Watch>>,
    /// On PostgreSQL, once [`Store::listen_for_changes`] started it (see [`watch`]).
    listener: std::sync::Arc<std::sync::OnceLock<std::sync::Arc<watch::Listener>>>,
    /// Whether the database is known to be unreachable (set by the listener).
    availability: std::sync::Arc<watch::Availability>,
}

/// Takes an exclusive lock on `<path>.lock` (the SQLite database path), waiting on a blocking
/// thread. Processes sharing one SQLite file use it to take turns at opening and migrating.
async fn lock_file(path: &std::path::Path) -> Result<std::fs::File, StoreError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(|e| StoreError::Database(sqlx::Error::Io(std::io::Error::other(e))))?
    .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))
}

impl Store {
    /// The write generation: read it before a read whose result is cached, and the cached
    /// value is current while the generation has not moved. Writes through this process move
    /// it at once; on SQLite, writes by other processes on the file move it within
    /// [`WATCH_INTERVAL`] (see [`watch`]).
    pub fn generation(&self) -> u64 {
        if let Some(w) = &self.watch
            && w.poll()
        {
            self.changed();
        }
        if let Some(l) = self.listener.get()
            && !l.listening()
        {
            // Blind to other processes: nothing cached may be trusted.
            self.changed();
        }
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether [`Store::generation`] also moves with writes by other processes, so that a
    /// cache keyed on it is current across processes: on SQLite always (its file's
    /// `data_version`), on PostgreSQL once [`Store::listen_for_changes`] runs. Otherwise
    /// caches bound what they miss by time alone.
    pub fn sees_other_writers(&self) -> bool {
        self.watch.is_some() || self.listener.get().is_some()
    }

    /// On PostgreSQL, starts the task that listens for changes other processes commit (see
    /// [`watch`]) and answers it; on SQLite, `None` (the file is watched without a task). The
    /// server calls it once at start; the CLI does not need it.
    pub fn listen_for_changes(&self) -> Option<tokio::task::JoinHandle<()>> {
        let Pool::Postgres(pool) = &self.pool else {
            return None;
        };
        let listener = std::sync::Arc::new(watch::Listener::default());
        if self.listener.set(listener.clone()).is_err() {
            return None;
        }
        let generation = self.generation.clone();
        Some(tokio::spawn(listener.run(
            pool.clone(),
            self.availability.clone(),
            move || {
                generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            },
        )))
    }

    /// `Err(StoreError::Unavailable)` while the database is known to be unreachable (on
    /// PostgreSQL, from the moment the change listener's connection broke until it listens
    /// again), so that requests fail fast instead of waiting for a connection.
    pub fn ensure_available(&self) -> Result<(), StoreError> {
        if self.availability.is_down() {
            Err(StoreError::Unavailable)
        } else {
            Ok(())
        }
    }

    /// Notices of other processes' changes received so far (PostgreSQL; 0 on SQLite).
    pub fn change_notices(&self) -> u64 {
        self.listener
            .get()
            .map_or(0, |l| l.notices.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Marks that a write committed.
    pub(crate) fn changed(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Opens a pool on the configured database; an SQLite file and its folder are created.
    pub async fn connect(
        url: &DatabaseUrl,
        settings: &DatabaseSettings,
    ) -> Result<Self, StoreError> {
        let acquire = Duration::from_secs(settings.acquire_timeout_seconds.max(1));
        match url {
            DatabaseUrl::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Database(sqlx::Error::Io(std::io::Error::new(
                            e.kind(),
                            format!("cannot create database folder {}: {e}", dir.display()),
                        )))
                    })?;
                }
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_millis(settings.sqlite_busy_timeout_ms))
                    .foreign_keys(true)
                    // No memory map: in WAL mode a connection whose file another one changed
                    // since its last read (the nonce writer commits with every few signed
                    // requests) drops its map and maps the file again, and every unmap stops
                    // all the process's threads on every CPU to flush their TLBs. Reads went
                    // from 252 to 171 µs of server CPU per signed GET of an integration
                    // (two queries) with the map gone.
                    .pragma("mmap_size", "0")
                    .pragma("cache_size", "-32768")
                    // No commit copies the log into the file: the checkpointer does.
                    .pragma("wal_autocheckpoint", "0");
                // Switching a new file to WAL needs an exclusive lock that SQLite does not wait
                // for: processes opening one new file at once take turns through the lock file.
                let guard = lock_file(path).await?;
                // A file does not go stale the way a network connection does: skip the ping
                // that would otherwise precede every query.
                let pool = SqlitePoolOptions::new()
                    .max_connections(settings.pool_size.max(1))
                    .acquire_timeout(acquire)
                    .test_before_acquire(false)
                    // SQLite rolls a transaction back by itself on some failures (a full disk):
                    // the ROLLBACK sqlx then queues for the dropped transaction fails, its
                    // connection goes on believing it is in one, and every later BEGIN IMMEDIATE
                    // on it fails. Such a connection is closed instead of reused.
                    .after_release(|conn, _| {
                        Box::pin(async move {
                            if !conn.is_in_transaction() {
                                return Ok(true);
                            }
                            // A dropped transaction's rollback may still be queued: run it.
                            conn.ping().await?;
                            Ok(!conn.is_in_transaction())
                        })
                    })
                    .connect_with(options)
                    .await?;
                drop(guard);
                let meta = std::fs::metadata(path).map_err(sqlx::Error::Io)?;
                let log_tail = std::sync::Arc::new(checkpoint::LogTail::default());
                let checkpointer = checkpoint::Checkpointer::start(path.clone(), log_tail.clone())
                    .map_err(sqlx::Error::Io)?;
                use std::os::unix::fs::MetadataExt as _;
                Ok(Self {
                    pool: Pool::Sqlite(pool),
                    reader: Some(std::sync::Arc::new(reader::Reader::new(
                        path.clone(),
                        Duration::from_millis(settings.sqlite_busy_timeout_ms),
                    ))),
                    checkpointer: Some(std::sync::Arc::new(checkpointer)),
                    sqlite_file: Some(SqliteFile {
                        busy_timeout: Duration::from_millis(settings.sqlite_busy_timeout_ms),
                        nonce_commit_delay: Duration::from_micros(settings.nonce_commit_delay_us),
                        log_tail,
                        path: path.clone(),
                        dev: meta.dev(),
                        ino: meta.ino(),
                    }),
                    generation: Default::default(),
                    watch: Some(std::sync::Arc::new(watch::Watch::new(
                        path.clone(),
                        Duration::from_millis(settings.sqlite_busy_timeout_ms),
                    ))),
                    listener: Default::default(),
                    availability: Default::default(),
                })
            }
            DatabaseUrl::Postgres(url) => {
                let options = PgConnectOptions::from_str(url)?.application_name("integration-host");
                let pool = PgPoolOptions::new()
                    .max_connections(settings.pool_size.max(1))
                    .acquire_timeout(acquire)
                    .connect_with(options)
                    .await?;
                Ok(Self {
                    pool: Pool::Postgres(pool),
                    sqlite_file: None,
                    reader: None,
                    checkpointer: None,
                    generation: Default::default(),
                    watch: None,
                    listener: Default::default(),
                    availability: Default::default(),
                })
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Checks that the database answers (within `timeout`) and, for SQLite, that the file the
    /// server opened is still the one at its path: writing on after the file was deleted would
    /// lose everything at the next start.
    pub async fn ping(&self, timeout: Duration) -> Result<(), StoreError> {
        if let Some(file) = &self.sqlite_file {
            use std::os::unix::fs::MetadataExt as _;
            match std::fs::metadata(&file.path) {
                Ok(m) if m.dev() == file.dev && m.ino() == file.ino => {}
                _ => return Err(StoreError::FileGone(file.path.clone())),
            }
        }
        let query = async {
            on_pool!(self, |p| sqlx::query("SELECT 1")
                .execute(p)
                .await
                .map(|_| ())?);
            Ok::<_, StoreError>(())
        };
        match tokio::time::timeout(timeout, query).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout(timeout)),
        }
    }

    /// While writes fail for lack of space ([`space::full_since`]): tries a write that needs
    /// new space (SQLite's write-ahead log emptied first, so that it must grow; then 256 KiB
    /// written and removed). Success means the space is back, and is remembered.
    pub async fn probe_space(&self) -> Result<(), StoreError> {
        const PAD: usize = 256 * 1024;
        match &self.pool {
            Pool::Sqlite(p) => {
                let mut c = p.acquire().await?;
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&mut *c)
                    .await?;
                sqlx::query("INSERT INTO space_probe (pad) VALUES (zeroblob(?))")
                    .bind(PAD as i64)
                    .execute(&mut *c)
                    .await?;
                sqlx::query("DELETE FROM space_probe")
                    .execute(&mut *c)
                    .await?;
            }
            Pool::Postgres(p) => {
                sqlx::query("INSERT INTO space_probe (pad) VALUES ($1)")
                    .bind(vec![0u8; PAD])
                    .execute(p)
                    .await?;
                sqlx::query("DELETE FROM space_probe").execute(p).await?;
            }
        }
        space::space_back();
        Ok(())
    }

    /// Closes every connection; later queries fail.
    pub async fn close(&self) {
        if let Some(r) = &self.reader {
            r.close();
        }
        if let Some(w) = &self.watch {
            w.close();
        }
        if let Some(c) = &self.checkpointer {
            c.close();
        }
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

/// A store on the SQLite file at `path` (made when missing), for the store's own tests.
#[cfg(test)]
pub(crate) async fn sqlite_test_store(
    path: &std::path::Path,
    settings: &DatabaseSettings,
) -> Store {
    Store::connect(&DatabaseUrl::Sqlite(path.to_owned()), settings)
        .await
        .expect("the store opens")
}
