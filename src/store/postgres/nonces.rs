//! The nonce lane. Every signed request spends a replay-protection nonce, so these are by far
//! the most frequent writes, and they need none of what a general write pays for: a savepoint
//! each, SERIALIZABLE, the write lock (an insert that does nothing on a duplicate cannot make
//! another node's transaction unserializable). A thread of their own therefore spends whatever
//! is queued in one statement — one autocommit transaction, committed without waiting for the
//! disk (`Durability::Process`) — and answers each request from its row.

use std::collections::HashMap;
use std::sync::mpsc;

use super::conn::Conn;
use super::{next_group, patiently, StoreError};
use crate::api::error::ApiResult;
use crate::store::{Nonce, NonceSpend};

/// A queued nonce and where its outcome goes.
pub(super) type Spend = (Nonce, tokio::sync::oneshot::Sender<ApiResult<NonceSpend>>);

/// The lane's session: its commits are not waited for on disk.
pub(super) const SESSION: &str = "SET synchronous_commit = off";

/// Spends a batch of distinct nonces: each one of an enabled key is inserted unless it is there
/// already. In the order of their keys, so that two nodes' batches cannot deadlock on them.
const SPEND: &str = "WITH b AS (SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS b (key, nonce, expires_ms, i)),
     spent AS (INSERT INTO nonces (access_key_id, nonce, expires_ms)
               SELECT b.key, b.nonce, b.expires_ms FROM b JOIN access_keys k ON k.id = b.key AND k.enabled
               ORDER BY b.key, b.nonce
               ON CONFLICT (access_key_id, nonce) DO NOTHING RETURNING access_key_id, nonce)
SELECT b.i, COALESCE(k.enabled, FALSE), s.nonce IS NOT NULL
FROM b LEFT JOIN access_keys k ON k.id = b.key LEFT JOIN spent s ON s.access_key_id = b.key AND s.nonce = b.nonce";

/// Spends `batch` on `conn` (in the transaction open there, if any), in one round trip. The
/// same nonce twice in a batch is spent by its first occurrence; the others are replays.
pub(super) fn spend(conn: &mut Conn, batch: &[&Nonce]) -> Result<Vec<NonceSpend>, StoreError> {
    let mut first: HashMap<(&str, &str), usize> = HashMap::with_capacity(batch.len());
    let (mut keys, mut nonces, mut expiries) = (Vec::new(), Vec::new(), Vec::new());
    for n in batch {
        first.entry((&n.access_key_id, &n.nonce)).or_insert_with(|| {
            keys.push(n.access_key_id.as_str());
            nonces.push(n.nonce.as_str());
            expiries.push(n.expires_ms);
            keys.len() - 1
        });
    }
    let rows = conn.query(SPEND, &[&keys, &nonces, &expiries])?;
    let mut found: Vec<Option<NonceSpend>> = vec![None; keys.len()];
    for row in &rows {
        let outcome = match (row.get::<_, bool>(1), row.get::<_, bool>(2)) {
            (false, _) => NonceSpend::KeyDisabled,
            (true, true) => NonceSpend::Spent,
            (true, false) => NonceSpend::Replayed,
        };
        // Numbered from 1.
        if let Some(slot) = usize::try_from(row.get::<_, i64>(0) - 1).ok().and_then(|i| found.get_mut(i)) {
            *slot = Some(outcome);
        }
    }
    let mut seen = vec![false; keys.len()];
    batch
        .iter()
        .map(|n| {
            let i = first[&(n.access_key_id.as_str(), n.nonce.as_str())];
            let outcome = found[i].ok_or_else(|| StoreError::Internal("a nonce had no answer".into()))?;
            // The first occurrence spent it; the others replay it.
            let again = std::mem::replace(&mut seen[i], true);
            Ok(if again && outcome == NonceSpend::Spent { NonceSpend::Replayed } else { outcome })
        })
        .collect()
}

/// The lane's thread: takes what is queued, spends it in one statement, answers each.
pub(super) fn lane(config: tokio_postgres::Config, queue: mpsc::Receiver<Spend>) {
    let mut conn: Option<Conn> = None;
    while let Some(batch) = next_group(&queue) {
        let nonces: Vec<&Nonce> = batch.iter().map(|(n, _)| n).collect();
        let started = std::time::Instant::now();
        // A conflict (two nodes' batches deadlocked) spent nothing: run again. A connection lost
        // while the statement was out leaves unknown whether it committed, so it is not run again
        // (its nonces would come back as replays): the callers hear that it failed.
        let spent = patiently(&config, &mut conn, SESSION, |c, _| match spend(c, &nonces) {
            Err(e @ StoreError::Unavailable(_)) => Ok(Err(e)),
            other => other.map(Ok),
        })
        .and_then(|spent| spent);
        crate::metrics::commit(batch.len(), started.elapsed());
        if matches!(spent, Err(StoreError::Unavailable(_))) {
            conn = None;
        }
        match spent {
            Ok(outcomes) => {
                for ((_, reply), outcome) in batch.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, nonces = batch.len(), "spending nonces failed");
                for (_, reply) in batch {
                    let _ = reply.send(Err(e.clone().into()));
                }
            }
        }
    }
}
