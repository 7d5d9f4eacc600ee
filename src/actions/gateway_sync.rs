//! A gateway's lifecycle against its data plane: the two store-side halves of every
//! reconciliation, which the reconciler runs around a data-plane call made outside any
//! transaction.
//!
//! - `plan` (read transaction): the gateway's desired state as a `GatewayPlan`.
//! - `record` (write transaction): what the data plane reported, kept only while the gateway is
//!   still at the generation the plan was made for, so an older outcome never overwrites a newer
//!   change. Connections being deleted go; changed ones become `active`; so does the gateway.
//! - `record_events`: later news from the data plane (tunnel statuses, each only over an older
//!   one; BGP sessions and what they learned; health; remote access).

use std::net::Ipv4Addr;

use super::vpn_connections::{customer_gateways_of, of_gateway, ConnectionState, VpnConnection};
use super::vpn_gateways::{GatewayStatus, VpnGateway};
use super::vpn_routes::{self, Destination, Policy};
use super::{certificates, ipsec_server, ssl_vpn};
use crate::api::error::{ApiError, ApiResult};
use crate::dataplane::remote_access::{IpsecServerReport, SslVpnReport};
use crate::dataplane::{
    BgpPlan, ConnectionPlan, ConnectionReport, Event, GatewayPlan, GatewayReport, HealthProbe, IkeVersion, RoutePlan,
    TunnelPlan, TunnelStatus,
};
use crate::secret::MasterKey;
use crate::store::{ListQuery, Resource, Tx, TxExt};

fn ip(field: &str, s: &str) -> ApiResult<Ipv4Addr> {
    s.parse().map_err(|_| ApiError::internal(format!("stored {field} {s:?} is not an IPv4 address")))
}

