//! What the data plane reports about a connection's tunnels. The emulator's data plane is
//! simulated by the rules below; a real one (strongSwan over VICI) will report the same shape.
//!
//! The simulated rules, which mirror how the real gateway negotiates:
//! - A tunnel negotiates when there is a reason to: the connection takes effect immediately
//!   (EffectImmediately, or a change made with it), or traffic flows through it. The only traffic
//!   the emulator knows of is the connection's own health-check probes.
//! - A tunnel that negotiates reaches `ipsec_sa_established`: the simulated peer is the customer
//!   gateway configured exactly as DownloadVpnConnectionConfig describes. A tunnel that has no
//!   reason to negotiate stays as it was (`ike_sa_not_established` when new).
//! - BGP comes up (`success`) on an established tunnel whose customer gateway has an ASN;
//!   otherwise `failed`. Tunnels without BGP report no BGP status. Once BGP is up, the simulated
//!   peer advertises the connection's RemoteSubnet: those are the routes the gateway learns.
//! - The health check succeeds when the probed tunnel (the master) is established, and fails
//!   otherwise; a disabled check reports `success`, as the real service does.

use crate::actions::customer_gateways::CustomerGateway;
use crate::actions::vpn_connections::VpnConnection;

pub const ESTABLISHED: &str = "ipsec_sa_established";
pub const NOT_ESTABLISHED: &str = "ike_sa_not_established";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelReport {
    pub status: &'static str,
    pub bgp_status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub tunnels: Vec<TunnelReport>,
    pub health_status: &'static str,
    /// Prefixes learned over BGP through this connection.
    pub learned_routes: Vec<ipnet::Ipv4Net>,
}

/// The simulated negotiation of `conn`, whose customer gateways are among `cgws`.
pub fn negotiate(conn: &VpnConnection, cgws: &[CustomerGateway]) -> Report {
    let negotiates = conn.renegotiate || conn.effect_immediately || conn.health_check.enable;
    let tunnels: Vec<TunnelReport> = conn
        .tunnels
        .iter()
        .map(|t| {
            let established = negotiates || t.status == ESTABLISHED;
            let cgw = cgws.iter().find(|c| c.id == t.spec.customer_gateway_id);
            let bgp_status = match (t.spec.bgp.enable_bgp, established && cgw.is_some_and(|c| c.asn.is_some())) {
                (false, _) => "",
                (true, true) => "success",
                (true, false) => "failed",
            };
            TunnelReport { status: if established { ESTABLISHED } else { NOT_ESTABLISHED }, bgp_status }
        })
        .collect();
    let health_status = match (conn.health_check.enable, tunnels.first().map(|t| t.status)) {
        (true, Some(ESTABLISHED)) | (false, _) => "success",
        (true, _) => "failed",
    };
    let learned_routes = if tunnels.iter().any(|t| t.bgp_status == "success") { conn.remote_subnets() } else { Vec::new() };
    Report { tunnels, health_status, learned_routes }
}
