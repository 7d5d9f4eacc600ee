//! A gateway's destination and policy routes, programmed in its namespace. Routes lead to the
//! ESP device (`ipsec0` with kernel-libipsec; the uplink with kernel ESP, where XFRM policies
//! pick the packets to protect); the weight becomes the metric, so an active route (100) wins
//! over a standby one (0) to the same place.
//!
//! Gatehouse owns routing table `ROUTES_TABLE` and the rules at priority `RULE_PRIORITY` in the
//! namespace: every apply rewrites both to exactly the plan's routes. Policy routes (source +
//! destination) are rules into the table; destination routes live in the main table under
//! protocol `static` with Gatehouse's metrics. Traffic only enters a tunnel whose selectors match
//! it (charon's own routes in table 220 come first for those).

use super::links::ip;
use crate::dataplane::{DataPlaneError, RoutePlan};

/// The table policy routes resolve in.
const ROUTES_TABLE: &str = "230";
/// The priority of policy-route rules: after charon's rule 220, so that traffic a tunnel's
/// selectors already claim keeps going through that tunnel.
const RULE_PRIORITY: &str = "230";
/// Marks the routes this module owns in the main table.
const PROTO: &str = "static";

/// The metric of a route of weight `w` (0..=100): lower wins.
fn metric(weight: u32) -> String {
    (101 - weight.min(100)).to_string()
}

/// Makes the namespace's Gatehouse routes exactly `routes`, leading to `dev`.
pub async fn program(ns: &str, dev: &str, routes: &[RoutePlan]) -> Result<(), DataPlaneError> {
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
    fn active_routes_win_over_standby_ones() {
        assert_eq!(metric(100), "1");
        assert_eq!(metric(0), "101");
        assert_eq!(metric(500), "1");
    }
}
