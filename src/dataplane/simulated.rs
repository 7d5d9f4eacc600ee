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
//! - A tunnel whose status an operator forced (the control API) reports that status.
//! - The health check succeeds when the probed tunnel (the master) is established, and fails
//!   otherwise; a disabled check reports `success`, as the real service does.
//!
//! - An SSL-VPN server runs as configured and logs, in OpenVPN's format, what happens to it:
//!   started, restarted with a changed configuration, a certificate issued or revoked. No client
//!   ever connects; an IPsec server likewise runs without clients.
//!
//! Like a real data plane it also reports each negotiated tunnel as an event.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::mpsc::UnboundedSender;

use super::remote_access::{IpsecServerReport, LogLine, SslProto, SslVpnPlan, SslVpnReport};
use super::{
    next_seq, BgpStatus, ConnectionPlan, ConnectionReport, DataPlane, DataPlaneError, Event, GatewayPlan,
    GatewayReport, HealthStatus, RunningGateway, TunnelReport, TunnelStatus,
};

pub struct Simulated {
    events: UnboundedSender<Event>,
    /// Per gateway, the SSL-VPN server it runs.
    ssl: Mutex<HashMap<String, SslRunning>>,
}

/// What a simulated SSL-VPN server runs: its settings, the certificates it knows of.
#[derive(Clone, PartialEq, Default)]
struct SslRunning {
    settings: String,
    clients: BTreeSet<(String, u64)>,
    revoked: BTreeSet<(String, u64)>,
}

impl SslRunning {
    fn of(s: &SslVpnPlan) -> SslRunning {
        let settings = SslVpnPlan { clients: Vec::new(), revoked: Vec::new(), crl: String::new(), ..s.clone() };
        SslRunning {
            settings: serde_json::to_string(&settings).unwrap_or_default(),
            clients: s.clients.iter().map(|c| (c.id.clone(), c.serial)).collect(),
            revoked: s.revoked.iter().map(|c| (c.id.clone(), c.serial)).collect(),
        }
    }
}

impl Simulated {
    pub fn new(events: UnboundedSender<Event>) -> Self {
        Simulated { events, ssl: Mutex::new(HashMap::new()) }
    }

    /// Runs the plan's SSL-VPN server; the report carries what its log gained.
    fn ssl_vpn(&self, plan: &GatewayPlan) -> Option<SslVpnReport> {
        let mut running = self.ssl.lock().expect("ssl");
        let Some(s) = &plan.ssl_vpn else {
            running.remove(&plan.gateway_id);
            return None;
        };
        let now = SslRunning::of(s);
        let was = running.insert(plan.gateway_id.clone(), now.clone());
        let mut log = Vec::new();
        let mut micros = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1000;
        let mut say = |msg: String| {
            log.push(LogLine::openvpn(micros, &msg));
            micros += 1;
        };
        let was = match was {
            Some(w) if w.settings == now.settings => w,
            restarted => {
                if restarted.is_some() {
                    say("SIGHUP[hard,] received, process restarting".into());
                }
                let ip = plan.public_ips.first().map(|a| a.to_string()).unwrap_or_default();
                say(match s.proto {
                    SslProto::Udp => format!("UDPv4 link local (bound): [AF_INET]{ip}:{}", s.port),
                    SslProto::Tcp => format!("Listening for incoming TCP connection on [AF_INET]{ip}:{}", s.port),
                });
                let pool = s.client_ip_pool;
                let base = std::net::Ipv4Addr::from(u32::from(pool.network()) + 2);
                // As OpenVPN's subnet topology counts: the network, the server and broadcast out.
                let size = (1u64 << (32 - pool.prefix_len())).saturating_sub(3);
                say(format!("IFCONFIG POOL IPv4: base={base} size={size}"));
                say(format!(
                    "Data Channel: cipher '{}', compression {}",
                    s.cipher.wire(),
                    if s.compress { "lzo" } else { "off" }
                ));
                say("Initialization Sequence Completed".into());
                // A first start (also after Gatehouse restarted) serves the certificates there
                // are; a restart keeps knowing what it knew.
                restarted.map_or_else(|| now.clone(), |w| SslRunning { settings: now.settings.clone(), ..w })
            }
        };
        for (id, serial) in now.clients.difference(&was.clients) {
            say(format!("{id} certificate issued, serial {serial:X}"));
        }
        let revoked: Vec<_> = now.revoked.difference(&was.revoked).collect();
        if !revoked.is_empty() {
            say(format!("CRL: loaded 1 CRLs from file [[INLINE]] ({} revoked)", now.revoked.len()));
        }
        for (id, serial) in revoked {
            say(format!("{id} certificate revoked, serial {serial:X}: refused from its next connection"));
        }
        Some(SslVpnReport { id: s.id.clone(), connections: 0, log, error: None })
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
        report.ssl_vpn = self.ssl_vpn(&plan);
        report.ipsec_server =
            plan.ipsec_server.as_ref().map(|s| IpsecServerReport { id: s.id.clone(), ..Default::default() });
        Ok(report)
    }

    async fn remove(&self, gateway_id: &str) -> Result<(), DataPlaneError> {
        self.ssl.lock().expect("ssl").remove(gateway_id);
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
            let status = t.forced.unwrap_or(if negotiates || was == TunnelStatus::IpsecSaEstablished {
                TunnelStatus::IpsecSaEstablished
            } else {
                TunnelStatus::IkeSaNotEstablished
            });
            let established = status == TunnelStatus::IpsecSaEstablished;
            let bgp_status = match (&t.bgp, established) {
                (None, _) => BgpStatus::None,
                (Some(b), true) if b.peer_asn.is_some() => BgpStatus::Success,
                (Some(_), _) => BgpStatus::Failed,
            };
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
            ipsec_lifetime_kb: 0,
            dpd: true,
            nat_traversal: true,
            bgp,
            forced: None,
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

    pub(crate) fn bgp(peer_asn: Option<u32>) -> Option<BgpPlan> {
        Some(BgpPlan {
            local_asn: 45104,
            peer_asn,
            tunnel_cidr: "169.254.10.0/30".parse().unwrap(),
            local_ip: "169.254.10.1".parse().unwrap(),
            peer_ip: "169.254.10.2".parse().unwrap(),
            auth_key: None,
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
    fn a_forced_status_wins_over_the_rules() {
        let mut c = connection(bgp(Some(65001)));
        c.effect_immediately = true;
        c.tunnels[0].forced = Some(TunnelStatus::IkeSaNotEstablished);
        let r = negotiate(&c);
        assert_eq!(statuses(&r), vec![(TunnelStatus::IkeSaNotEstablished, BgpStatus::Failed)]);
        assert!(r.learned_routes.is_empty(), "no BGP over a tunnel forced down");
        c.effect_immediately = false;
        c.tunnels[0].forced = Some(TunnelStatus::IpsecSaEstablished);
        assert_eq!(statuses(&negotiate(&c)), vec![(TunnelStatus::IpsecSaEstablished, BgpStatus::Success)]);
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
            ssl_vpn: None,
            ipsec_server: None,
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
