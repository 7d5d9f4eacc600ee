//! The background workers that carry resources through their lifecycles and keep the data plane
//! in step with the store. Handlers only record intent (a resource in `init`/`updating`/
//! `deleting` plus a durable task); the reconciler runs due tasks, so a restart simply picks up
//! whatever is still queued.
//!
//! A gateway task that needs the data plane runs in three phases: read the gateway's plan in one
//! transaction, hand it to the data plane outside any transaction, record the outcome in a
//! second one (guarded by the gateway's generation, see `gateway_sync::record`). The single
//! writer thread therefore never waits for a daemon.
//!
//! A second worker records the data plane's events, in batches, backing off while the store
//! fails. At start, a data plane that runs real things is handed every gateway of this node's
//! host (it adopts what still runs and converges) and is rid of whatever else runs. A gateway
//! host also keeps its heartbeat and reports the gateways of hosts gone silent as down (see
//! `actions::gateway_hosts`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;

use crate::actions::gateway_hosts::{self, ADOPT_TASK, EVICT_TASK};
use crate::actions::gateway_sync;
use crate::actions::vpn_connections::VpnConnection;
use crate::actions::vpn_gateways::{GatewayStatus, VpnGateway};
use crate::api::error::{ApiError, ApiResult};
use crate::app::{App, CLIENT_TOKEN_TTL_MS};
use crate::control::RESYNC_TASK;
use crate::dataplane::{DataPlane, Event};
use crate::store::{now_ms, Durability, Heartbeat, Resource, Task, TxExt};

/// How many due tasks one pass takes on.
const BATCH: u64 = 256;
/// The longest the loop sleeps without looking (also how often expired nonces are purged).
const IDLE: Duration = Duration::from_secs(30);
/// How long a resync waits for a gateway that is changing.
const RESYNC_RETRY_MS: i64 = 200;
/// How many gateways converge at once after a start.
const CONVERGE_PARALLELISM: usize = 8;
/// How often a node on a shared database looks for tasks that other nodes queued (they cannot
/// wake it).
const SHARED_POLL: Duration = Duration::from_millis(250);
/// How many heartbeats a gateway host sends per host lease.
const HEARTBEATS_PER_LEASE: u32 = 5;

/// Everything the reconciler drives.
pub struct Reconciler {
    pub app: Arc<App>,
    pub plane: Arc<dyn DataPlane>,
}

impl Reconciler {
    /// Runs until `stop` turns true: converges the data plane, then runs tasks and records
    /// events. Returns once both workers have stopped.
    pub async fn run(self: Arc<Self>, events: UnboundedReceiver<Event>, stop: watch::Receiver<bool>) {
        let recorder = tokio::spawn(record_events(self.app.clone(), events, stop.clone()));
        let beating = self.app.config.host.is_some().then(|| tokio::spawn(self.clone().keep_host(stop.clone())));
        if self.plane.stateful() {
            if let Err(e) = self.converge().await {
                tracing::error!(error = %e, "converging the data plane failed");
            }
        }
        self.clone().run_tasks(stop).await;
        let _ = recorder.await;
        if let Some(beating) = beating {
            let _ = beating.await;
        }
    }

    /// The name this node runs gateways under; empty in the emulator.
    fn host(&self) -> &str {
        self.app.config.host.as_deref().unwrap_or_default()
    }

