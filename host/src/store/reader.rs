//! Point reads on SQLite on the calling thread, through direct connections.
//!
//! sqlx's SQLite driver runs each connection on a worker thread of its own and hands every
//! statement and every row across a channel: a profile of a signed GET of one integration (two
//! indexed reads) showed a third of the server's samples in futex waits and thread wake-ups of
//! that hand-over, and SQLite's own work under 1%. [`Reader`] keeps a few `rusqlite`
//! connections (the same SQLite library) and runs a read where it is asked for: a lookup by key
//! takes a few microseconds, less than one thread switch. Reads in WAL mode never wait for the
//! writer, so the calling (async) thread is held only for the read itself; a rare wait on a
//! checkpoint's lock is bounded by `database.sqlite_busy_timeout_ms`.
//!
//! Only short reads by key belong here; writes and transactions stay on the pool.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use super::error::StoreError;

/// Connections kept idle at most; more are opened while more threads read at once (the actix
/// workers, the CLI), and closed when they are given back beyond this.
const IDLE: usize = 16;

/// A read that takes longer than this is logged (at debug level).
const SLOW: Duration = Duration::from_millis(2);

/// Direct read connections on one SQLite file.
#[derive(Debug)]
pub(super) struct Reader {
    path: PathBuf,
    busy: Duration,
    /// Idle connections; `None` once the store is closed.
    idle: Mutex<Option<Vec<rusqlite::Connection>>>,
}

impl Reader {
    pub(super) fn new(path: PathBuf, busy: Duration) -> Self {
        Self {
            path,
            busy,
            idle: Mutex::new(Some(Vec::new())),
        }
    }

    fn open(&self) -> rusqlite::Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(self.busy)?;
        // A reader never writes, whatever a statement says.
        conn.pragma_update(None, "query_only", "ON")?;
        // No memory map, as on the pool (see `Store::connect`): every commit of the nonce
        // writer would make each reader drop its map, stalling every thread.
        conn.pragma_update(None, "mmap_size", 0)?;
        conn.pragma_update(None, "cache_size", -8192)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    /// Runs `f` on an idle connection (opened when none is idle), on this thread.
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let taken = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            match idle.as_mut() {
                None => return Err(StoreError::Closed),
                Some(list) => list.pop(),
            }
        };
        let conn = match taken {
            Some(c) => c,
            None => self.open()?,
        };
        let started = std::time::Instant::now();
        let result = f(&conn);
        let took = started.elapsed();
        if took > SLOW {
            tracing::debug!(took_us = took.as_micros() as u64, "slow SQLite read");
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = idle.as_mut()
            && list.len() < IDLE
        {
            list.push(conn);
        }
        Ok(result?)
    }

    /// Closes every idle connection; later reads fail with [`StoreError::Closed`].
    pub(super) fn close(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}
