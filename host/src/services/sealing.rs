//! Stored secrets and the keys that seal them: how many values each key sealed
//! (`integration-host crypto status`), and re-sealing every value under the newest key in
//! batches (`integration-host crypto rewrap`), after which the older keys can be removed.
//!
//! A rewrap is safe while servers run (a value another process changed meanwhile is left as it
//! is) and resumable (values the newest key sealed are skipped, so running it again continues
//! where a stopped run ended). A value no configured key opens is counted and named, never
//! changed.

use std::collections::BTreeMap;

use crate::crypto::{SecretBox, SecretBoxError};
use crate::store::{Reseal, SealedColumn, Store, StoreError};

/// Values of one column by the key that sealed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnKeys {
    pub column: SealedColumn,
    /// Key id to number of values.
    pub by_key: BTreeMap<String, u64>,
}

/// A value that could not be re-sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub column: SealedColumn,
    pub id: i64,
    pub error: SecretBoxError,
}

/// How far a rewrap got through one column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Values looked at.
    pub checked: u64,
    /// Values sealed again under the newest key.
    pub resealed: u64,
    /// Values another process changed meanwhile (they are under the newest key once that
    /// process runs with it).
    pub skipped: u64,
    /// Values no configured key opens.
    pub unreadable: u64,
}

/// What a rewrap did.
#[derive(Debug, Clone, Default)]
pub struct RewrapReport {
    pub columns: Vec<(SealedColumn, Progress)>,
    /// The first values that could not be re-sealed (up to 20).
    pub unreadable: Vec<Unreadable>,
}

/// How many unreadable values a report names.
const NAMED_UNREADABLE: usize = 20;

/// Counts the stored values of every sealed column by the key that sealed them.
pub async fn census(store: &Store, batch: i64) -> Result<Vec<ColumnKeys>, StoreError> {
    let mut out = Vec::new();
    for column in SealedColumn::ALL {
        let mut by_key = BTreeMap::new();
        let mut after = 0;
        loop {
            let rows = store.sealed_values(column, after, batch).await?;
            let Some((last, _)) = rows.last() else { break };
            after = *last;
            for (_, sealed) in &rows {
                let id = SecretBox::key_id_of(sealed).unwrap_or("(malformed)");
                *by_key.entry(id.to_owned()).or_insert(0) += 1;
            }
        }
        out.push(ColumnKeys { column, by_key });
    }
    Ok(out)
}

/// Seals every stored value under the newest key of `secrets`, `batch` rows per transaction;
/// `progress` hears about each batch.
pub async fn rewrap(
    store: &Store,
    secrets: &SecretBox,
    batch: i64,
    mut progress: impl FnMut(SealedColumn, &Progress),
) -> Result<RewrapReport, StoreError> {
    let mut report = RewrapReport::default();
    for column in SealedColumn::ALL {
        let mut done = Progress::default();
        let mut after = 0;
        loop {
            let rows = store.sealed_values(column, after, batch).await?;
            let Some((last, _)) = rows.last() else { break };
            after = *last;
            let mut changes = Vec::new();
            for (id, sealed) in rows {
                done.checked += 1;
                match secrets.reseal(column.name(), &sealed) {
                    Ok(None) => {}
                    Ok(Some(new)) => changes.push(Reseal {
                        id,
                        old: sealed,
                        new,
                    }),
                    Err(error) => {
                        done.unreadable += 1;
                        if report.unreadable.len() < NAMED_UNREADABLE {
                            report.unreadable.push(Unreadable { column, id, error });
                        }
                    }
                }
            }
            let replaced = store.reseal(column, &changes).await?;
            done.resealed += replaced;
            done.skipped += changes.len() as u64 - replaced;
            progress(column, &done);
        }
        report.columns.push((column, done));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_named_as_the_purposes_their_values_are_sealed_for() {
        // The services seal each column's values for the purpose `table.column`; a rewrap
        // opens them with the column's name.
        assert_eq!(
            SealedColumn::ConsumerSecret.name(),
            crate::services::oauth::CONSUMER_SECRET
        );
        assert_eq!(
            SealedColumn::TokenValue.name(),
            crate::services::oauth::TOKEN_VALUE
        );
        assert_eq!(
            SealedColumn::TokenSecret.name(),
            crate::services::oauth::TOKEN_SECRET
        );
        assert_eq!(
            SealedColumn::TokenVerifier.name(),
            crate::services::oauth::TOKEN_VERIFIER
        );
        assert_eq!(
            SealedColumn::TokenValue.name(),
            crate::services::tokens::USER_TOKEN_VALUE
        );
        assert_eq!(
            SealedColumn::TokenSecret.name(),
            crate::services::tokens::USER_TOKEN_SECRET
        );
    }
}
