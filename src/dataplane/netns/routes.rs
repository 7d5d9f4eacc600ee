//! A gateway's destination and policy routes, programmed in its namespace. Routes lead to the
//! ESP device (`ipsec0` with kernel-libipsec; the uplink with kernel ESP, where XFRM policies
//! pick the packets to protect); the weight becomes the metric, so an active route (100) wins
//! over a standby one (0) to the same place.
//!
//! Gatehouse owns routing table `ROUTES_TABLE` and the rules at priority `RULE_PRIORITY` in the
//! namespace: every apply rewrites both to exactly the plan's routes. Policy routes (source +
//! destination) are rules into the table; destination routes live in the main table under
//! protocol `static` with Gatehouse's metrics, beside the routes BIRD learns over BGP (protocol
//! `bird`). Traffic only enters a tunnel whose selectors match it (charon's own routes in table
//! 220 come first for those, unless a tunnel with 0.0.0.0/0 selectors makes the main table go
//! first: see `main_first`).

use super::links::ip;
use crate::dataplane::{DataPlaneError, GatewayPlan, RoutePlan, TunnelPlan};

/// The table policy routes resolve in.
const ROUTES_TABLE: &str = "230";
/// The priority of policy-route rules: after charon's rule 220, so that traffic a tunnel's
/// selectors already claim keeps going through that tunnel.
const RULE_PRIORITY: &str = "230";
/// The priority of the rule that looks the main table up before charon's (see `main_first`).
const MAIN_FIRST_PRIORITY: &str = "219";
/// Marks the routes this module owns in the main table.
const PROTO: &str = "static";

/// The metric of a route of weight `w` (0..=100): lower wins.
fn metric(weight: u32) -> String {
    (101 - weight.min(100)).to_string()
}

/// The plan's routes that can carry traffic now: those through a connection with a tunnel `up`,
/// or through one that negotiates when traffic arrives (its route must stay for that). A route
/// through a connection that takes effect immediately but is down is withdrawn, so that a standby
/// route to the same place takes over.
pub fn usable(plan: &GatewayPlan, up: impl Fn(&TunnelPlan) -> bool) -> Vec<RoutePlan> {
    plan.routes
        .iter()
        .filter(|r| {
            plan.connections
                .iter()
                .find(|c| c.id == r.connection_id)
                .is_some_and(|c| !c.effect_immediately || c.tunnels.iter().any(&up))
        })
        .cloned()
        .collect()
}

/// Whether the main table must be looked up before charon's table 220: when a tunnel's remote
/// selectors are 0.0.0.0/0, table 220 holds a default route into the tunnel, which would also
/// take the traffic the tunnel delivers for the gateway's own side (and every destination the
/// main table knows better: the VPC's subnet, BGP-learned and destination routes).
pub fn main_first(plan: &GatewayPlan) -> bool {
    plan.connections.iter().any(|c| c.remote_subnets.iter().any(|n| n.prefix_len() == 0))
}

/// Makes the namespace's Gatehouse routes exactly `routes`, leading to `dev`; with `main_first`,
/// the main table's routes (all but its default route) win over charon's table.
pub async fn program(ns: &str, dev: &str, routes: &[RoutePlan], main_first: bool) -> Result<(), DataPlaneError> {
    let rule = ["lookup", "main", "suppress_prefixlength", "0"];
    let has_rule = !ip(&["-n", ns, "rule", "show", "priority", MAIN_FIRST_PRIORITY]).await?.trim().is_empty();
    if main_first && !has_rule {
        ip(&[&["-n", ns, "rule", "add", "priority", MAIN_FIRST_PRIORITY][..], &rule].concat()).await?;
    } else if !main_first && has_rule {
        ip(&["-n", ns, "rule", "del", "priority", MAIN_FIRST_PRIORITY]).await?;
    }
    // Start from nothing of ours: flush our table, our rules and our main-table routes.
    let _ = ip(&["-n", ns, "route", "flush", "table", ROUTES_TABLE]).await;
    while ip(&["-n", ns, "rule", "del", "priority", RULE_PRIORITY]).await.is_ok() {}
    let _ = ip(&["-n", ns, "route", "flush", "table", "main", "proto", PROTO, "dev", dev]).await;
    let mut sources = Vec::new();
    for r in routes {
        let (dest, metric) = (r.dest.trunc().to_string(), metric(r.weight));
        match &r.source {
            None => {
                ip(&["-n", ns, "route", "append", &dest, "dev", dev, "proto", PROTO, "metric", &metric]).await?;
            }
            Some(source) => {
                let args = ["-n", ns, "route", "append", &dest, "dev", dev, "table", ROUTES_TABLE, "metric", &metric];
                ip(&args).await?;
                let from = source.trunc().to_string();
                if !sources.contains(&(from.clone(), dest.clone())) {
                    let rule = [
                        "-n",
                        ns,
                        "rule",
                        "add",
                        "priority",
                        RULE_PRIORITY,
                        "from",
                        &from,
                        "to",
                        &dest,
                        "lookup",
                        ROUTES_TABLE,
                    ];
                    ip(&rule).await?;
                    sources.push((from, dest));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_through_a_connection_that_is_down_are_withdrawn() {
        use crate::dataplane::simulated::tests::connection;
        let (mut active, mut standby, mut on_traffic) = (connection(None), connection(None), connection(None));
        (active.id, standby.id, on_traffic.id) = ("vco-a".into(), "vco-s".into(), "vco-t".into());
        (active.effect_immediately, standby.effect_immediately) = (true, true);
        active.tunnels[0].id = "tun-a".into();
        let route = |c: &str, weight| RoutePlan {
            dest: "10.9.0.0/16".parse().unwrap(),
            source: None,
            connection_id: c.into(),
            weight,
        };
        let plan = GatewayPlan {
            gateway_id: "vpn-1".into(),
            account_id: 1,
            vpc_id: "vpc-1".into(),
            generation: 1,
            public_ips: vec![],
            intranet_ip: "10.0.0.1".parse().unwrap(),
            connections: vec![active, standby, on_traffic],
            routes: vec![route("vco-a", 100), route("vco-s", 0), route("vco-t", 0), route("vco-gone", 100)],
            ssl_vpn: None,
            ipsec_server: None,
        };
        let ids = |routes: Vec<RoutePlan>| routes.into_iter().map(|r| r.connection_id).collect::<Vec<_>>();
        assert_eq!(ids(usable(&plan, |_| true)), ["vco-a", "vco-s", "vco-t"]);
        assert_eq!(ids(usable(&plan, |t| t.id != "tun-a")), ["vco-s", "vco-t"], "the active one is down");
    }

    #[test]
    fn the_main_table_goes_first_only_beside_a_tunnel_to_everywhere() {
        use crate::dataplane::{simulated::tests::connection, ConnectionPlan};
        let plan = |remote: &str| GatewayPlan {
            gateway_id: "vpn-1".into(),
            account_id: 1,
            vpc_id: "vpc-1".into(),
            generation: 1,
            public_ips: vec![],
            intranet_ip: "10.0.0.1".parse().unwrap(),
            connections: vec![ConnectionPlan { remote_subnets: vec![remote.parse().unwrap()], ..connection(None) }],
            routes: vec![],
            ssl_vpn: None,
            ipsec_server: None,
        };
        assert!(main_first(&plan("0.0.0.0/0")));
        assert!(!main_first(&plan("10.2.0.0/16")));
    }

    #[test]
    fn active_routes_win_over_standby_ones() {
        assert_eq!(metric(100), "1");
        assert_eq!(metric(0), "101");
        assert_eq!(metric(500), "1");
    }
}
