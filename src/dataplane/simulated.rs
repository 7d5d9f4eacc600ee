//! The emulator's data plane: no daemons, tunnels negotiate by the rules below, which mirror how
//! the real gateway behaves against a customer gateway configured exactly as
//! DownloadVpnConnectionConfig describes.
//!
//! - A tunnel negotiates when there is a reason to: the connection takes effect immediately
//!   (EffectImmediately, or a change made with it), or traffic flows through it. The only traffic
//!   the emulator knows of is the connection's own health-check probes.
//! - A tunnel that negotiates reaches `ipsec_sa_established`. A tunnel that has no reason to
//!   negotiate stays as it was (`ike_sa_not_established` when new).
//! - BGP comes up (`success`) on an established tunnel whose customer gateway has an ASN;
//!   otherwise `failed`. Tunnels without BGP report no BGP status. Once BGP is up, the simulated
//!   peer advertises the connection's RemoteSubnet: those are the routes the gateway learns.
//! - The health check succeeds when the probed tunnel (the master) is established, and fails
//!   otherwise; a disabled check reports `success`, as the real service does.
//!
//! Like a real data plane it also reports each negotiated tunnel as an event.

use async_trait::async_trait;
use tokio::sync::mpsc::UnboundedSender;

use super::{
    next_seq, BgpStatus, ConnectionPlan, ConnectionReport, DataPlane, DataPlaneError, Event, GatewayPlan,
    GatewayReport, HealthStatus, RunningGateway, TunnelReport, TunnelStatus,
};

pub struct Simulated {
    events: UnboundedSender<Event>,
}

impl Simulated {
    pub fn new(events: UnboundedSender<Event>) -> Self {
        Simulated { events }
    }
}

#[async_trait]
impl DataPlane for Simulated {
    async fn apply(&self, plan: GatewayPlan) -> Result<GatewayReport, DataPlaneError> {
        let mut report = GatewayReport::default();
        for conn in plan.connections.iter().filter(|c| c.changed) {
            let r = negotiate(conn);
            for t in r.tunnels.iter().filter(|t| t.status == TunnelStatus::IpsecSaEstablished) {
                let _ = self.events.send(Event::Tunnel {
                    account_id: plan.account_id,
                    gateway_id: plan.gateway_id.clone(),
                    connection_id: conn.id.clone(),
                    tunnel_id: t.id.clone(),
                    seq: t.seq,
                    status: t.status,
                    cause: "negotiated".into(),
                });
            }
            report.connections.push(r);
        }
        Ok(report)
    }

    async fn remove(&self, _gateway_id: &str) -> Result<(), DataPlaneError> {
        Ok(())
    }

    /// Nothing runs: there is nothing to adopt or sweep.
    async fn running(&self) -> Result<Vec<RunningGateway>, DataPlaneError> {
        Ok(Vec::new())
    }

    async fn shutdown(&self) {}
}

