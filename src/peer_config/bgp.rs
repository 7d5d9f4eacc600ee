//! The customer's BGP side of a connection, for FRR (`bgpd.conf`) or BIRD 2 (`bird.conf`): one
//! session per BGP tunnel, from the customer's address in the TunnelCidr and the customer
//! gateway's ASN (and AuthKey) to the gateway's LocalBgpIp and LocalAsn, with the timers the
//! gateway uses; the customer announces `announce` and takes what the gateway announces (its VPC
//! side). Tunnels whose customer gateways have different ASNs run on different devices: each
//! gets a block of its own, headed by the customer gateway it belongs to.
//!
//! FRR ≥ 7.4 exchanges nothing over eBGP without a policy (`no bgp ebgp-requires-policy`), and
//! announces a `network` only when its prefix is in the routing table (`no bgp network
//! import-check` lifts that, so an aggregate can be announced).

use std::collections::BTreeMap;
use std::fmt::Write;

use ipnet::Ipv4Net;

use super::{PeerTunnel, PeerView};

/// Which BGP daemon the customer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BgpDaemon {
    Frr,
    Bird,
}

/// The gateway's timers (see dataplane/netns/bird.rs): keepalive, hold, connect retry.
const KEEPALIVE_S: u32 = 10;
const HOLD_S: u32 = 30;
const CONNECT_RETRY_S: u32 = 5;

/// Writes one customer gateway's block: its ASN, its sessions, what it announces.
type Render = fn(&mut String, u32, &[&Session], &[Ipv4Net]);

/// One BGP tunnel as the customer sees it.
struct Session<'a> {
    tunnel: &'a PeerTunnel<'a>,
    /// The customer's address and the prefix length of the TunnelCidr.
    local: String,
    prefix_len: u8,
    /// The gateway's address.
    remote: &'a str,
}

/// The customer's BGP configuration for `c`, announcing `announce` (by default the connection's
/// RemoteSubnet other than 0.0.0.0/0). None when no tunnel of `c` runs BGP.
pub fn bgp_conf(c: &PeerView, daemon: BgpDaemon, announce: &[Ipv4Net]) -> Option<String> {
    let sessions: Vec<Session> = c
        .tunnels
        .iter()
        .filter(|t| t.bgp.enable_bgp)
        .map(|t| Session {
            tunnel: t,
            local: t.bgp.peer_bgp_ip(),
            prefix_len: t.bgp.tunnel_cidr.parse::<Ipv4Net>().map_or(30, |n| n.prefix_len()),
            remote: &t.bgp.local_bgp_ip,
        })
        .collect();
    if sessions.is_empty() {
        return None;
    }
    let announce: Vec<Ipv4Net> = if announce.is_empty() {
        super::subnets(c.remote_subnet).into_iter().filter(|n| n.prefix_len() > 0).map(|n| n.trunc()).collect()
    } else {
        announce.to_vec()
    };
    // One block per customer ASN (per device).
    let mut by_asn: BTreeMap<Option<u32>, Vec<&Session>> = BTreeMap::new();
    for s in &sessions {
        by_asn.entry(s.tunnel.customer_asn).or_default().push(s);
    }
    let (comment, what, render): (&str, &str, Render) = match daemon {
        BgpDaemon::Frr => ("!", "FRR bgpd.conf", frr),
        BgpDaemon::Bird => ("#", "BIRD 2 bird.conf", bird),
    };
    let mut out = String::new();
    let _ = writeln!(out, "{comment} {what} for the customer side of IPsec connection {}.", c.name);
    for s in &sessions {
        let _ = writeln!(
            out,
            "{comment} Put {}/{} on the interface of tunnel {} (toward {}) before starting.",
            s.local,
            s.prefix_len,
            if s.tunnel.label.is_empty() { c.name } else { s.tunnel.label },
            s.tunnel.gateway_ip
        );
    }
    for (asn, group) in by_asn {
        let Some(asn) = asn else {
            let _ = writeln!(
                out,
                "{comment} The customer gateway {} has no ASN: BGP cannot run over its tunnels.",
                group[0].tunnel.customer_ip
            );
            continue;
        };
        let _ = writeln!(out, "{comment} On the customer gateway {} (AS {asn}):", group[0].tunnel.customer_ip);
        render(&mut out, asn, &group, &announce);
    }
    Some(out)
}

fn frr(out: &mut String, asn: u32, sessions: &[&Session], announce: &[Ipv4Net]) {
    let _ = writeln!(out, "router bgp {asn}");
    let _ = writeln!(out, " bgp router-id {}", sessions[0].tunnel.customer_ip);
    let _ = writeln!(out, " no bgp ebgp-requires-policy");
    let _ = writeln!(out, " no bgp network import-check");
    let _ = writeln!(out, " timers bgp {KEEPALIVE_S} {HOLD_S}");
    for s in sessions {
        let _ = writeln!(out, " neighbor {} remote-as {}", s.remote, s.tunnel.bgp.local_asn);
        let _ = writeln!(out, " neighbor {} update-source {}", s.remote, s.local);
        let _ = writeln!(out, " neighbor {} timers connect {CONNECT_RETRY_S}", s.remote);
        if let Some(key) = s.tunnel.auth_key {
            let _ = writeln!(out, " neighbor {} password {}", s.remote, key.expose());
        }
    }
    let _ = writeln!(out, " address-family ipv4 unicast");
    for n in announce {
        let _ = writeln!(out, "  network {n}");
    }
    let _ = writeln!(out, " exit-address-family");
    let _ = writeln!(out, "exit");
    let _ = writeln!(out, "!");
}

