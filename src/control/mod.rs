//! The control API's operations: what a test rig or an operator asks of the running server
//! beside the cloud API (`/_gatehouse/<operation>`; `api::control` is its wire). Reset an
//! account, inject faults, force a simulated tunnel's status, hold or hurry lifecycle
//! transitions, list the actions served.
//!
//! Like actions, operations never touch the data plane: a reset queues the removal of what it
//! dropped, a forced tunnel status is stored and a task hands it to the data plane through the
//! reconciler.

pub mod cli;
pub mod faults;

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{json, Map, Value};

use crate::accounts::ROOT_ACCOUNT;
use crate::actions::gateway_sync;
use crate::actions::vpn_connections::{self, VpnConnection};
use crate::actions::vpn_gateways::VpnGateway;
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::app::{App, Body};
use crate::dataplane::TunnelStatus;
use crate::store::{now_ms, Resource, Tx, TxExt};
use faults::{Fault, MAX_COUNT, MAX_LATENCY_MS};

/// The task that hands a connection's forced tunnel status to the data plane.
pub const RESYNC_TASK: &str = "resync";

/// Who may call the control API.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ControlAccess {
    /// Requests signed with an AccessKey of the root account (health and version: anyone).
    #[default]
    Signed,
    /// Anyone who can reach the listener (local test rigs only).
    Open,
}

crate::wire_enum!(
    /// The control API's operations: the path segment after `/_gatehouse/`, which a signed
    /// request also names as its `Action`.
    Operation {
        #[default]
        Health = "health",
        Version = "version",
        Coverage = "coverage",
        Reset = "reset",
        AddFault = "add-fault",
        ListFaults = "list-faults",
        ClearFaults = "clear-faults",
        TunnelStatus = "tunnel-status",
        Pause = "pause",
        Resume = "resume",
        Complete = "complete",
    }
);

impl Operation {
    /// Health and version answer anyone (load balancers, probes).
    pub fn open(self) -> bool {
        matches!(self, Operation::Health | Operation::Version)
    }
}

crate::wire_enum!(
    /// What `tunnel-status` sets a tunnel to.
    ForcedStatus {
        #[default]
        Up = "up",
        Down = "down",
        Clear = "clear",
    }
);

impl ForcedStatus {
    fn tunnel_status(self) -> Option<TunnelStatus> {
        match self {
            ForcedStatus::Up => Some(TunnelStatus::IpsecSaEstablished),
            ForcedStatus::Down => Some(TunnelStatus::IkeSaNotEstablished),
            ForcedStatus::Clear => None,
        }
    }
}

/// The control API's in-memory state: faults and whether lifecycle transitions are held.
#[derive(Default)]
pub struct ControlState {
    pub faults: faults::Faults,
    paused: AtomicBool,
}

impl ControlState {
    /// Whether lifecycle transitions are held (`pause`) until `resume`.
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }
}

/// `{"status","store","dataplane","lifecycle"}`, and whether all is well (the store answers).
pub fn health(app: &App) -> (bool, Value) {
    let store = app.store.read(|tx| tx.task_stats(now_ms()));
    let health = json!({
        "status": if store.is_ok() { "ok" } else { "unavailable" },
        "store": store.as_ref().map_or_else(|e| e.message.clone(), |_| "ok".to_string()),
        "dataplane": if app.config.simulated_dataplane { "simulated" } else { "netns" },
        "lifecycle": if app.control.paused() { "paused" } else { "running" },
    });
    (store.is_ok(), health)
}

/// Runs one operation.
pub async fn run(app: &App, op: Operation, p: &Params) -> ApiResult<Body> {
    match op {
        Operation::Health => Ok(body(health(app).1)),
        Operation::Version => {
            Ok(body(json!({"Version": env!("CARGO_PKG_VERSION"), "ApiVersion": crate::actions::ALIBABA_VERSION,
                "TencentApiVersion": crate::api::tencent::VERSION})))
        }
        Operation::Coverage => Ok(coverage()),
        Operation::Reset => reset(app, p).await,
        Operation::AddFault => add_fault(app, p),
        Operation::ListFaults => {
            let account = optional_account(app, p)?;
            Ok(body(json!({"Faults": app.control.faults.list(account.map(|a| a.0))})))
        }
        Operation::ClearFaults => {
            let account = optional_account(app, p)?;
            Ok(body(json!({"Cleared": app.control.faults.clear(account.map(|a| a.0))})))
        }
        Operation::TunnelStatus => force_tunnel(app, p).await,
        Operation::Pause | Operation::Resume => {
            app.control.paused.store(op == Operation::Pause, Ordering::Relaxed);
            app.tasks_queued.notify_one();
            tracing::info!(paused = op == Operation::Pause, "lifecycle transitions");
            Ok(body(json!({"Paused": op == Operation::Pause})))
        }
        Operation::Complete => {
            let account = optional_account(app, p)?;
            let id = account.map(|a| a.0);
            let n = app.store.write(move |tx| tx.expedite_tasks(id, now_ms())).await?;
            app.tasks_queued.notify_one();
            Ok(body(json!({"Expedited": n, "Paused": app.control.paused()})))
        }
    }
}

