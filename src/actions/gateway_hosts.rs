//! Gateway hosts: which node runs which gateway's data plane.
//!
//! In gateway mode every node is a gateway host, known by a name (`--host-name`) that it keeps
//! alive with a heartbeat in the store. Each gateway is assigned to one host (`VpnGateway::host`,
//! chosen among the live hosts at creation, moved by an operator with `gatehouse hosts move`).
//! A gateway's tasks carry its host, so only that host's node claims them: it alone runs the
//! gateway's daemons and reports their events. A host whose heartbeat is older than the host
//! lease is down: the first node to notice marks it so and records its gateways' connections as
//! down (nobody can vouch for their tunnels any more); they stay down until the host comes back
//! (and reports again) or the operator moves them to a live host.
//!
//! The emulator has no hosts: its gateways' host is empty and any node runs their tasks.

use std::time::Duration;

use rand::seq::SliceRandom;

use super::gateway_sync;
use super::vpn_connections::VpnConnection;
use super::vpn_gateways::{GatewayStatus, VpnGateway};
use crate::api::error::{ApiError, ApiResult};
use crate::config::Config;
use crate::secret::MasterKey;
use crate::store::{HostRow, ListQuery, Resource, Tx, TxExt};

/// A host as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostView {
    pub row: HostRow,
    pub live: bool,
    /// The gateways assigned to it.
    pub gateways: usize,
}

/// The heartbeat before which a host counts as down.
pub fn stale_before(now_ms: i64, lease: Duration) -> i64 {
    now_ms - lease.as_millis() as i64
}

/// The host a new gateway goes to: one of the live hosts, at random (this node's own when no
/// heartbeat is fresh, its own included); empty in the emulator.
pub fn choose(tx: &dyn Tx, config: &Config, now_ms: i64) -> ApiResult<String> {
    let Some(me) = &config.host else { return Ok(String::new()) };
    let stale = stale_before(now_ms, config.host_lease);
    let live: Vec<String> = tx.hosts()?.into_iter().filter(|h| h.heartbeat_ms >= stale).map(|h| h.name).collect();
    Ok(live.choose(&mut rand::thread_rng()).cloned().unwrap_or_else(|| me.clone()))
}

/// Every host with whether it is live and how many gateways it runs.
pub fn list(tx: &dyn Tx, now_ms: i64, lease: Duration) -> ApiResult<Vec<HostView>> {
    let gateways = gateway_sync::live_gateways(tx)?;
    let stale = stale_before(now_ms, lease);
    Ok(tx
        .hosts()?
        .into_iter()
        .map(|row| HostView {
            live: row.heartbeat_ms >= stale && row.down_ms.is_none(),
            gateways: gateways.iter().filter(|g| g.host == row.name).count(),
            row,
        })
        .collect())
}

/// Where a moved gateway's data plane goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub gateway_id: String,
    pub from: String,
    pub to: String,
}

/// Assigns gateway `gateway_id` to host `to`. A live former host first removes what it runs (an
/// `evict` task, which then hands the gateway to `to`); it must have finished the gateway's
/// last change (`VpnGateway.Configuring` otherwise), so that nothing it still has to apply
/// starts the gateway again. A dead one is skipped: the gateway's queued tasks go to `to`,
/// which starts it at once.
pub fn move_gateway(tx: &mut dyn Tx, gateway_id: &str, to: &str, now_ms: i64, lease: Duration) -> ApiResult<Moved> {
    let hosts = tx.hosts()?;
    let Some(target) = hosts.iter().find(|h| h.name == to) else {
        return Err(ApiError::bad_request("InvalidHost.NotFound", format!("no gateway host is named {to:?}")));
    };
    let stale = stale_before(now_ms, lease);
    if target.heartbeat_ms < stale {
        return Err(ApiError::bad_request("InvalidHost.Down", format!("gateway host {to:?} is down")));
    }
    let Some(mut gw) = gateway_sync::live_gateways(tx)?.into_iter().find(|g| g.id == gateway_id) else {
        return Err(ApiError::not_found(
            "InvalidVpnGatewayInstanceId.NotFound",
            format!("no live VPN gateway {gateway_id}"),
        ));
    };
    let from = std::mem::replace(&mut gw.host, to.to_string());
    if from == to {
        return Ok(Moved { gateway_id: gw.id, from, to: to.into() });
    }
    let from_live = hosts.iter().any(|h| h.name == from && h.heartbeat_ms >= stale);
    if from_live && gw.status != GatewayStatus::Active {
        return Err(ApiError::gateway_configuring());
    }
    tx.update_as(&gw)?;
    let connections: Vec<VpnConnection> = tx.list_as(&ListQuery {
        kind: VpnConnection::KIND,
        account_id: gw.account_id,
        parent_id: Some(gw.id.clone()),
        ..Default::default()
    })?;
    let mut ids: Vec<String> = connections.into_iter().map(|c| c.id).collect();
    ids.push(gw.id.clone());
    tx.move_tasks(&ids, to)?;
    if from_live {
        tx.add_task(gw.account_id, VpnGateway::KIND, &gw.id, EVICT_TASK, now_ms, &from)?;
    } else if gw.status == GatewayStatus::Active {
        tx.add_task(gw.account_id, VpnGateway::KIND, &gw.id, ADOPT_TASK, now_ms, to)?;
    }
    Ok(Moved { gateway_id: gw.id, from, to: to.into() })
}

