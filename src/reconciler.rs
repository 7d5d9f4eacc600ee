//! The background worker that carries resources through their lifecycles. Handlers only record
//! intent (a resource in `init`/`deleting` plus a durable task); this loop runs due tasks, one
//! transaction per step, so a restart simply picks up whatever is still queued.

use std::sync::Arc;
use std::time::Duration;

use crate::actions::vpn_gateways::{self, VpnGateway};
use crate::api::error::{ApiError, ApiResult};
use crate::app::{App, CLIENT_TOKEN_TTL_MS};
use crate::store::{now_ms, Resource, Task, Tx};

/// How many due tasks one pass takes on.
const BATCH: u64 = 256;
/// The longest the loop sleeps without looking (also how often expired nonces are purged).
const IDLE: Duration = Duration::from_secs(30);

pub async fn run(app: Arc<App>) {
    let mut last_purge = 0;
    loop {
        // After a failure, back off instead of retrying a failing step in a tight loop.
        let healthy = match pass(&app).await {
            Ok(ok) => ok,
            Err(e) => {
                tracing::error!(error = %e, "reconciler pass failed");
                false
            }
        };
        let now = now_ms();
        if now - last_purge >= IDLE.as_millis() as i64 {
            last_purge = now;
            if let Err(e) = app.store.write(move |tx| tx.purge_expired(now, CLIENT_TOKEN_TTL_MS)).await {
                tracing::error!(error = %e, "purge failed");
            }
        }
        let next = app.store.read(|tx| tx.next_due_ms()).ok().flatten();
        let mut wait = match next {
            Some(due) => Duration::from_millis((due - now_ms()).clamp(0, IDLE.as_millis() as i64) as u64),
            None => IDLE,
        };
        if !healthy {
            wait = wait.max(Duration::from_secs(1));
        }
        if !wait.is_zero() {
            let _ = tokio::time::timeout(wait, app.tasks_queued.notified()).await;
        }
    }
}

/// Runs every task that is due now; false if any step failed.
async fn pass(app: &Arc<App>) -> ApiResult<bool> {
    let tasks = app.store.read(|tx| tx.due_tasks(now_ms(), BATCH))?;
    let delay_ms = app.config.transition_delay.as_millis() as i64;
    // Queued all at once, the steps share group commits.
    let pending: Vec<_> = tasks
        .into_iter()
        .map(|task| (task.resource_id.clone(), app.store.write(move |tx| step(tx, &task, delay_ms))))
        .collect();
    let mut ok = true;
    for (id, outcome) in pending {
        if let Err(e) = outcome.await {
            tracing::error!(resource = id, error = %e, "task step failed");
            ok = false;
        }
    }
    Ok(ok)
}

/// One step of one task, in one transaction.
fn step(tx: &mut dyn Tx, task: &Task, delay_ms: i64) -> ApiResult<()> {
    let next = match task.kind.as_str() {
        VpnGateway::KIND => {
            vpn_gateways::advance(tx, task.account_id, &task.resource_id, &task.op, task.step, delay_ms)?
        }
        other => return Err(ApiError::internal(format!("no lifecycle for kind {other}"))),
    };
    match next {
        Some(due) => tx.advance_task(task.id, task.step + 1, due),
        None => tx.finish_task(task.id),
    }
}
