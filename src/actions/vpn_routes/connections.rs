//! The routes a connection brings: those AutoConfigRoute implies, and those BGP learns.

use super::*;

/// AutoConfigRoute: adds the policy-based routes connection `conn` implies — one per (LocalSubnet,
/// RemoteSubnet) pair, active, priority 10, published — unless the connection runs BGP. Fails
/// with `QuotaExceeded.PolicyBasedRoute` / `CreatePbrRoutesQuotaFull.QuotaFull` past the
/// gateway's policy-route quota and with `VpnRouteEntry.Conflict` / `VpnRouteEntry.BackupRoute`
/// when another connection already holds the same traffic. `conn` need not be stored yet.
pub fn add_connection_routes(tx: &mut dyn Tx, conn: &VpnConnection, quotas: &Quotas) -> ApiResult<()> {
    if conn.bgp_enabled() {
        return Ok(());
    }
    let gw = tx.get_as::<VpnGateway>(conn.account_id, &conn.vpn_gateway_id)?.ok_or_else(gateway_not_found)?;
    let existing = routes::<Policy>(tx, gw.account_id, &gw.id)?;
    let pairs = subnet_pairs(&conn.local_subnets(), &conn.remote_subnets());
    for route in plan_connection_routes(&Scope::of(&gw), &existing, &conn.id, &pairs, quotas.policy_routes, now_ms())? {
        tx.insert_as(&route)?;
    }
    Ok(())
}

/// Removes the routes through connection `conn_id`: only those AutoConfigRoute added when
/// `auto_only`, else all of them (custom, auto-configured and BGP-learned), as when the
/// connection is deleted. A connection that is not stored has none.
pub fn remove_connection_routes(tx: &mut dyn Tx, account_id: i64, conn_id: &str, auto_only: bool) -> ApiResult<()> {
    let Some(conn) = tx.get_as::<VpnConnection>(account_id, conn_id)? else { return Ok(()) };
    let gw_id = &conn.vpn_gateway_id;
    delete_routes::<Policy>(tx, account_id, gw_id, |r| {
        r.next_hop == conn_id && (!auto_only || r.origin == Origin::Auto)
    })?;
    if !auto_only {
        delete_routes::<Destination>(tx, account_id, gw_id, |r| r.next_hop == conn_id)?;
    }
    Ok(())
}

/// Removes every route of a gateway (for when the gateway itself goes).
pub fn remove_gateway_routes(tx: &mut dyn Tx, account_id: i64, gw_id: &str) -> ApiResult<()> {
    delete_routes::<Policy>(tx, account_id, gw_id, |_| true)?;
    delete_routes::<Destination>(tx, account_id, gw_id, |_| true)
}

/// The BGP-learned routes through one connection that must go (`stale`, their IDs) and the
/// destinations that must come (`new`), for the connection to have learned exactly `wanted`.
pub fn diff_learned(current: &[VpnRouteEntry], conn_id: &str, wanted: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    let mine: Vec<&VpnRouteEntry> =
        current.iter().filter(|r| r.origin == Origin::Bgp && r.next_hop == conn_id).collect();
    let stale = mine.iter().filter(|r| !wanted.contains(&r.route_dest)).map(|r| r.id.clone()).collect();
    let have: BTreeSet<&str> = mine.iter().map(|r| r.route_dest.as_str()).collect();
    let new = wanted.iter().filter(|d| !have.contains(d.as_str())).cloned().collect();
    (stale, new)
}

/// Records what the data plane reports a connection's BGP peer advertises: the BGP-learned
/// routes through `conn_id` become exactly `prefixes` (a prefix kept keeps its creation time).
/// New ones are published into the VPC when the gateway propagates automatically (AutoPropagate)
/// and carry the peer's ASN as their AS path. A connection that is gone, being deleted or not
/// running BGP has no learned routes.
pub fn record_learned_routes(tx: &mut dyn Tx, account_id: i64, conn_id: &str, prefixes: &[Ipv4Net]) -> ApiResult<()> {
    let Some(conn) = tx.get_as::<VpnConnection>(account_id, conn_id)? else { return Ok(()) };
    let Some(gw) = tx.get_as::<VpnGateway>(account_id, &conn.vpn_gateway_id)? else { return Ok(()) };
    let live = conn.state != ConnectionState::Deleting && conn.bgp_enabled();
    let wanted: BTreeSet<String> =
        if live { prefixes.iter().map(|n| n.trunc().to_string()).collect() } else { BTreeSet::new() };
    let (stale, new) = diff_learned(&routes::<Destination>(tx, account_id, &gw.id)?, conn_id, &wanted);
    for id in &stale {
        tx.delete(VpnRouteEntry::KIND, account_id, id)?;
    }
    if new.is_empty() {
        return Ok(());
    }
    let mut peer_asn = None;
    for id in conn.customer_gateway_ids() {
        if let Some(asn) = tx.get_as::<CustomerGateway>(account_id, id)?.and_then(|c| c.asn) {
            peer_asn = Some(asn);
            break;
        }
    }
    let (scope, now) = (Scope::of(&gw), now_ms());
    for dest in new {
        let kind =
            Destination { as_path: peer_asn.map(|a| a.to_string()).unwrap_or_default(), community: String::new() };
        tx.insert_as(&Route {
            published: gw.auto_propagate,
            ..Route::new(&scope, kind, Origin::Bgp, dest, conn_id.to_string(), now)
        })?;
    }
    Ok(())
}
