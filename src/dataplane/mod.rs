//! The data plane: what runs a VPN gateway's tunnels. The store holds the desired state; the
//! reconciler turns one gateway's share of it into a `GatewayPlan`, hands the plan to a
//! `DataPlane` outside any store transaction, and records the `GatewayReport` it answers with.
//! What happens later (a tunnel comes up or goes down, a peer dies, a probe fails) comes back as
//! `Event`s on a channel, which the reconciler records too.
//!
//! Everything crossing this seam is plain data (serde), so a data plane can later run as an agent
//! on another host. A data plane never touches the store, and handlers never touch a data plane.
//!
//! Implementations:
//! - `simulated`: the emulator's rules, no daemons (the default);
//! - `netns`: one network namespace and one strongSwan charon per gateway, driven over VICI.

pub mod netns;
pub mod remote_access;
pub mod simulated;

use std::net::Ipv4Addr;

use async_trait::async_trait;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use remote_access::{IpsecServerPlan, IpsecServerReport, SslVpnPlan, SslVpnReport};

crate::wire_enum!(
    /// Negotiation status of one tunnel (`Status` of a connection and of each tunnel).
    TunnelStatus {
        #[default]
        IkeSaNotEstablished = "ike_sa_not_established",
        IkeSaEstablished = "ike_sa_established",
        IpsecSaEstablished = "ipsec_sa_established",
    }
);

crate::wire_enum!(
    /// A tunnel's BGP session (`VpnBgpConfig.Status`, a tunnel's `BgpStatus`). `None` is a tunnel
    /// without BGP, which reports an empty status.
    BgpStatus {
        #[default]
        None = "",
        Success = "success",
        Failed = "failed",
    }
);

crate::wire_enum!(
    /// A connection's health check (`VcoHealthCheck.Status`); `Unknown` until a data plane reports.
    HealthStatus {
        #[default]
        Unknown = "",
        Success = "success",
        Failed = "failed",
    }
);

crate::wire_enum!(
    /// IKE version.
    IkeVersion {
        #[default]
        V2 = "ikev2",
        V1 = "ikev1",
    }
);

/// One proposal in the API's names (`aes`, `sha1`, `group2`, PFS `disabled`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub enc: String,
    pub auth: String,
    /// A DH group (`group2`), or `disabled` (no PFS).
    pub dh: String,
}

impl Proposal {
    /// The strongSwan proposal: cipher-integrity[-dh]. The hash names (md5, sha1, sha256, …) are
    /// the same in both worlds. SM4/SM3 (national-standard gateways) have no strongSwan
    /// equivalent and pass through as they are.
    pub fn strongswan(&self) -> String {
        let cipher = if self.enc == "aes" { "aes128" } else { &self.enc };
        [Some(cipher), Some(&self.auth), dh_group(&self.dh)].into_iter().flatten().collect::<Vec<_>>().join("-")
    }
}

/// strongSwan's name for an API DH group; None for `disabled`.
fn dh_group(pfs: &str) -> Option<&'static str> {
    match pfs {
        "group1" => Some("modp768"),
        "group2" => Some("modp1024"),
        "group5" => Some("modp1536"),
        "group14" => Some("modp2048"),
        "group24" => Some("modp2048s256"),
        _ => None,
    }
}