/// The gateway's desired state. `complete` plans carry every connection; otherwise only the ones
/// changed since the last apply (and none being deleted: absent from a plan means gone).
pub fn plan(tx: &dyn Tx, key: &MasterKey, gw: &VpnGateway, complete: bool) -> ApiResult<GatewayPlan> {
    let conns: Vec<VpnConnection> = if complete {
        of_gateway(tx, gw)?
    } else {
        tx.list_as(&ListQuery {
            kind: VpnConnection::KIND,
            account_id: gw.account_id,
            parent_id: Some(gw.id.clone()),
            status: Some(ConnectionState::Updating.wire().into()),
            ..Default::default()
        })?
    };
    let cgws = customer_gateways_of(tx, gw.account_id, &conns)?;
    let mut connections = Vec::new();
    for c in conns.iter().filter(|c| c.state != ConnectionState::Deleting) {
        let mut tunnels = Vec::new();
        for t in &c.tunnels {
            let s = &t.spec;
            let cgw = cgws.iter().find(|g| g.id == s.customer_gateway_id);
            let remote = cgw.map(|g| g.ip_address.as_str()).unwrap_or_default();
            tunnels.push(TunnelPlan {
                id: t.id.clone(),
                role: s.role.clone(),
                local_ip: ip("InternetIp", &t.internet_ip)?,
                remote_ip: ip("customer gateway IpAddress", remote)?,
                ike_version: IkeVersion::from_wire(&s.ike.ike_version).unwrap_or_default(),
                aggressive: s.ike.ike_mode == "aggressive",
                ike: s.ike.proposal(),
                ike_lifetime_s: s.ike.ike_lifetime,
                local_id: s.ike.local_id.clone(),
                remote_id: s.ike.remote_id.clone(),
                psk: s.ike.psk.open(key)?,
                esp: s.ipsec.proposal(),
                ipsec_lifetime_s: s.ipsec.ipsec_lifetime,
                ipsec_lifetime_kb: s.ipsec.ipsec_lifetime_kb,
                dpd: s.enable_dpd,
                nat_traversal: s.enable_nat_traversal,
                bgp: match s.bgp.enable_bgp {
                    false => None,
                    true => Some(BgpPlan {
                        local_asn: s.bgp.local_asn,
                        peer_asn: cgw.and_then(|g| g.asn),
                        tunnel_cidr: s.bgp.tunnel_cidr.parse().map_err(|_| {
                            ApiError::internal(format!("stored TunnelCidr {:?} is not a CIDR", s.bgp.tunnel_cidr))
                        })?,
                        local_ip: ip("LocalBgpIp", &s.bgp.local_bgp_ip)?,
                        peer_ip: ip("PeerBgpIp", &s.bgp.peer_bgp_ip())?,
                        auth_key: cgw.and_then(|g| g.auth_key.as_ref()).map(|k| k.open(key)).transpose()?,
                    }),
                },
                forced: t.forced,
            });
        }
        let h = &c.health_check;
        let health_check = if h.enable {
            Some(HealthProbe {
                sip: ip("health check sip", &h.sip)?,
                dip: ip("health check dip", &h.dip)?,
                interval_s: h.interval,
                retry: h.retry,
            })
        } else {
            None
        };
        connections.push(ConnectionPlan {
            id: c.id.clone(),
            local_subnets: c.local_subnets(),
            remote_subnets: c.remote_subnets(),
            effect_immediately: c.effect_immediately,
            renegotiate: c.renegotiate,
            changed: c.state == ConnectionState::Updating,
            health_check,
            tunnels,
            last_status: c.tunnels.iter().map(|t| t.status).collect(),
        });
    }
    let mut routes = Vec::new();
    if complete {
        for r in vpn_routes::routes::<Destination>(tx, gw.account_id, &gw.id)? {
            if let Ok(dest) = r.route_dest.parse() {
                routes.push(RoutePlan { dest, source: None, connection_id: r.next_hop, weight: r.weight });
            }
        }
        for r in vpn_routes::routes::<Policy>(tx, gw.account_id, &gw.id)? {
            if let (Ok(dest), Ok(source)) = (r.route_dest.parse(), r.kind.route_source.parse()) {
                routes.push(RoutePlan { dest, source: Some(source), connection_id: r.next_hop, weight: r.weight });
            }
        }
    }
    let mut public_ips = vec![ip("InternetIp", &gw.internet_ip)?];
    if !gw.disaster_recovery_internet_ip.is_empty() {
        public_ips.push(ip("DisasterRecoveryInternetIp", &gw.disaster_recovery_internet_ip)?);
    }
    Ok(GatewayPlan {
        gateway_id: gw.id.clone(),
        account_id: gw.account_id,
        vpc_id: gw.vpc_id.clone(),
        generation: gw.generation,
        public_ips,
        intranet_ip: ip("IntranetIp", &gw.intranet_ip)?,
        connections,
        routes,
        ssl_vpn: ssl_vpn::plan(tx, key, gw)?,
        ipsec_server: ipsec_server::plan(tx, key, gw)?,
    })
}

/// What a data plane that failed as a whole reports: every changed connection down, with why.
pub fn failed_report(plan: &GatewayPlan, error: &str) -> GatewayReport {
    GatewayReport { connections: down(plan, error, |c| c.changed), ssl_vpn: None, ipsec_server: None }
}

/// What a gateway no host vouches for reports: every connection down with `error`, no
/// remote-access client online.
pub fn unreachable_report(plan: &GatewayPlan, reason: &str) -> GatewayReport {
    let error = Some(reason.to_string());
    GatewayReport {
        connections: down(plan, reason, |_| true),
        ssl_vpn: plan.ssl_vpn.as_ref().map(|s| SslVpnReport {
            id: s.id.clone(),
            connections: 0,
            log: Vec::new(),
            error: error.clone(),
        }),
        ipsec_server: plan.ipsec_server.as_ref().map(|s| IpsecServerReport {
            id: s.id.clone(),
            online_clients: 0,
            error: error.clone(),
        }),
    }
}

/// The connections `which` picks, their tunnels down, with `error`.
fn down(plan: &GatewayPlan, error: &str, which: impl Fn(&ConnectionPlan) -> bool) -> Vec<ConnectionReport> {
    let down = |_: &TunnelPlan| TunnelStatus::IkeSaNotEstablished;
    plan.connections
        .iter()
        .filter(|c| which(c))
        .map(|c| ConnectionReport::without_bgp(c, down, Default::default(), Some(error.to_string())))
        .collect()
}