    /// A gateway host's heartbeat, until `stop`: renews it, converges again when another node
    /// had marked this host down meanwhile (what runs here must be reported anew), and marks
    /// silent hosts down.
    async fn keep_host(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let (app, lease) = (&self.app, self.app.config.host_lease);
        let every = lease / HEARTBEATS_PER_LEASE;
        while !*stop.borrow() {
            let (host, id, now) = (self.host().to_string(), app.config.host_id.clone(), now_ms());
            let stale = gateway_hosts::stale_before(now, lease);
            let beat = app.store.write_with(Durability::Process, move |tx| tx.host_heartbeat(&host, &id, now, stale));
            match beat.await {
                Ok(Heartbeat::Renewed) => {}
                Ok(Heartbeat::Revived) => {
                    tracing::warn!(host = self.host(), "this host had been marked down: reporting its gateways again");
                    if let Err(e) = self.converge().await {
                        tracing::error!(error = %e, "converging the data plane failed");
                    }
                }
                Ok(Heartbeat::Taken) => {
                    tracing::error!(host = self.host(), "another node runs as this gateway host");
                }
                Err(e) => tracing::error!(error = %e, "renewing the gateway host's heartbeat failed"),
            }
            // A write only when some host fell silent: most beats find none.
            let silent = app.store.read(|tx| gateway_hosts::silent(tx, now_ms(), lease));
            if silent.is_ok_and(|s| !s.is_empty()) {
                let key = app.master_key.clone();
                match app.store.write(move |tx| gateway_hosts::mark_down(tx, &key, now_ms(), lease)).await {
                    Ok(down) => down.iter().for_each(|h| {
                        tracing::warn!(host = h, "gateway host down: its gateways' connections are shown down")
                    }),
                    Err(e) => tracing::error!(error = %e, "marking silent gateway hosts down failed"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                changed = stop.changed() => if changed.is_err() { return },
            }
        }
    }

    async fn run_tasks(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let app = &self.app;
        if !app.store.shared() {
            // A lone node: whoever held a lease before this start is gone.
            if let Err(e) = app.store.write(|tx| tx.release_leases()).await {
                tracing::error!(error = %e, "releasing task leases failed");
            }
        }
        let mut last_purge = 0;
        while !*stop.borrow() {
            // After a failure, back off instead of retrying a failing step in a tight loop.
            // Transitions held by the control API wait for its resume (which pokes the loop).
            let paused = app.control.paused();
            let healthy = match if paused { Ok(true) } else { self.pass().await } {
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
            let next = app.store.read(|tx| tx.next_due_ms(self.host())).ok().flatten();
            let mut wait = match next {
                _ if paused => IDLE,
                Some(due) => Duration::from_millis((due - now_ms()).clamp(0, IDLE.as_millis() as i64) as u64),
                None => IDLE,
            };
            if !healthy {
                wait = wait.max(Duration::from_secs(1));
            }
            if app.store.shared() {
                wait = wait.min(SHARED_POLL);
            }
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::timeout(wait, app.tasks_queued.notified()) => {}
                    changed = stop.changed() => if changed.is_err() { return },
                }
            }
        }
    }

    /// Claims every task that is due now and runs them all at once (their store steps share
    /// group commits); false if any failed.
    async fn pass(self: &Arc<Self>) -> ApiResult<bool> {
        let (store, now) = (&self.app.store, now_ms());
        if store.read(|tx| tx.next_due_ms(self.host()))?.is_none_or(|due| due > now) {
            return Ok(true);
        }
        // Losing a claim in a crash loses nothing: the lease dies with its node.
        let (node, lease_until) = (self.app.node.clone(), now + self.app.config.task_lease.as_millis() as i64);
        let host = self.host().to_string();
        let tasks = store
            .write_with(Durability::Process, move |tx| tx.claim_tasks(&node, &host, now, lease_until, BATCH))
            .await?;
        let running: Vec<_> = tasks
            .into_iter()
            .map(|task| {
                let me = self.clone();
                (task.resource_id.clone(), tokio::spawn(async move { me.run_task(task).await }))
            })
            .collect();
        let mut ok = true;
        for (id, handle) in running {
            let outcome = handle.await.unwrap_or_else(|e| Err(ApiError::internal(e)));
            if let Err(e) = outcome {
                tracing::error!(resource = id, error = %e, "task step failed");
                ok = false;
            }
        }
        Ok(ok)
    }

    /// One step of one task.
    async fn run_task(&self, task: Task) -> ApiResult<()> {
        crate::metrics::task_started(now_ms() - task.due_ms);
        if task.kind == VpnConnection::KIND && task.op == RESYNC_TASK {
            return self.resync(task).await;
        }
        if task.kind != VpnGateway::KIND {
            return Err(ApiError::internal(format!("no lifecycle for kind {}", task.kind)));
        }
        let (account, id, store) = (task.account_id, task.resource_id.clone(), &self.app.store);
        match (task.op.as_str(), task.step) {
            ("create", 0) => {
                // An expedited task (the control API's `complete`) takes no more time.
                let delay = if task.expedited { 0 } else { self.app.config.transition_delay.as_millis() as i64 };
                let due = now_ms() + delay - delay / 2;
                let gateway = id.clone();
                store
                    .write(move |tx| {
                        gateway_sync::provision(tx, account, &id)?;
                        tx.advance_task(&task, 1, due)
                    })
                    .await?;
                tracing::info!(gateway, account, status = "provisioning", "gateway");
                Ok(())
            }
            ("create", _) | ("update", _) | (ADOPT_TASK, _) => self.sync(account, &id, Some(task)).await,
            (EVICT_TASK, _) => {
                // The gateway moved to another host: this one lets go of it, then the other starts it.
                self.plane.remove(&id).await.map_err(|e| ApiError::internal(format!("removing {id}: {e}")))?;
                let gateway = id.clone();
                store
                    .write(move |tx| {
                        gateway_hosts::evicted(tx, account, &id, now_ms())?;
                        tx.finish_task(&task)
                    })
                    .await?;
                tracing::info!(gateway, account, "gateway moved to another host");
                Ok(())
            }
            ("delete", _) => {
                self.plane.remove(&id).await.map_err(|e| ApiError::internal(format!("removing {id}: {e}")))?;
                let gateway = id.clone();
                store
                    .write(move |tx| {
                        gateway_sync::forget(tx, account, &id)?;
                        tx.finish_task(&task)
                    })
                    .await?;
                tracing::info!(gateway, account, status = "deleted", "gateway");
                Ok(())
            }
            (op, _) => Err(ApiError::internal(format!("unknown gateway task {op}"))),
        }
    }

    /// Brings one gateway's data plane to the store's desired state (the three phases). With a
    /// task, the gateway and its changed connections then settle (`active`) and the task ends;
    /// without (convergence), only what the data plane reports is recorded.
    async fn sync(&self, account_id: i64, gateway_id: &str, task: Option<Task>) -> ApiResult<()> {
        let (app, complete) = (&self.app, self.plane.stateful());
        let plan = app.store.read(|tx| {
            let gw = tx.get_as::<VpnGateway>(account_id, gateway_id)?;
            gw.map(|gw| gateway_sync::plan(tx, &app.master_key, &gw, complete)).transpose()
        })?;
        let Some(plan) = plan else {
            // The gateway is gone: nothing to apply.
            return match task {
                Some(t) => app.store.write(move |tx| tx.finish_task(&t)).await,
                None => Ok(()),
            };
        };
        let generation = plan.generation;
        let report = match self.plane.apply(plan.clone()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(gateway = gateway_id, error = %e, "the data plane failed to apply the gateway");
                gateway_sync::failed_report(&plan, &e.to_string())
            }
        };
        let id = gateway_id.to_string();
        app.store
            .write(move |tx| {
                let recorded = gateway_sync::record(tx, account_id, &id, generation, &report, task.is_some())?;
                if !recorded {
                    tracing::info!(gateway = id, generation, "a newer change superseded this outcome");
                } else if task.is_some() {
                    tracing::info!(gateway = id, account = account_id, generation, status = "active", "gateway");
                }
                match &task {
                    Some(t) => tx.finish_task(t),
                    None => Ok(()),
                }
            })
            .await
    }