fn body(v: Value) -> Body {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Every action served, with the seed that documents it (from the action table itself).
fn coverage() -> Body {
    let actions: Vec<Value> = crate::actions::COVERAGE
        .iter()
        .map(|(dialect, action, seed)| json!({"Dialect": format!("{dialect:?}"), "Action": action, "Seed": seed}))
        .collect();
    body(json!({"TotalCount": actions.len(), "Actions": actions}))
}

/// The account named `name`: its id and name.
fn find_account(app: &App, name: &str) -> ApiResult<(i64, String)> {
    let account = app.store.read(|tx| tx.account_by_name(name))?;
    let account = account
        .ok_or_else(|| ApiError::not_found("Account.NotFound", format!("The account {name:?} does not exist.")))?;
    Ok((account.id, account.name))
}

/// `Account`, if given (none: every account).
fn optional_account(app: &App, p: &Params) -> ApiResult<Option<(i64, String)>> {
    p.get("Account").map(|name| find_account(app, name)).transpose()
}

/// `Account`, the root account when not given.
fn account(app: &App, p: &Params) -> ApiResult<(i64, String)> {
    find_account(app, p.get("Account").unwrap_or(ROOT_ACCOUNT))
}

/// Drops every resource of one account (or of all) in one transaction, with their pending
/// tasks, address leases and ClientToken answers, and the account's faults. The data plane
/// is rid of the dropped gateways by a queued removal, as after DeleteVpnGateway.
async fn reset(app: &App, p: &Params) -> ApiResult<Body> {
    let account = optional_account(app, p)?;
    let id = account.as_ref().map(|a| a.0);
    let dropped = app
        .store
        .write(move |tx| {
            // Each removal goes to the host that runs the gateway.
            let hosts: std::collections::HashMap<String, String> =
                gateway_sync::live_gateways(tx)?.into_iter().map(|g| (g.id, g.host)).collect();
            let dropped = tx.drop_resources(id)?;
            for r in &dropped {
                tx.release_addresses(&r.id)?;
                if r.kind == VpnGateway::KIND {
                    let host = hosts.get(&r.id).map_or("", String::as_str);
                    tx.add_task(r.account_id, VpnGateway::KIND, &r.id, "delete", now_ms(), host)?;
                }
            }
            Ok(dropped)
        })
        .await?;
    app.tasks_queued.notify_one();
    app.control.faults.clear(id);
    let mut by_kind = Map::new();
    for r in &dropped {
        let n = by_kind.entry(r.kind.clone()).or_insert(json!(0));
        *n = json!(n.as_u64().unwrap_or(0) + 1);
    }
    let name = account.map(|a| a.1);
    tracing::info!(account = name.as_deref().unwrap_or("*"), resources = dropped.len(), "reset");
    Ok(body(json!({"Account": name, "Dropped": by_kind})))
}

fn add_fault(app: &App, p: &Params) -> ApiResult<Body> {
    let (account_id, account) = account(app, p)?;
    let action = p.required("TargetAction")?;
    if !crate::actions::named(&action) {
        return Err(ApiError::invalid_parameter(
            "TargetAction",
            format!("{action} is not an action this server serves"),
        ));
    }
    let code = p.str("Code");
    if let Some(c) = &code {
        if ApiError::documented(c).is_none() {
            let known = ApiError::DOCUMENTED.join(", ");
            return Err(ApiError::invalid_parameter("Code", format!("{c} cannot be injected; one of {known}")));
        }
    }
    let latency_ms = p.parse::<u64>("LatencyMs")?.unwrap_or(0);
    if latency_ms > MAX_LATENCY_MS {
        return Err(ApiError::invalid_parameter("LatencyMs", format!("at most {MAX_LATENCY_MS}")));
    }
    if code.is_none() && latency_ms == 0 {
        return Err(ApiError::invalid_parameter("Code", "give a Code, a LatencyMs, or both"));
    }
    let count = p.parse::<u32>("Count")?.unwrap_or(1);
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(ApiError::invalid_parameter("Count", format!("from 1 to {MAX_COUNT}")));
    }
    let fault = app.control.faults.add(Fault {
        id: 0,
        account_id,
        account,
        action,
        resource_id: p.str("ResourceId"),
        code,
        latency_ms,
        remaining: count,
    })?;
    tracing::info!(fault = fault.id, account = fault.account, action = fault.action, "fault injected");
    Ok(body(json!({"Fault": fault})))
}