/// Records the outcome of applying the plan of `generation`, and brings the gateway and its
/// changed connections to `active` (`settle`: a lifecycle task's apply; a convergence after a
/// restart records statuses only). False when the gateway moved on to a newer generation (or
/// is gone): nothing is recorded.
pub fn record(
    tx: &mut dyn Tx,
    account_id: i64,
    gateway_id: &str,
    generation: u64,
    report: &GatewayReport,
    settle: bool,
) -> ApiResult<bool> {
    // What remote access reports (log lines, clients online) is news whatever the generation.
    if let Some(r) = &report.ssl_vpn {
        ssl_vpn::record(tx, account_id, r)?;
    }
    if let Some(r) = &report.ipsec_server {
        ipsec_server::record(tx, account_id, r)?;
    }
    let Some(mut gw) = tx.get_as::<VpnGateway>(account_id, gateway_id)? else { return Ok(false) };
    if gw.generation != generation || gw.status == GatewayStatus::Deleting {
        return Ok(false);
    }
    for r in &report.connections {
        let Some(mut conn) = tx.get_as::<VpnConnection>(account_id, &r.id)? else { continue };
        if conn.state == ConnectionState::Deleting {
            continue;
        }
        for tr in &r.tunnels {
            if let Some(t) = conn.tunnels.iter_mut().find(|t| t.id == tr.id) {
                if tr.seq > t.status_seq {
                    (t.status, t.status_seq) = (tr.status, tr.seq);
                }
                t.bgp_status = tr.bgp_status;
            }
        }
        conn.health_status = r.health;
        conn.dataplane_error = r.error.clone().unwrap_or_default();
        if let Some(e) = &r.error {
            tracing::warn!(connection = %conn.id, error = %e, "the data plane could not run the connection");
        }
        vpn_routes::record_learned_routes(tx, account_id, &conn.id, &r.learned_routes)?;
        tx.update_as(&conn)?;
    }
    if settle {
        for state in [ConnectionState::Deleting, ConnectionState::Updating] {
            let pending: Vec<VpnConnection> = tx.list_as(&ListQuery {
                kind: VpnConnection::KIND,
                account_id,
                parent_id: Some(gw.id.clone()),
                status: Some(state.wire().into()),
                ..Default::default()
            })?;
            for mut conn in pending {
                if conn.state == ConnectionState::Deleting {
                    tx.delete(VpnConnection::KIND, account_id, &conn.id)?;
                    continue;
                }
                conn.state = ConnectionState::Active;
                conn.renegotiate = false;
                gw.enable_bgp |= conn.bgp_enabled();
                tx.update_as(&conn)?;
            }
        }
        gw.status = GatewayStatus::Active;
        tx.update_as(&gw)?;
    }
    Ok(true)
}

/// Records data-plane events. A tunnel status is kept only over an older one; events about
/// connections that are gone or going are dropped.
pub fn record_events(tx: &mut dyn Tx, events: &[Event]) -> ApiResult<()> {
    for e in events {
        match e {
            Event::Tunnel { account_id, connection_id, tunnel_id, seq, status, .. } => {
                let Some(mut conn) = tx.get_as::<VpnConnection>(*account_id, connection_id)? else { continue };
                let Some(t) = conn.tunnels.iter_mut().find(|t| &t.id == tunnel_id) else { continue };
                if conn.state == ConnectionState::Deleting || *seq <= t.status_seq {
                    continue;
                }
                (t.status, t.status_seq) = (*status, *seq);
                tx.update_as(&conn)?;
            }
            Event::Bgp { account_id, report, .. } => {
                let Some(mut conn) = tx.get_as::<VpnConnection>(*account_id, &report.connection_id)? else { continue };
                if conn.state == ConnectionState::Deleting {
                    continue;
                }
                for (id, status) in &report.tunnels {
                    if let Some(t) = conn.tunnels.iter_mut().find(|t| &t.id == id) {
                        t.bgp_status = *status;
                    }
                }
                tx.update_as(&conn)?;
                vpn_routes::record_learned_routes(tx, *account_id, &conn.id, &report.learned_routes)?;
            }
            Event::SslVpn { account_id, report, .. } => ssl_vpn::record(tx, *account_id, report)?,
            Event::IpsecServer { account_id, report, .. } => ipsec_server::record(tx, *account_id, report)?,
            Event::Health { account_id, connection_id, status, .. } => {
                let Some(mut conn) = tx.get_as::<VpnConnection>(*account_id, connection_id)? else { continue };
                if conn.state == ConnectionState::Deleting || conn.health_status == *status {
                    continue;
                }
                conn.health_status = *status;
                tx.update_as(&conn)?;
            }
        }
    }
    Ok(())
}