    /// Hands one connection, with the tunnel status an operator forced, to the data plane and
    /// records what it reports (statuses only: the gateway's lifecycle is not touched). A
    /// gateway mid-change is waited for.
    async fn resync(&self, task: Task) -> ApiResult<()> {
        let (app, account_id, complete) = (&self.app, task.account_id, self.plane.stateful());
        let conn_id = task.resource_id.clone();
        let plan = app.store.read(|tx| {
            let Some(conn) = tx.get_as::<VpnConnection>(account_id, &conn_id)? else { return Ok(None) };
            let Some(gw) = tx.get_as::<VpnGateway>(account_id, &conn.vpn_gateway_id)? else { return Ok(None) };
            if gw.status != GatewayStatus::Active {
                return Ok(Some(None));
            }
            let mut plan = gateway_sync::plan(tx, &app.master_key, &gw, true)?;
            if !complete {
                plan.connections.retain(|c| c.id == conn_id);
            }
            plan.connections.iter_mut().filter(|c| c.id == conn_id).for_each(|c| c.changed = true);
            Ok(Some(Some(plan)))
        })?;
        let plan = match plan {
            None => return app.store.write(move |tx| tx.finish_task(&task)).await,
            Some(None) => {
                let later = now_ms() + RESYNC_RETRY_MS;
                return app.store.write(move |tx| tx.advance_task(&task, task.step, later)).await;
            }
            Some(Some(plan)) => plan,
        };
        let (gateway_id, generation) = (plan.gateway_id.clone(), plan.generation);
        let report = self.plane.apply(plan).await.map_err(|e| ApiError::internal(format!("resync {conn_id}: {e}")))?;
        app.store
            .write(move |tx| {
                if gateway_sync::record(tx, account_id, &gateway_id, generation, &report, false)? {
                    tx.finish_task(&task)
                } else {
                    tx.advance_task(&task, task.step, now_ms() + RESYNC_RETRY_MS)
                }
            })
            .await
    }