/// The task that has a gateway's former host remove its data plane, then queues `ADOPT_TASK`.
pub const EVICT_TASK: &str = "evict";
/// The task that has a gateway's host start its data plane as the store holds it.
pub const ADOPT_TASK: &str = "adopt";

/// After `evict` on the former host: the gateway's host (now the new one) starts it.
pub fn evicted(tx: &mut dyn Tx, account_id: i64, gateway_id: &str, now_ms: i64) -> ApiResult<()> {
    match tx.get_as::<VpnGateway>(account_id, gateway_id)? {
        Some(gw) if gw.status == GatewayStatus::Active => {
            tx.add_task(account_id, VpnGateway::KIND, gateway_id, ADOPT_TASK, now_ms, &gw.host)
        }
        _ => Ok(()),
    }
}

/// The hosts silent past the lease that nobody marked down yet.
pub fn silent(tx: &dyn Tx, now_ms: i64, lease: Duration) -> ApiResult<Vec<String>> {
    let stale = stale_before(now_ms, lease);
    Ok(tx.hosts()?.into_iter().filter(|h| h.heartbeat_ms < stale && h.down_ms.is_none()).map(|h| h.name).collect())
}

/// Marks every `silent` host down and records its gateways' connections as down (remote-access
/// clients offline); returns the hosts this call marked (another node may have been first).
pub fn mark_down(tx: &mut dyn Tx, key: &MasterKey, now_ms: i64, lease: Duration) -> ApiResult<Vec<String>> {
    let stale = stale_before(now_ms, lease);
    let candidates = silent(tx, now_ms, lease)?;
    let mut marked = Vec::new();
    for host in candidates {
        if !tx.mark_host_down(&host, stale, now_ms)? {
            continue;
        }
        for gw in gateway_sync::live_gateways(tx)?.into_iter().filter(|g| g.host == host) {
            let plan = gateway_sync::plan(tx, key, &gw, true)?;
            let report = gateway_sync::unreachable_report(&plan, &format!("gateway host {host} is down"));
            gateway_sync::record(tx, gw.account_id, &gw.id, gw.generation, &report, false)?;
        }
        marked.push(host);
    }
    Ok(marked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::test_support::{connection, key, spec, world};
    use crate::dataplane::TunnelStatus;
    use crate::store::Heartbeat;

    const LEASE: Duration = Duration::from_secs(2);

    /// World's gateway on host h1 with an established connection; h1 last beat at 1 000, h2 at 5 000.
    async fn two_hosts() -> (std::sync::Arc<dyn crate::store::Store>, std::path::PathBuf) {
        let (store, gw, dir) = world().await;
        store
            .write(move |tx| {
                tx.create_account("root", 0)?;
                let mut gw = gw.clone();
                gw.host = "h1".into();
                tx.update_as(&gw)?;
                let mut c = connection("vco-1", spec("cgw-1", None, None), "10.0.0.0/16", "192.168.0.0/24");
                c.state = crate::actions::vpn_connections::ConnectionState::Active;
                (c.tunnels[0].status, c.tunnels[0].status_seq) = (TunnelStatus::IpsecSaEstablished, 1);
                tx.insert_as(&c)?;
                assert_eq!(tx.host_heartbeat("h1", "id-1", 1_000, 0)?, Heartbeat::Renewed);
                assert_eq!(tx.host_heartbeat("h2", "id-2", 5_000, 0)?, Heartbeat::Renewed);
                Ok(())
            })
            .await
            .unwrap();
        (store, dir)
    }

    #[tokio::test]
    async fn a_silent_hosts_connections_are_shown_down_once() {
        let (store, dir) = two_hosts().await;
        let down = store.write(|tx| mark_down(tx, &key(), 5_000, LEASE)).await.unwrap();
        assert_eq!(down, ["h1"]);
        let c: VpnConnection = store.read(|tx| tx.get_as(1, "vco-1")).unwrap().unwrap();
        assert_eq!(c.tunnels[0].status, TunnelStatus::IkeSaNotEstablished);
        assert_eq!(c.dataplane_error, "gateway host h1 is down");
        assert!(store.write(|tx| mark_down(tx, &key(), 5_500, LEASE)).await.unwrap().is_empty(), "marked once");
        let listed = store.read(|tx| list(tx, 5_500, LEASE)).unwrap();
        let view: Vec<_> = listed.iter().map(|h| (h.row.name.as_str(), h.live, h.gateways)).collect();
        assert_eq!(view, [("h1", false, 1), ("h2", true, 0)]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn new_gateways_go_to_live_hosts_and_moves_go_to_live_hosts_only() {
        let (store, dir) = two_hosts().await;
        let mut config = Config::new("127.0.0.1:0".parse().unwrap(), dir.clone());
        config.host_lease = LEASE;
        assert_eq!(store.read(|tx| choose(tx, &config, 5_000)).unwrap(), "", "the emulator has no hosts");
        config.host = Some("h1".into());
        assert_eq!(store.read(|tx| choose(tx, &config, 5_000)).unwrap(), "h2", "h1 is silent");
        assert_eq!(store.read(|tx| choose(tx, &config, 60_000)).unwrap(), "h1", "none live: this node's own");

        let refused = |to: &'static str| {
            let store = store.clone();
            async move { store.write(move |tx| move_gateway(tx, "vpn-1", to, 5_000, LEASE)).await.unwrap_err().code }
        };
        assert_eq!(refused("h9").await, "InvalidHost.NotFound");
        assert_eq!(refused("h1").await, "InvalidHost.Down");
        let moved = store.write(|tx| move_gateway(tx, "vpn-1", "h2", 5_000, LEASE)).await.unwrap();
        assert_eq!(moved, Moved { gateway_id: "vpn-1".into(), from: "h1".into(), to: "h2".into() });
        // h1 is dead: nobody evicts, h2 adopts at once; h1 gets nothing.
        assert!(store.write(|tx| tx.claim_tasks("n1", "h1", 5_000, 6_000, 10)).await.unwrap().is_empty());
        let tasks = store.write(|tx| tx.claim_tasks("n2", "h2", 5_000, 6_000, 10)).await.unwrap();
        assert_eq!(tasks.iter().map(|t| t.op.as_str()).collect::<Vec<_>>(), [ADOPT_TASK]);
        let gw: VpnGateway = store.read(|tx| tx.get_as(1, "vpn-1")).unwrap().unwrap();
        assert_eq!(gw.host, "h2");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_live_former_host_lets_go_first() {
        let (store, dir) = two_hosts().await;
        store.write(|tx| tx.host_heartbeat("h1", "id-1", 5_000, 0)).await.unwrap();
        // Not while h1 still has a change of the gateway's to apply.
        let mid_change = store
            .write(|tx| {
                let mut gw: VpnGateway = tx.get_as(1, "vpn-1")?.expect("vpn-1");
                gw.status = GatewayStatus::Updating;
                tx.update_as(&gw)?;
                let refused = move_gateway(tx, "vpn-1", "h2", 5_000, LEASE).map(|_| ()).unwrap_err();
                gw.status = GatewayStatus::Active;
                tx.update_as(&gw)?;
                Ok(refused)
            })
            .await
            .unwrap();
        assert_eq!(mid_change.code, "VpnGateway.Configuring");
        store.write(|tx| move_gateway(tx, "vpn-1", "h2", 5_000, LEASE)).await.unwrap();
        assert!(store.write(|tx| tx.claim_tasks("n2", "h2", 5_000, 6_000, 10)).await.unwrap().is_empty());
        let evict = store.write(|tx| tx.claim_tasks("n1", "h1", 5_000, 6_000, 10)).await.unwrap().remove(0);
        assert_eq!(evict.op, EVICT_TASK);
        store
            .write(move |tx| {
                evicted(tx, 1, "vpn-1", 5_000)?;
                tx.finish_task(&evict)
            })
            .await
            .unwrap();
        let adopt = store.write(|tx| tx.claim_tasks("n2", "h2", 5_000, 6_000, 10)).await.unwrap();
        assert_eq!(adopt.iter().map(|t| t.op.as_str()).collect::<Vec<_>>(), [ADOPT_TASK]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