/// The first step of a new gateway: `provisioning`.
pub fn provision(tx: &mut dyn Tx, account_id: i64, gateway_id: &str) -> ApiResult<()> {
    if let Some(mut gw) = tx.get_as::<VpnGateway>(account_id, gateway_id)? {
        gw.status = GatewayStatus::Provisioning;
        tx.update_as(&gw)?;
    }
    Ok(())
}

/// The last step of a deleted gateway, once its data plane is gone: it, its routes, its remote
/// access, its certificate associations and its addresses go.
pub fn forget(tx: &mut dyn Tx, account_id: i64, gateway_id: &str) -> ApiResult<()> {
    vpn_routes::remove_gateway_routes(tx, account_id, gateway_id)?;
    // Remote access and certificate associations live and die with their gateway.
    if let Some(gw) = tx.get_as::<VpnGateway>(account_id, gateway_id)? {
        if let Some(s) = ssl_vpn::of_gateway(tx, &gw)? {
            ssl_vpn::remove(tx, &s)?;
        }
        if let Some(s) = ipsec_server::of_gateway(tx, &gw)? {
            tx.delete(ipsec_server::IpsecServer::KIND, account_id, &s.id)?;
        }
        certificates::forget_gateway(tx, &gw)?;
    }
    tx.delete(VpnGateway::KIND, account_id, gateway_id)?;
    tx.release_addresses(gateway_id)
}

