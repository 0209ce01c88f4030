//! What both writers share: a nonce waiting for its answer, the batch's bookkeeping, the
//! writer's counters, and how long a nonce is remembered.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::answer::{Answers, Reply};
use crate::store::StoreError;

/// Largest number of nonces written in one batch.
pub(super) const MAX_BATCH: usize = 512;

/// A nonce waiting for the writer, and where its answer goes.
pub(super) struct Pending {
    pub(super) consumer_id: i64,
    pub(super) nonce: String,
    pub(super) timestamp: i64,
    pub(super) reply: Reply,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("consumer_id", &self.consumer_id)
            .finish_non_exhaustive()
    }
}

/// What the writer has done since it started: how well nonces group into commits.
#[derive(Debug, Default)]
pub struct NonceStats {
    pub(super) batches: AtomicU64,
    pub(super) nonces: AtomicU64,
}

impl NonceStats {
    /// Transactions committed (each holding one batch).
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Nonces written: on SQLite the new ones; on PostgreSQL every one sent to be inserted (a
    /// copy repeated within one batch is not sent).
    pub fn nonces(&self) -> u64 {
        self.nonces.load(Ordering::Relaxed)
    }

    pub(super) fn committed(&self, nonces: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.nonces.fetch_add(nonces as u64, Ordering::Relaxed);
    }
}

/// Splits off the copies of a nonce repeated within a batch (answered "used").
pub(super) fn dedupe(batch: Vec<Pending>, answers: &mut Answers) -> Vec<Pending> {
    let mut seen = HashSet::with_capacity(batch.len());
    let mut unique = Vec::with_capacity(batch.len());
    for p in batch {
        if seen.insert((p.consumer_id, p.nonce.clone())) {
            unique.push(p);
        } else {
            answers.send(p.reply, Ok(false));
        }
    }
    unique
}

/// Answers every nonce of a batch with its error.
pub(super) fn fail(batch: Vec<Pending>, error: StoreError) {
    let error = Arc::new(error);
    let mut answers = Answers::default();
    for p in batch {
        answers.send(p.reply, Err(error.clone()));
    }
}

/// How long after its timestamp's window a nonce is still remembered: room for the clocks of
/// several server processes on one machine to differ a little.
pub(super) const MARGIN_SECONDS: i64 = 60;

/// Seconds after its timestamp a nonce counts as used: the window and a margin.
pub(super) fn keep_seconds(window: u64) -> i64 {
    i64::try_from(window)
        .unwrap_or(i64::MAX / 4)
        .saturating_add(MARGIN_SECONDS)
}
