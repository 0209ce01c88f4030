//! The PostgreSQL writer: a task with a connection of its own, each batch sent as three
//! arrays in one statement; the key (consumer, nonce) decides across processes.

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::Connection as _;

use super::answer::Answers;
use super::batch::{MAX_BATCH, NonceStats, Pending, dedupe, fail};
use crate::store::Store;

/// The PostgreSQL writer task, with a connection of its own (outside the pool, so closing the
/// pool does not wait for it).
pub(super) async fn writer(
    store: Store,
    keep: i64,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Pending>,
    stats: Arc<NonceStats>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut conn: Option<sqlx::PgConnection> = None;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut answers = Answers::default();
        let mut unique = dedupe(std::mem::take(&mut batch), &mut answers);
        // In key order, so that two processes inserting overlapping batches take the rows'
        // locks in one order and cannot deadlock.
        unique.sort_unstable_by(|a, b| (a.consumer_id, &a.nonce).cmp(&(b.consumer_id, &b.nonce)));
        if let Err(e) = store.ensure_available() {
            fail(unique, e);
            continue;
        }
        // A connection the database dropped (it restarted since the last batch) fails before
        // the statement runs: connect again and send the batch once more.
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            if conn.is_none() {
                let crate::store::Pool::Postgres(p) = &store.pool else {
                    unreachable!("the task writer serves PostgreSQL")
                };
                match sqlx::PgConnection::connect_with(&p.connect_options()).await {
                    Ok(c) => conn = Some(c),
                    Err(e) => break Err(e),
                }
            }
            let c = conn.as_mut().expect("connected above");
            match insert_postgres(c, &unique, crate::clock::now().saturating_sub(keep)).await {
                Ok(inserted) => break Ok(inserted),
                Err(e) => {
                    // The connection may be what failed: connect again next time.
                    conn = None;
                    if attempt == 1 && is_dropped_connection(&e) {
                        continue;
                    }
                    break Err(e);
                }
            }
        };
        match result {
            Ok(inserted) => {
                stats.committed(unique.len());
                let inserted: HashSet<(i64, String)> = inserted.into_iter().collect();
                for p in unique {
                    let fresh = inserted.contains(&(p.consumer_id, p.nonce));
                    answers.send(p.reply, Ok(fresh));
                }
            }
            Err(e) => fail(unique, e.into()),
        }
    }
}

/// Whether the connection had been closed by the server (a restart terminates every connection
/// with 57P01; a closed socket fails the write), so that the batch is worth sending again on a
/// new one. Should the first attempt have committed after all, the second finds the nonces
/// taken and those requests are refused as replays: the safe side.
fn is_dropped_connection(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| matches!(&*c, "57P01" | "57P02")),
        _ => false,
    }
}

/// Inserts the batch from three arrays and answers the (consumer, nonce) pairs that were new,
/// aggregated in one row. A nonce last used with a timestamp before `cutoff` (out of the
/// window, not yet cleaned up) is new again, as on SQLite: its row takes the new timestamp.
pub(super) async fn insert_postgres(
    conn: &mut sqlx::PgConnection,
    batch: &[Pending],
    cutoff: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let nonces: Vec<&str> = batch.iter().map(|n| n.nonce.as_str()).collect();
    let timestamps: Vec<i64> = batch.iter().map(|n| n.timestamp).collect();
    let consumers: Vec<i64> = batch.iter().map(|n| n.consumer_id).collect();
    let (ids, values): (Vec<i64>, Vec<String>) = sqlx::query_as(
        "WITH ins AS (
             INSERT INTO oauth_nonce (nonce, timestamp, consumer_id)
             SELECT n.* FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) AS n (nonce, ts, consumer)
             WHERE EXISTS (SELECT 1 FROM oauth_consumer c WHERE c.id = n.consumer)
             ON CONFLICT (consumer_id, nonce) DO UPDATE SET timestamp = EXCLUDED.timestamp
                 WHERE oauth_nonce.timestamp < $4
             RETURNING consumer_id, nonce)
         SELECT COALESCE(array_agg(consumer_id), '{}'), COALESCE(array_agg(nonce), '{}')
         FROM ins",
    )
    .bind(nonces)
    .bind(timestamps)
    .bind(consumers)
    .bind(cutoff)
    .fetch_one(conn)
    .await?;
    Ok(ids.into_iter().zip(values).collect())
}
