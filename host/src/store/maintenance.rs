//! The database's upkeep: migrations (processes take turns under a lock), the declarative
//! sync's lock, and SQLite backups.

use sqlx::Connection as _;

use super::{Pool, Store, StoreError, lock_file};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("src/store/migrations/postgres");

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

impl Store {
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
}