/// Stores the forced status on the connection's tunnels (all, or `TunnelId`) and queues the
/// task that hands it to the data plane.
async fn force_tunnel(app: &App, p: &Params) -> ApiResult<Body> {
    if !app.config.simulated_dataplane {
        return Err(ApiError::bad_request(
            "OperationUnsupported.DataPlane",
            "Tunnel statuses can be forced only on the simulated data plane.",
        ));
    }
    let (account_id, _) = account(app, p)?;
    let id = p.required("VpnConnectionId")?;
    let tunnel = p.str("TunnelId");
    let status = p.enumeration("Status", ForcedStatus::NAMES)?.ok_or_else(|| ApiError::missing_parameter("Status"))?;
    let forced = ForcedStatus::from_wire(status).unwrap_or_default().tunnel_status();
    let conn = app.store.write(move |tx| set_forced(tx, account_id, &id, tunnel.as_deref(), forced)).await?;
    app.tasks_queued.notify_one();
    tracing::info!(connection = conn.id, status, "tunnel status forced");
    let tunnels: Vec<Value> =
        conn.tunnels.iter().map(|t| json!({"TunnelId": t.id, "Forced": t.forced.map(|s| s.wire())})).collect();
    Ok(body(json!({"VpnConnectionId": conn.id, "Tunnels": tunnels})))
}

fn set_forced(
    tx: &mut dyn Tx,
    account_id: i64,
    id: &str,
    tunnel: Option<&str>,
    forced: Option<TunnelStatus>,
) -> ApiResult<VpnConnection> {
    let mut conn = tx
        .get_as::<VpnConnection>(account_id, id)?
        .ok_or_else(|| vpn_connections::alibaba::error(vpn_connections::ConnectionError::ConnectionNotFound))?;
    let mut matched = false;
    for t in conn.tunnels.iter_mut().filter(|t| tunnel.is_none_or(|id| t.id == id)) {
        t.forced = forced;
        matched = true;
    }
    if !matched {
        return Err(ApiError::not_found("InvalidTunnelId.NotFound", "The specified tunnel does not exist."));
    }
    tx.update_as(&conn)?;
    // Forced statuses are the emulator's, whose gateways belong to no host.
    tx.add_task(account_id, VpnConnection::KIND, &conn.id, RESYNC_TASK, now_ms(), "")?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::test_support::{connection, spec, world};

    #[tokio::test]
    async fn a_forced_status_is_stored_on_the_tunnels_and_queued_for_the_data_plane() {
        let (store, _gw, dir) = world().await;
        let conn = connection("vco-1", spec("cgw-1", None, None), "10.0.0.0/24", "192.168.0.0/24");
        store.write(move |tx| tx.insert_as(&conn)).await.unwrap();
        let up = Some(TunnelStatus::IpsecSaEstablished);
        let conn = store.write(move |tx| set_forced(tx, 1, "vco-1", None, up)).await.unwrap();
        assert_eq!(conn.tunnels[0].forced, up);
        let stored = store.read(|tx| tx.get_as::<VpnConnection>(1, "vco-1")).unwrap().unwrap();
        assert_eq!(stored.tunnels[0].forced, up);
        let tasks = store.write(|tx| tx.claim_tasks("n", "", now_ms(), now_ms() + 1000, 10)).await.unwrap();
        assert_eq!((tasks[0].kind.as_str(), tasks[0].op.as_str()), (VpnConnection::KIND, RESYNC_TASK));
        // Clearing, one tunnel by its id; unknown tunnels and other accounts' connections are refused.
        let conn = store.write(|tx| set_forced(tx, 1, "vco-1", Some("tun-vco-1"), None)).await.unwrap();
        assert_eq!(conn.tunnels[0].forced, None);
        let e = store.write(move |tx| set_forced(tx, 1, "vco-1", Some("tun-x"), up)).await.unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (404, "InvalidTunnelId.NotFound"));
        let e = store.write(move |tx| set_forced(tx, 2, "vco-1", None, up)).await.unwrap_err();
        assert_eq!(e.code, "InvalidVpnConnectionInstanceId.NotFound");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn operations_and_forced_statuses_have_one_wire_name_each() {
        assert_eq!(Operation::from_wire("add-fault"), Some(Operation::AddFault));
        assert!(Operation::Health.open() && Operation::Version.open() && !Operation::Reset.open());
        assert_eq!(ForcedStatus::Down.tunnel_status(), Some(TunnelStatus::IkeSaNotEstablished));
        assert_eq!(ForcedStatus::Clear.tunnel_status(), None);
    }
}