/// Secrets cross the seam in the clear (a remote agent needs them); `Debug` stays redacted.
mod exposed {
    use crate::secret::Secret;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(s: &Secret, ser: S) -> Result<S::Ok, S::Error> {
        s.expose().serialize(ser)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Secret, D::Error> {
        String::deserialize(de).map(Secret::new)
    }
}

mod exposed_opt {
    use crate::secret::Secret;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(s: &Option<Secret>, ser: S) -> Result<S::Ok, S::Error> {
        s.as_ref().map(Secret::expose).serialize(ser)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Secret>, D::Error> {
        Option::<String>::deserialize(de).map(|s| s.map(Secret::new))
    }
}

/// One tunnel as the gateway runs it. Local is the gateway, remote the customer gateway.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TunnelPlan {
    pub id: String,
    /// `master` (or the only tunnel) / `slave`.
    pub role: String,
    /// The gateway's public address this tunnel ends on.
    pub local_ip: Ipv4Addr,
    /// The customer gateway's address.
    pub remote_ip: Ipv4Addr,
    pub ike_version: IkeVersion,
    pub aggressive: bool,
    pub ike: Proposal,
    pub ike_lifetime_s: u32,
    pub local_id: String,
    pub remote_id: String,
    #[serde(with = "exposed")]
    pub psk: Secret,
    pub esp: Proposal,
    pub ipsec_lifetime_s: u32,
    /// The SA's volume limit in KB; 0: none.
    #[serde(default)]
    pub ipsec_lifetime_kb: u32,
    pub dpd: bool,
    pub nat_traversal: bool,
    pub bgp: Option<BgpPlan>,
    /// The status an operator forced (the control API); only the simulated plane takes it.
    #[serde(default)]
    pub forced: Option<TunnelStatus>,
}

/// A tunnel's BGP session: from `local_ip` (on the gateway's side of the tunnel) and
/// `local_asn` to the customer's `peer_ip`, both in `tunnel_cidr`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BgpPlan {
    pub local_asn: u32,
    /// The customer gateway's ASN; None when it has none (BGP cannot come up).
    pub peer_asn: Option<u32>,
    pub tunnel_cidr: Ipv4Net,
    pub local_ip: Ipv4Addr,
    pub peer_ip: Ipv4Addr,
    /// The customer gateway's AuthKey (TCP MD5), if it has one.
    #[serde(default, with = "exposed_opt")]
    pub auth_key: Option<Secret>,
}

/// A tunnel's traffic selectors on one side when it runs BGP: the connection's subnets, plus the
/// tunnel's CIDR unless they already hold it (the BGP session itself crosses the tunnel).
pub fn with_tunnel_cidr(subnets: &[Ipv4Net], tunnel_cidr: Option<Ipv4Net>) -> Vec<Ipv4Net> {
    let mut out = subnets.to_vec();
    if let Some(cidr) = tunnel_cidr.map(|c| c.trunc()) {
        if !subnets.iter().any(|s| s.contains(&cidr)) {
            out.push(cidr);
        }
    }
    out
}

/// The health check: probes from `sip` to `dip` through the tunnel every `interval_s`; `retry`
/// lost probes in a row mean failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthProbe {
    pub sip: Ipv4Addr,
    pub dip: Ipv4Addr,
    pub interval_s: u32,
    pub retry: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConnectionPlan {
    pub id: String,
    pub local_subnets: Vec<Ipv4Net>,
    pub remote_subnets: Vec<Ipv4Net>,
    /// Negotiate as soon as the connection is configured; otherwise when traffic arrives.
    pub effect_immediately: bool,
    /// A change made with EffectImmediately: negotiate again now, even if SAs are up.
    pub renegotiate: bool,
    /// Changed since the data plane last applied it (new, modified).
    pub changed: bool,
    pub health_check: Option<HealthProbe>,
    /// One tunnel, or master + slave.
    pub tunnels: Vec<TunnelPlan>,
    /// What each tunnel last reported (the simulated plane keeps established tunnels up).
    pub last_status: Vec<TunnelStatus>,
}

impl ConnectionPlan {
    /// Whether some tunnel of the connection runs BGP.
    pub fn runs_bgp(&self) -> bool {
        self.tunnels.iter().any(|t| t.bgp.is_some())
    }
}

/// A route the gateway programs: `dest` (and, for a policy route, `source`) through a
/// connection. Weight 100 is active, 0 standby.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutePlan {
    pub dest: Ipv4Net,
    pub source: Option<Ipv4Net>,
    pub connection_id: String,
    pub weight: u32,
}