    /// After a start, and when this host finds it was marked down: every gateway of this host is
    /// handed to the data plane (which adopts what still runs and reports it), and whatever else
    /// runs (gone from the store, or moved to another host meanwhile) is removed. Gateways of no
    /// host (made before hosts were) become this host's.
    async fn converge(self: &Arc<Self>) -> ApiResult<()> {
        let started = std::time::Instant::now();
        // What runs is listed before the store is read: a gateway whose namespace appears
        // meanwhile (a task of this host's, when converging again) is in that read already, so it
        // is never taken for a leftover.
        let running = self.plane.running().await.map_err(|e| ApiError::internal(e.to_string()))?;
        let host = self.host().to_string();
        let gateways = self
            .app
            .store
            .write(move |tx| {
                let mut mine = Vec::new();
                for mut gw in gateway_sync::live_gateways(tx)? {
                    if gw.host.is_empty() && !host.is_empty() {
                        gw.host = host.clone();
                        tx.update_as(&gw)?;
                        tx.move_tasks(std::slice::from_ref(&gw.id), &host)?;
                    }
                    if gw.host == host {
                        mine.push(gw);
                    }
                }
                Ok(mine)
            })
            .await?;
        let known: HashSet<String> = gateways.iter().map(|g| g.id.clone()).collect();
        let work = gateways
            .into_iter()
            .filter(|g| matches!(g.status, GatewayStatus::Active | GatewayStatus::Updating))
            .map(|g| (g.account_id, g.id));
        let semaphore = Arc::new(tokio::sync::Semaphore::new(CONVERGE_PARALLELISM));
        let mut syncing = Vec::new();
        for (account, id) in work {
            let (me, permit) = (self.clone(), semaphore.clone().acquire_owned().await.map_err(ApiError::internal)?);
            syncing.push(tokio::spawn(async move {
                let outcome = me.sync(account, &id, None).await;
                drop(permit);
                (id, outcome)
            }));
        }
        let count = syncing.len();
        for handle in syncing {
            if let Ok((id, Err(e))) = handle.await {
                tracing::error!(gateway = id, error = %e, "converging the gateway failed");
            }
        }
        for leftover in running.into_iter().filter(|r| !known.contains(&r.gateway_id)) {
            tracing::info!(gateway = leftover.gateway_id, "removing a gateway that is not this host's");
            if let Err(e) = self.plane.remove(&leftover.gateway_id).await {
                tracing::error!(gateway = leftover.gateway_id, error = %e, "removing a leftover gateway failed");
            }
        }
        tracing::info!(gateways = count, elapsed_ms = started.elapsed().as_millis() as u64, "data plane converged");
        Ok(())
    }
}

/// How many events one write records at most.
const EVENT_BATCH: usize = 512;
const EVENT_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Records the data plane's events until the channel closes or `stop` turns true. A batch that
/// fails to commit is retried, backing off, so no event is lost while the store recovers.
async fn record_events(app: Arc<App>, mut events: UnboundedReceiver<Event>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        // On stop, what is already queued is still recorded (once), then the worker ends.
        let stopping = *stop.borrow();
        let first = if stopping {
            events.try_recv().ok()
        } else {
            tokio::select! {
                e = events.recv() => e,
                // A dropped sender means no one will ever say stop: end here.
                changed = stop.changed() => if changed.is_ok() { continue } else { None },
            }
        };
        let Some(first) = first else { return };
        let mut batch = vec![first];
        while batch.len() < EVENT_BATCH {
            match events.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        for e in &batch {
            crate::metrics::dataplane_event(event_kind(e));
            match e {
                Event::Tunnel { gateway_id, connection_id, tunnel_id, status, cause, .. } => tracing::info!(
                    gateway = gateway_id,
                    connection = connection_id,
                    tunnel = tunnel_id,
                    status = status.wire(),
                    cause,
                    "tunnel"
                ),
                Event::Bgp { gateway_id, report, .. } => tracing::info!(
                    gateway = gateway_id,
                    connection = report.connection_id,
                    sessions = ?report.tunnels.iter().map(|(t, s)| format!("{t}={}", s.wire())).collect::<Vec<_>>(),
                    learned = report.learned_routes.len(),
                    "bgp"
                ),
                _ => {}
            }
        }
        let batch = Arc::new(batch);
        loop {
            let b = batch.clone();
            match app.store.write(move |tx| gateway_sync::record_events(tx, &b)).await {
                Ok(()) => {
                    backoff = Duration::from_millis(50);
                    break;
                }
                Err(e) if stopping => {
                    tracing::error!(error = %e, events = batch.len(), "recording data-plane events failed at shutdown");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, events = batch.len(), "recording data-plane events failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => return,
                    }
                    backoff = (backoff * 2).min(EVENT_BACKOFF_MAX);
                }
            }
        }
    }
}

/// The metrics' name for an event's kind.
fn event_kind(e: &Event) -> &'static str {
    match e {
        Event::Tunnel { .. } => "tunnel",
        Event::Bgp { .. } => "bgp",
        Event::Health { .. } => "health",
        Event::IpsecServer { .. } => "ipsec_server",
        Event::SslVpn { .. } => "ssl_vpn",
    }
}
