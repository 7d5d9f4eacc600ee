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
    let learned_routes =
        if tunnels.iter().any(|t| t.bgp_status == "success") { conn.remote_subnets() } else { Vec::new() };
    Report { tunnels, health_status, learned_routes }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::actions::ipsec::{BgpConfig, Defaults, HealthCheckConfig, IkeConfig, IpsecConfig, TunnelSpec};
    use crate::actions::vpn_connections::Tunnel;
    use crate::secret::MasterKey;

    pub(crate) fn key() -> MasterKey {
        MasterKey::from_hex(&"11".repeat(32)).unwrap()
    }

    pub(crate) fn spec(cgw: &str, ike: Option<&str>, bgp: Option<&str>) -> TunnelSpec {
        let key = key();
        let d =
            Defaults { local_ip: "198.18.0.1", remote_ip: "203.0.113.5", national_standard: false, master_key: &key };
        TunnelSpec {
            role: "master".into(),
            customer_gateway_id: cgw.into(),
            enable_dpd: true,
            enable_nat_traversal: true,
            remote_ca_certificate: String::new(),
            ike: IkeConfig::parse(ike, &d).unwrap(),
            ipsec: IpsecConfig::parse(None, &d).unwrap(),
            bgp: BgpConfig::parse(bgp).unwrap(),
        }
    }

    pub(crate) fn connection(id: &str, spec: TunnelSpec, local: &str, remote: &str) -> VpnConnection {
        VpnConnection {
            id: id.into(),
            account_id: 1,
            region_id: "cn-hangzhou".into(),
            vpn_gateway_id: "vpn-1".into(),
            name: String::new(),
            local_subnet: local.into(),
            remote_subnet: remote.into(),
            effect_immediately: false,
            auto_config_route: false,
            health_check: HealthCheckConfig::default(),
            health_status: String::new(),
            enable_tunnels_bgp: false,
            dual_tunnel: false,
            tunnels: vec![Tunnel {
                id: format!("tun-{id}"),
                internet_ip: "198.18.0.1".into(),
                spec,
                status: NOT_ESTABLISHED.into(),
                bgp_status: String::new(),
            }],
            state: "updating".into(),
            renegotiate: false,
            created_ms: 0,
        }
    }

    fn cgw(asn: Option<u32>) -> CustomerGateway {
        CustomerGateway {
            id: "cgw-1".into(),
            account_id: 1,
            region_id: "cn-hangzhou".into(),
            ip_address: "203.0.113.5".into(),
            name: String::new(),
            description: String::new(),
            asn,
            auth_key: None,
            created_ms: 0,
        }
    }

    #[test]
    fn a_new_connection_waits_for_a_reason_to_negotiate() {
        let c = connection("a", spec("cgw-1", None, None), "10.0.0.0/16", "192.168.0.0/24");
        let r = negotiate(&c, &[cgw(None)]);
        assert_eq!(r.tunnels, vec![TunnelReport { status: NOT_ESTABLISHED, bgp_status: "" }]);
        assert_eq!(r.health_status, "success");
        assert!(r.learned_routes.is_empty());
    }

    #[test]
    fn effect_immediately_or_health_probes_bring_the_tunnel_up() {
        let mut c = connection("a", spec("cgw-1", None, None), "10.0.0.0/16", "192.168.0.0/24");
        c.effect_immediately = true;
        assert_eq!(negotiate(&c, &[cgw(None)]).tunnels[0].status, ESTABLISHED);
        c.effect_immediately = false;
        c.health_check.enable = true;
        let r = negotiate(&c, &[cgw(None)]);
        assert_eq!((r.tunnels[0].status, r.health_status), (ESTABLISHED, "success"));
        // An established tunnel stays up when a later change does not renegotiate it.
        c.health_check.enable = false;
        c.tunnels[0].status = ESTABLISHED.into();
        assert_eq!(negotiate(&c, &[cgw(None)]).tunnels[0].status, ESTABLISHED);
    }

    #[test]
    fn bgp_needs_an_established_tunnel_and_a_peer_asn_then_learns_the_remote_subnet() {
        let bgp = r#"{"EnableBgp": true, "TunnelCidr": "169.254.10.0/30", "LocalBgpIp": "169.254.10.1"}"#;
        let mut c = connection("a", spec("cgw-1", None, Some(bgp)), "10.0.0.0/16", "192.168.0.0/24,192.168.1.0/24");
        assert_eq!(negotiate(&c, &[cgw(Some(65001))]).tunnels[0].bgp_status, "failed");
        c.effect_immediately = true;
        assert_eq!(negotiate(&c, &[cgw(None)]).tunnels[0].bgp_status, "failed");
        let r = negotiate(&c, &[cgw(Some(65001))]);
        assert_eq!(r.tunnels[0].bgp_status, "success");
        assert_eq!(r.learned_routes, vec!["192.168.0.0/24".parse().unwrap(), "192.168.1.0/24".parse().unwrap()]);
    }
}