/// Every gateway of every account that runs (or should run) in the data plane.
pub fn live_gateways(tx: &dyn Tx) -> ApiResult<Vec<VpnGateway>> {
    let mut out = Vec::new();
    for a in tx.accounts()? {
        let gws: Vec<VpnGateway> =
            tx.list_as(&ListQuery { kind: VpnGateway::KIND, account_id: a.id, ..Default::default() })?;
        out.extend(gws.into_iter().filter(|g| g.status != GatewayStatus::Init));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::test_support::{connection, key, spec, world};
    use crate::dataplane::{simulated, TunnelReport};
    use crate::store::Store;
    use std::sync::Arc;

    /// World's gateway, `updating` at generation 1, with connection `a` (changed) and `b` (applied).
    async fn updating() -> (Arc<dyn Store>, std::path::PathBuf) {
        let (store, gw, dir) = world().await;
        store
            .write(move |tx| {
                let mut gw = gw.clone();
                gw.status = GatewayStatus::Updating;
                gw.generation = 1;
                tx.update_as(&gw)?;
                for (id, state, remote) in [
                    ("a", ConnectionState::Updating, "192.168.0.0/24"),
                    ("b", ConnectionState::Active, "192.168.1.0/24"),
                ] {
                    let mut c = connection(id, spec("cgw-1", None, None), "10.0.0.0/16", remote);
                    c.state = state;
                    c.effect_immediately = true;
                    tx.insert_as(&c)?;
                }
                Ok(())
            })
            .await
            .unwrap();
        (store, dir)
    }

    fn read(store: &Arc<dyn Store>, id: &str) -> VpnConnection {
        store.read(|tx| tx.get_as::<VpnConnection>(1, id)).unwrap().unwrap()
    }

    fn gateway(store: &Arc<dyn Store>) -> VpnGateway {
        store.read(|tx| tx.get_as::<VpnGateway>(1, "vpn-1")).unwrap().unwrap()
    }

    #[tokio::test]
    async fn plans_carry_the_changed_connections_or_all_of_them() {
        let (store, dir) = updating().await;
        let gw = gateway(&store);
        let changed = store.read(|tx| plan(tx, &key(), &gw, false)).unwrap();
        assert_eq!(changed.connections.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["a"]);
        assert_eq!(changed.generation, 1);
        let all = store.read(|tx| plan(tx, &key(), &gw, true)).unwrap();
        let mut ids: Vec<_> = all.connections.iter().map(|c| (c.id.as_str(), c.changed)).collect();
        ids.sort();
        assert_eq!(ids, [("a", true), ("b", false)]);
        assert_eq!(all.connections[0].tunnels[0].psk.expose().len(), 16, "the PSK crosses the seam opened");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn an_older_outcome_never_overwrites_a_newer_change() {
        let (store, dir) = updating().await;
        let gw = gateway(&store);
        let p = store.read(|tx| plan(tx, &key(), &gw, false)).unwrap();
        let report = GatewayReport {
            connections: p.connections.iter().map(simulated::negotiate).collect(),
            ..Default::default()
        };
        // Meanwhile the gateway moved on to a newer change.
        let mut newer = gw.clone();
        newer.generation = 2;
        store.write(move |tx| tx.update_as(&newer)).await.unwrap();
        let r = report.clone();
        assert!(!store.write(move |tx| record(tx, 1, "vpn-1", 1, &r, true)).await.unwrap());
        assert_eq!(read(&store, "a").state, ConnectionState::Updating);
        assert_eq!(read(&store, "a").tunnels[0].status, TunnelStatus::IkeSaNotEstablished);
        assert_eq!(gateway(&store).status, GatewayStatus::Updating);
        // The outcome for the current generation settles the gateway and the changed connection.
        assert!(store.write(move |tx| record(tx, 1, "vpn-1", 2, &report, true)).await.unwrap());
        let a = read(&store, "a");
        assert_eq!((a.state, a.tunnels[0].status), (ConnectionState::Active, TunnelStatus::IpsecSaEstablished));
        assert_eq!(gateway(&store).status, GatewayStatus::Active);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_late_report_does_not_undo_a_newer_event() {
        let (store, dir) = updating().await;
        let tunnel = read(&store, "a").tunnels[0].id.clone();
        let event = |seq, status| Event::Tunnel {
            account_id: 1,
            gateway_id: "vpn-1".into(),
            connection_id: "a".into(),
            tunnel_id: tunnel.clone(),
            seq,
            status,
            cause: "test".into(),
        };
        let (up, down) = (event(20, TunnelStatus::IpsecSaEstablished), event(10, TunnelStatus::IkeSaNotEstablished));
        // Events out of order: the newer one stands.
        store.write(move |tx| record_events(tx, &[up.clone(), down.clone()])).await.unwrap();
        assert_eq!(read(&store, "a").tunnels[0].status, TunnelStatus::IpsecSaEstablished);
        // A report read before that event arrives after it: its status does not count.
        let report = GatewayReport {
            connections: vec![ConnectionReport {
                id: "a".into(),
                tunnels: vec![TunnelReport {
                    id: tunnel.clone(),
                    seq: 15,
                    status: TunnelStatus::IkeSaNotEstablished,
                    bgp_status: Default::default(),
                }],
                health: Default::default(),
                learned_routes: vec![],
                error: Some("charon said no".into()),
            }],
            ..Default::default()
        };
        assert!(store.write(move |tx| record(tx, 1, "vpn-1", 1, &report, true)).await.unwrap());
        let a = read(&store, "a");
        assert_eq!(a.tunnels[0].status, TunnelStatus::IpsecSaEstablished);
        assert_eq!(a.dataplane_error, "charon said no", "the report's error detail is kept");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