/// One gateway's whole desired state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GatewayPlan {
    pub gateway_id: String,
    pub account_id: i64,
    pub vpc_id: String,
    /// Bumped by every change to the gateway's connections or routes: an outcome is recorded only
    /// while the gateway still has the generation it was computed for.
    pub generation: u64,
    /// InternetIp, then DisasterRecoveryInternetIp on dual-tunnel gateways.
    pub public_ips: Vec<Ipv4Addr>,
    pub intranet_ip: Ipv4Addr,
    pub connections: Vec<ConnectionPlan>,
    pub routes: Vec<RoutePlan>,
    /// The gateway's SSL-VPN server, if it has one (every plan carries it).
    #[serde(default)]
    pub ssl_vpn: Option<SslVpnPlan>,
    /// The gateway's IPsec server, if it has one (every plan carries it).
    #[serde(default)]
    pub ipsec_server: Option<IpsecServerPlan>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelReport {
    pub id: String,
    /// Orders what a data plane says about one tunnel: a status is recorded only over an older
    /// one, so a late apply outcome never overwrites a newer event.
    pub seq: u64,
    pub status: TunnelStatus,
    pub bgp_status: BgpStatus,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionReport {
    pub id: String,
    pub tunnels: Vec<TunnelReport>,
    pub health: HealthStatus,
    /// Prefixes learned over BGP through this connection.
    pub learned_routes: Vec<Ipv4Net>,
    /// Why the data plane could not run the connection as configured, if it could not.
    pub error: Option<String>,
}

impl ConnectionReport {
    /// A connection whose tunnels are as `status` says, with no BGP running (a BGP tunnel reports
    /// `failed`) and so nothing learned.
    pub fn without_bgp(
        c: &ConnectionPlan,
        status: impl Fn(&TunnelPlan) -> TunnelStatus,
        health: HealthStatus,
        error: Option<String>,
    ) -> Self {
        Self::new(c, status, |_| false, Vec::new(), health, error)
    }

    /// A connection whose tunnels are as `status` says, with the BGP sessions of those tunnels
    /// that run BGP up where `bgp_up` says so, and `learned_routes` learned over them.
    pub fn new(
        c: &ConnectionPlan,
        status: impl Fn(&TunnelPlan) -> TunnelStatus,
        bgp_up: impl Fn(&TunnelPlan) -> bool,
        learned_routes: Vec<Ipv4Net>,
        health: HealthStatus,
        error: Option<String>,
    ) -> Self {
        let tunnels = c
            .tunnels
            .iter()
            .map(|t| TunnelReport {
                id: t.id.clone(),
                seq: next_seq(),
                status: status(t),
                bgp_status: t.bgp_status(&bgp_up),
            })
            .collect();
        ConnectionReport { id: c.id.clone(), tunnels, health, learned_routes, error }
    }
}

impl TunnelPlan {
    /// The tunnel's BGP status: none without BGP, `success` while its session is up.
    pub fn bgp_status(&self, up: impl Fn(&TunnelPlan) -> bool) -> BgpStatus {
        match &self.bgp {
            None => BgpStatus::None,
            Some(_) if up(self) => BgpStatus::Success,
            Some(_) => BgpStatus::Failed,
        }
    }
}

/// What a connection's BGP sessions say, later than an apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpReport {
    pub connection_id: String,
    /// (tunnel ID, its session's status), for the tunnels that run BGP.
    pub tunnels: Vec<(String, BgpStatus)>,
    /// Prefixes learned over those sessions.
    pub learned_routes: Vec<Ipv4Net>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayReport {
    pub connections: Vec<ConnectionReport>,
    #[serde(default)]
    pub ssl_vpn: Option<SslVpnReport>,
    #[serde(default)]
    pub ipsec_server: Option<IpsecServerReport>,
}

/// What the data plane saw happen, later than an apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Tunnel {
        account_id: i64,
        gateway_id: String,
        connection_id: String,
        tunnel_id: String,
        /// See `TunnelReport::seq`.
        seq: u64,
        status: TunnelStatus,
        /// What happened, for the log: `ike-updown`, `child-rekey`, `charon exited`, …
        cause: String,
    },
    Health {
        account_id: i64,
        gateway_id: String,
        connection_id: String,
        status: HealthStatus,
    },
    /// The IPsec server's clients changed.
    IpsecServer {
        account_id: i64,
        gateway_id: String,
        report: IpsecServerReport,
    },
    /// A connection's BGP sessions or what they learned changed.
    Bgp {
        account_id: i64,
        gateway_id: String,
        report: BgpReport,
    },
    /// The SSL-VPN server's clients or log changed.
    SslVpn {
        account_id: i64,
        gateway_id: String,
        report: SslVpnReport,
    },
}

