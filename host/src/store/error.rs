//! The one error of the store: the database failed, or what it holds cannot be read.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A failure of the database or of the data in it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the SQLite database file {0} is gone or was replaced")]
    FileGone(PathBuf),
    #[error("database did not answer within {0:?}")]
    Timeout(Duration),
    /// A failure shared by every request of one batched write (the nonce writer's).
    #[error("{0}")]
    Batch(Arc<StoreError>),
    /// The nonce writer is gone (the server is stopping).
    #[error("the nonce writer has stopped")]
    WriterStopped,
    /// A failure of a direct SQLite connection (the direct reads, the nonce writer).
    #[error("database error: {0}")]
    Direct(#[source] rusqlite::Error),
    /// The store was closed.
    #[error("the database is closed")]
    Closed,
    /// The database is known to be unreachable; the query was not tried.
    #[error("the database is unreachable")]
    Unavailable,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if super::space::is_full_sqlx(&e) {
            super::space::noted_full();
        }
        StoreError::Database(e)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if super::space::is_full_rusqlite(&e) {
            super::space::noted_full();
        }
        StoreError::Direct(e)
    }
}

impl StoreError {
    /// Whether the database could not be reached (down, restarting, out of reach, no
    /// connection free in time) or cannot write for lack of space, as opposed to a statement
    /// failing: the request may succeed when retried, and is answered 503.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable | StoreError::Timeout(_) => true,
            StoreError::Database(e) => {
                super::watch::is_connection_error(e) || super::space::is_full_sqlx(e)
            }
            StoreError::Direct(e) => super::space::is_full_rusqlite(e),
            StoreError::Batch(inner) => inner.is_unavailable(),
            _ => false,
        }
    }

    /// Whether the database cannot write because its disk (or its size limit) is full.
    pub fn is_storage_full(&self) -> bool {
        match self {
            StoreError::Database(e) => super::space::is_full_sqlx(e),
            StoreError::Direct(e) => super::space::is_full_rusqlite(e),
            StoreError::Batch(inner) => inner.is_storage_full(),
            _ => false,
        }
    }

    /// Whether the failure is a unique-constraint violation (a duplicate name, key or nonce).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}