fn bird(out: &mut String, asn: u32, sessions: &[&Session], announce: &[Ipv4Net]) {
    let _ = writeln!(out, "router id {};", sessions[0].tunnel.customer_ip);
    let _ = writeln!(out, "protocol device {{ scan time 5; }}");
    if !announce.is_empty() {
        // Routes to announce only: the kernel protocol installs BGP routes and nothing else.
        let _ = writeln!(out, "protocol static announced {{");
        let _ = writeln!(out, "  ipv4;");
        for n in announce {
            let _ = writeln!(out, "  route {n} unreachable;");
        }
        let _ = writeln!(out, "}}");
    }
    let _ = writeln!(out, "protocol kernel {{ ipv4 {{ import none; export where source = RTS_BGP; }}; }}");
    for (i, s) in sessions.iter().enumerate() {
        let _ = writeln!(out, "protocol bgp gateway{} {{", i + 1);
        let _ = writeln!(out, "  local {} as {asn};", s.local);
        let _ = writeln!(out, "  neighbor {} as {};", s.remote, s.tunnel.bgp.local_asn);
        if let Some(key) = s.tunnel.auth_key {
            let _ = writeln!(out, "  password \"{}\";", key.expose());
        }
        let _ =
            writeln!(out, "  hold time {HOLD_S}; keepalive time {KEEPALIVE_S}; connect retry time {CONNECT_RETRY_S};");
        let _ = writeln!(out, "  ipv4 {{ import all; export where source = RTS_STATIC; next hop self; }};");
        let _ = writeln!(out, "}}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::ipsec::{BgpConfig, IkeConfig, IpsecConfig};
    use crate::secret::Secret;

    fn bgp(cidr: &str, local: &str) -> BgpConfig {
        BgpConfig { enable_bgp: true, local_asn: 45104, tunnel_cidr: cidr.into(), local_bgp_ip: local.into() }
    }

    fn tunnel<'a>(
        label: &'a str,
        bgp: &'a BgpConfig,
        asn: Option<u32>,
        key: Option<&'a Secret>,
        parts: &'a (IkeConfig, IpsecConfig, Secret),
    ) -> PeerTunnel<'a> {
        PeerTunnel {
            label,
            gateway_ip: "47.0.0.1",
            customer_ip: "8.8.0.1",
            ike: &parts.0,
            psk: &parts.2,
            ipsec: &parts.1,
            bgp,
            customer_asn: asn,
            auth_key: key,
            enable_dpd: true,
            enable_nat_traversal: true,
        }
    }

    fn has(conf: &str, line: &str) -> bool {
        conf.lines().any(|l| l == line)
    }

    #[test]
    fn frr_and_bird_sides_of_a_bgp_tunnel() {
        let parts =
            (super::super::tests::ike("ikev2", "main"), super::super::tests::ipsec("group2"), Secret::new("psk"));
        let (b, key) = (bgp("169.254.10.0/30", "169.254.10.1"), Secret::new("md5-key"));
        let view = PeerView {
            name: "vco-1",
            local_subnet: "0.0.0.0/0",
            remote_subnet: "0.0.0.0/0,10.2.0.0/24",
            tunnels: vec![tunnel("", &b, Some(65001), Some(&key), &parts)],
        };
        let frr = bgp_conf(&view, BgpDaemon::Frr, &[]).unwrap();
        for line in [
            "! Put 169.254.10.2/30 on the interface of tunnel vco-1 (toward 47.0.0.1) before starting.",
            "router bgp 65001",
            " no bgp ebgp-requires-policy",
            " neighbor 169.254.10.1 remote-as 45104",
            " neighbor 169.254.10.1 update-source 169.254.10.2",
            " neighbor 169.254.10.1 password md5-key",
            "  network 10.2.0.0/24",
        ] {
            assert!(has(&frr, line), "{line:?} missing from\n{frr}");
        }
        assert!(!frr.contains("network 0.0.0.0/0"));
        let announce = ["10.9.0.0/16".parse().unwrap()];
        let bird = bgp_conf(&view, BgpDaemon::Bird, &announce).unwrap();
        for line in [
            "  route 10.9.0.0/16 unreachable;",
            "  local 169.254.10.2 as 65001;",
            "  neighbor 169.254.10.1 as 45104;",
            "  password \"md5-key\";",
        ] {
            assert!(has(&bird, line), "{line:?} missing from\n{bird}");
        }
        assert!(!bird.contains("10.2.0.0/24"), "an explicit announce list replaces the default");
    }

    #[test]
    fn no_bgp_no_config_and_a_customer_without_asn_is_told() {
        let parts =
            (super::super::tests::ike("ikev2", "main"), super::super::tests::ipsec("group2"), Secret::new("psk"));
        let off = BgpConfig::default();
        let on = bgp("169.254.20.0/30", "169.254.20.1");
        let view = |t| PeerView { name: "vco-2", local_subnet: "", remote_subnet: "", tunnels: vec![t] };
        assert!(bgp_conf(&view(tunnel("", &off, Some(1), None, &parts)), BgpDaemon::Frr, &[]).is_none());
        let conf = bgp_conf(&view(tunnel("", &on, None, None, &parts)), BgpDaemon::Frr, &[]).unwrap();
        assert!(conf.contains("has no ASN") && !conf.contains("router bgp"), "{conf}");
    }
}
