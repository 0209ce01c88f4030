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
pub use nonces::{NonceStats, NonceWriter};
pub use outbox::{Backlog, Claimed, NewEvent};
pub use plugin_kv::KvWrite;
pub use roles::{AdminRole, RoleAssignment, RoleDeletion, RoleRow, RoleSave};
pub use sealed::{Reseal, SealedColumn};
pub use sessions::SessionRow;
pub use tokens::CLEANUP_BATCH;
pub use watch::INTERVAL as WATCH_INTERVAL;

use crate::config::{DatabaseSettings, DatabaseUrl};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("src/store/migrations/postgres");

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

/// What [`Store::migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions and descriptions applied by this run, oldest first.
    pub applied: Vec<(i64, String)>,
    /// Number of migrations the schema now has.
    pub total: usize,
}

/// Advisory lock key under which PostgreSQL processes take turns at migrating.
const MIGRATION_LOCK_KEY: i64 = 0x0069_682d_6d69_6772;

/// Advisory lock key under which processes take turns at the declarative sync.
const SYNC_LOCK_KEY: i64 = 0x0069_682d_7379_6e63;

/// Held while one process runs the declarative sync; released when dropped.
#[derive(Debug)]
pub struct SyncLock {
    _held: SyncLockInner,
}

/// What a [`SyncLock`] holds until it is dropped.
#[derive(Debug)]
enum SyncLockInner {
    /// `<database>.sync.lock`, locked.
    File { _file: std::fs::File },
    /// A connection of its own (detached from the pool, which stays whole for the sync itself)
    /// holding `pg_advisory_lock`: closing it on drop releases the lock.
    Postgres { _conn: sqlx::PgConnection },
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
                let checkpointer =
                    checkpoint::Checkpointer::start(path.clone()).map_err(sqlx::Error::Io)?;
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

    /// Applies pending migrations and reports which. Safe when several processes migrate one
    /// database at once: PostgreSQL processes take an advisory lock, SQLite processes a lock
    /// file, and the report is read under that lock, so exactly one process reports applying
    /// each migration. The PostgreSQL lock lives on a connection of its own that is closed
    /// afterwards, so a failed run cannot leave it held on a pooled connection.
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        // On one connection: the versions applied before, the migrator's run, those after.
        macro_rules! run_on {
            ($conn:expr, $migrator:expr, $exists:expr) => {{
                let conn = $conn;
                let mut versions = Vec::new();
                for run in [false, true] {
                    if run {
                        $migrator.run(&mut *conn).await?;
                    }
                    let exists: bool = sqlx::query_scalar($exists).fetch_one(&mut *conn).await?;
                    let applied: Vec<i64> = if exists {
                        sqlx::query_scalar(
                            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
                        )
                        .fetch_all(&mut *conn)
                        .await?
                    } else {
                        Vec::new()
                    };
                    versions.push(applied);
                }
                let after = versions.pop().expect("two readings");
                let before = versions.pop().expect("two readings");
                Ok::<_, StoreError>((before, after))
            }};
        }
        let (migrator, result) = match &self.pool {
            Pool::Sqlite(p) => {
                let _guard = match &self.sqlite_file {
                    Some(file) => Some(lock_file(&file.path).await?),
                    None => None,
                };
                let mut conn = p.acquire().await?.detach();
                let result = async {
                    run_on!(
                        &mut conn,
                        SQLITE_MIGRATIONS,
                        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
                    )
                }
                .await;
                conn.close().await.ok();
                (&SQLITE_MIGRATIONS, result)
            }
            Pool::Postgres(p) => {
                let mut conn = p.acquire().await?.detach();
                let result = async {
                    sqlx::query("SELECT pg_advisory_lock($1)")
                        .bind(MIGRATION_LOCK_KEY)
                        .execute(&mut conn)
                        .await?;
                    run_on!(
                        &mut conn,
                        POSTGRES_MIGRATIONS,
                        "SELECT to_regclass('_sqlx_migrations') IS NOT NULL"
                    )
                }
                .await;
                // Closing the session releases the advisory lock.
                conn.close().await.ok();
                (&POSTGRES_MIGRATIONS, result)
            }
        };
        let (before, after) = result?;
        let applied = migrator
            .iter()
            .filter(|m| after.contains(&m.version) && !before.contains(&m.version))
            .map(|m| (m.version, m.description.to_string()))
            .collect();
        Ok(MigrationReport {
            applied,
            total: after.len(),
        })
    }

    /// Writes a consistent copy of an SQLite database to `path` (a new file, mode 0600: it holds
    /// sealed secrets and password hashes) while the server may be writing; `None` on
    /// PostgreSQL, whose own tools (`pg_dump`) back it up.
    pub async fn backup_to(&self, path: &std::path::Path) -> Option<Result<(), StoreError>> {
        let Pool::Sqlite(pool) = &self.pool else {
            return None;
        };
        let result = async {
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(sqlx::Error::Io)?;
            }
            let target = path.to_str().ok_or_else(|| {
                sqlx::Error::Protocol(format!("{} is not a UTF-8 path", path.display()))
            })?;
            // VACUUM INTO writes into the empty file created above, keeping its mode.
            sqlx::query("VACUUM INTO $1")
                .bind(target)
                .execute(pool)
                .await?;
            Ok(())
        }
        .await;
        if result.is_err() {
            let _ = std::fs::remove_file(path);
        }
        Some(result)
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

    /// Waits for the declarative sync's lock, so that several processes apply a change of the
    /// definitions once (each after the other; the later ones find nothing left to do).
    pub async fn sync_lock(&self) -> Result<SyncLock, StoreError> {
        match &self.pool {
            Pool::Sqlite(_) => {
                let path = self
                    .sqlite_file
                    .as_ref()
                    .map(|f| f.path.with_extension("sync"))
                    .ok_or(StoreError::Closed)?;
                Ok(SyncLock {
                    _held: SyncLockInner::File {
                        _file: lock_file(&path).await?,
                    },
                })
            }
            Pool::Postgres(p) => {
                let mut conn = p.acquire().await?.detach();
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(SYNC_LOCK_KEY)
                    .execute(&mut conn)
                    .await?;
                Ok(SyncLock {
                    _held: SyncLockInner::Postgres { _conn: conn },
                })
            }
        }
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
