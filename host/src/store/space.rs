//! A database that cannot write for lack of space (SQLite's `SQLITE_FULL`, PostgreSQL's
//! `disk_full`): such a failure is answered 503 like an unreachable database, reads go on, and
//! the process remembers it until a write that needs new space succeeds again, so that
//! `/readyz` can say why the node should take no traffic and notice by itself when the space is
//! back ([`Store::probe_space`](super::Store::probe_space)).
//!
//! The memory is the process's (one database per server process): a disk fills for every
//! connection at once.

use std::sync::atomic::{AtomicI64, Ordering};

/// Unix seconds of the first write that failed for lack of space since the last one that
/// succeeded; 0 when writes succeed.
static FULL_SINCE: AtomicI64 = AtomicI64::new(0);

/// Whether a sqlx error says the disk (or the database's size limit) is full.
pub fn is_full_sqlx(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => matches!(d.code().as_deref(), Some("13" | "53100")),
        _ => false,
    }
}

/// Whether a direct SQLite connection's error says the disk is full.
pub fn is_full_rusqlite(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull)
}

/// Records that a write failed for lack of space (the first time since writes last worked).
pub(super) fn noted_full() {
    let now = crate::clock::now().max(1);
    if FULL_SINCE
        .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        tracing::error!(
            "the database cannot write: its disk is full; writes answer 503 until space returns"
        );
    }
}

/// Records that a write needing new space succeeded.
pub(super) fn space_back() {
    if FULL_SINCE.swap(0, Ordering::AcqRel) != 0 {
        tracing::info!("the database writes again: space is back");
    }
}

/// Since when (unix seconds) writes fail for lack of space, if they do.
pub fn full_since() -> Option<i64> {
    match FULL_SINCE.load(Ordering::Acquire) {
        0 => None,
        at => Some(at),
    }
}