/// The simulated negotiation of one connection.
pub fn negotiate(conn: &ConnectionPlan) -> ConnectionReport {
    let negotiates = conn.renegotiate || conn.effect_immediately || conn.health_check.is_some();
    let tunnels: Vec<TunnelReport> = conn
        .tunnels
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let was = conn.last_status.get(i).copied().unwrap_or_default();
            let established = negotiates || was == TunnelStatus::IpsecSaEstablished;
            let bgp_status = match (&t.bgp, established) {
                (None, _) => BgpStatus::None,
                (Some(b), true) if b.peer_asn.is_some() => BgpStatus::Success,
                (Some(_), _) => BgpStatus::Failed,
            };
            let status = if established { TunnelStatus::IpsecSaEstablished } else { TunnelStatus::IkeSaNotEstablished };
            TunnelReport { id: t.id.clone(), seq: next_seq(), status, bgp_status }
        })
        .collect();
    let health = match (&conn.health_check, tunnels.first().map(|t| t.status)) {
        (Some(_), Some(TunnelStatus::IpsecSaEstablished)) | (None, _) => HealthStatus::Success,
        (Some(_), _) => HealthStatus::Failed,
    };
    let learned_routes = if tunnels.iter().any(|t| t.bgp_status == BgpStatus::Success) {
        conn.remote_subnets.clone()
    } else {
        Vec::new()
    };
    ConnectionReport { id: conn.id.clone(), tunnels, health, learned_routes, error: None }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dataplane::{BgpPlan, HealthProbe, IkeVersion, Proposal, TunnelPlan};
    use crate::secret::Secret;

    pub(crate) fn tunnel(id: &str, bgp: Option<BgpPlan>) -> TunnelPlan {
        let p = |enc: &str, auth: &str| Proposal { enc: enc.into(), auth: auth.into(), dh: "group2".into() };
        TunnelPlan {
            id: id.into(),
            role: "master".into(),
            local_ip: "198.18.0.1".parse().unwrap(),
            remote_ip: "203.0.113.5".parse().unwrap(),
            ike_version: IkeVersion::V2,
            aggressive: false,
            ike: p("aes", "md5"),
            ike_lifetime_s: 86400,
            local_id: "198.18.0.1".into(),
            remote_id: "203.0.113.5".into(),
            psk: Secret::new("psk"),
            esp: p("aes", "md5"),
            ipsec_lifetime_s: 86400,
            dpd: true,
            nat_traversal: true,
            bgp,
        }
    }

    pub(crate) fn connection(bgp: Option<BgpPlan>) -> ConnectionPlan {
        ConnectionPlan {
            id: "vco-1".into(),
            local_subnets: vec!["10.0.0.0/16".parse().unwrap()],
            remote_subnets: vec!["192.168.0.0/24".parse().unwrap(), "192.168.1.0/24".parse().unwrap()],
            effect_immediately: false,
            renegotiate: false,
            changed: true,
            health_check: None,
            tunnels: vec![tunnel("tun-1", bgp)],
            last_status: vec![TunnelStatus::IkeSaNotEstablished],
        }
    }

    fn bgp(peer_asn: Option<u32>) -> Option<BgpPlan> {
        Some(BgpPlan {
            local_asn: 45104,
            peer_asn,
            tunnel_cidr: "169.254.10.0/30".into(),
            local_ip: "169.254.10.1".into(),
            peer_ip: "169.254.10.2".into(),
        })
    }

    fn statuses(r: &ConnectionReport) -> Vec<(TunnelStatus, BgpStatus)> {
        r.tunnels.iter().map(|t| (t.status, t.bgp_status)).collect()
    }

    #[test]
    fn a_new_connection_waits_for_a_reason_to_negotiate() {
        let r = negotiate(&connection(None));
        assert_eq!(statuses(&r), vec![(TunnelStatus::IkeSaNotEstablished, BgpStatus::None)]);
        assert_eq!(r.health, HealthStatus::Success);
        assert!(r.learned_routes.is_empty());
    }

    #[test]
    fn effect_immediately_or_health_probes_bring_the_tunnel_up() {
        let mut c = connection(None);
        c.effect_immediately = true;
        assert_eq!(negotiate(&c).tunnels[0].status, TunnelStatus::IpsecSaEstablished);
        c.effect_immediately = false;
        c.health_check = Some(HealthProbe {
            sip: "10.0.0.1".parse().unwrap(),
            dip: "192.168.0.1".parse().unwrap(),
            interval_s: 3,
            retry: 3,
        });
        let r = negotiate(&c);
        assert_eq!((r.tunnels[0].status, r.health), (TunnelStatus::IpsecSaEstablished, HealthStatus::Success));
        // An established tunnel stays up when a later change does not renegotiate it.
        c.health_check = None;
        c.last_status = vec![TunnelStatus::IpsecSaEstablished];
        assert_eq!(negotiate(&c).tunnels[0].status, TunnelStatus::IpsecSaEstablished);
    }

    #[test]
    fn bgp_needs_an_established_tunnel_and_a_peer_asn_then_learns_the_remote_subnet() {
        let mut c = connection(bgp(Some(65001)));
        assert_eq!(negotiate(&c).tunnels[0].bgp_status, BgpStatus::Failed);
        c.effect_immediately = true;
        let r = negotiate(&c);
        assert_eq!(r.tunnels[0].bgp_status, BgpStatus::Success);
        assert_eq!(r.learned_routes, c.remote_subnets);
        let c = ConnectionPlan { tunnels: vec![tunnel("tun-1", bgp(None))], ..c };
        assert_eq!(negotiate(&c).tunnels[0].bgp_status, BgpStatus::Failed);
    }

    #[tokio::test]
    async fn established_tunnels_come_back_as_events_too() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let plane = Simulated::new(tx);
        let mut c = connection(None);
        c.effect_immediately = true;
        let plan = GatewayPlan {
            gateway_id: "vpn-1".into(),
            account_id: 1,
            vpc_id: "vpc-1".into(),
            generation: 1,
            public_ips: vec!["198.18.0.1".parse().unwrap()],
            intranet_ip: "172.16.0.1".parse().unwrap(),
            connections: vec![c, ConnectionPlan { id: "vco-2".into(), changed: false, ..connection(None) }],
            routes: vec![],
        };
        let report = plane.apply(plan).await.unwrap();
        assert_eq!(report.connections.len(), 1, "only changed connections are negotiated");
        match rx.try_recv().unwrap() {
            Event::Tunnel { tunnel_id, status, .. } => {
                assert_eq!((tunnel_id.as_str(), status), ("tun-1", TunnelStatus::IpsecSaEstablished))
            }
            other => panic!("{other:?}"),
        }
    }
}