/// The next `TunnelReport::seq`: wall-clock nanoseconds, strictly increasing within a process,
/// so that sequence numbers also keep growing across restarts.
pub fn next_seq() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// A data-plane failure, with the detail an operator needs.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DataPlaneError(pub String);

impl DataPlaneError {
    pub fn new(detail: impl std::fmt::Display) -> Self {
        DataPlaneError(detail.to_string())
    }
}

/// A gateway known to the data plane, by the ids it was given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningGateway {
    pub gateway_id: String,
}

#[async_trait]
pub trait DataPlane: Send + Sync + 'static {
    /// Brings one gateway to `plan` and reports where each connection stands. Idempotent: the
    /// same plan twice changes nothing the second time. Connections missing from the plan go.
    async fn apply(&self, plan: GatewayPlan) -> Result<GatewayReport, DataPlaneError>;
    /// Removes everything of a gateway (tunnels, daemons, namespace). Unknown gateways are fine.
    async fn remove(&self, gateway_id: &str) -> Result<(), DataPlaneError>;
    /// The gateways this data plane runs, including ones left from an earlier process.
    async fn running(&self) -> Result<Vec<RunningGateway>, DataPlaneError>;
    /// Stops background work (supervisors, probes) without tearing down what runs.
    async fn shutdown(&self);
    /// Whether this data plane runs real things outside the store, which may drift from it: it
    /// is then handed complete plans, every gateway at start, and rid of what the store does not
    /// know. A stateless one (the simulated plane) gets only the changed connections.
    fn stateful(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_the_apis() {
        assert_eq!(TunnelStatus::IpsecSaEstablished.wire(), "ipsec_sa_established");
        assert_eq!(TunnelStatus::default().wire(), "ike_sa_not_established");
        assert_eq!(BgpStatus::None.wire(), "");
        assert_eq!(HealthStatus::Failed.wire(), "failed");
    }

    #[test]
    fn a_bgp_tunnels_selectors_carry_its_cidr_unless_they_hold_it() {
        let nets = |v: &[&str]| v.iter().map(|n| n.parse().unwrap()).collect::<Vec<Ipv4Net>>();
        let cidr = Some("169.254.10.0/30".parse().unwrap());
        assert_eq!(with_tunnel_cidr(&nets(&["10.1.0.0/16"]), cidr), nets(&["10.1.0.0/16", "169.254.10.0/30"]));
        assert_eq!(with_tunnel_cidr(&nets(&["0.0.0.0/0"]), cidr), nets(&["0.0.0.0/0"]));
        assert_eq!(with_tunnel_cidr(&nets(&["10.1.0.0/16"]), None), nets(&["10.1.0.0/16"]));
    }

    #[test]
    fn proposals_in_strongswan_names() {
        let p = |e: &str, a: &str, d: &str| Proposal { enc: e.into(), auth: a.into(), dh: d.into() }.strongswan();
        assert_eq!(p("aes", "sha1", "group2"), "aes128-sha1-modp1024");
        assert_eq!(p("3des", "md5", "group1"), "3des-md5-modp768");
        assert_eq!(p("aes192", "sha512", "group5"), "aes192-sha512-modp1536");
        assert_eq!(p("aes256", "sha256", "disabled"), "aes256-sha256");
    }
}
