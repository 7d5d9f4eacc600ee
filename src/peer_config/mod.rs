//! The customer's side of an IPsec connection as a strongSwan `swanctl.conf`, so that a customer
//! can bring the tunnel(s) up against this service. Everything is seen from the customer's side:
//! local is the customer gateway, remote is the VPN gateway (for a dual-tunnel connection, each
//! tunnel's own IP); the customer's ID is the connection's RemoteId; its traffic selectors are
//! the connection's RemoteSubnet and the VPC's are its LocalSubnet.
//!
//! The syntax follows what research/dataplane.md measured with strongSwan 5.9 (section names
//! avoid `. , : { } = " #` and spaces; `encap = yes` forces UDP encapsulation, `dpd_delay`
//! turns on DPD). A BGP tunnel's selectors also carry its TunnelCidr, as the gateway's do.
//!
//! The BGP side (FRR or BIRD) of the same connection is rendered by `bgp`.

mod bgp;

pub use bgp::{bgp_conf, BgpDaemon};

use std::fmt::{Display, Write};

use ipnet::Ipv4Net;

use crate::actions::ipsec::{BgpConfig, IkeConfig, IpsecConfig, TunnelSpec};
use crate::dataplane::{with_tunnel_cidr, Proposal};
use crate::secret::Secret;

/// One connection, as the caller reads it from the store (PSKs already opened).
pub struct PeerView<'a> {
    /// The connection's ID. It names the `connections` and `secrets` entries.
    pub name: &'a str,
    /// The connection's LocalSubnet (VPC side, comma-separated): the customer's `remote_ts`.
    pub local_subnet: &'a str,
    /// The connection's RemoteSubnet (customer side): the customer's `local_ts`.
    pub remote_subnet: &'a str,
    /// One tunnel for a single-tunnel connection, two for a dual-tunnel one.
    pub tunnels: Vec<PeerTunnel<'a>>,
}

/// One tunnel: its endpoints and what it negotiates.
pub struct PeerTunnel<'a> {
    /// Appended to the entry names: empty for a single-tunnel connection, the role for a
    /// dual-tunnel one.
    pub label: &'a str,
    /// The VPN gateway's (or the tunnel's) public IP.
    pub gateway_ip: &'a str,
    /// The customer gateway's IP.
    pub customer_ip: &'a str,
    pub ike: &'a IkeConfig,
    pub psk: &'a Secret,
    pub ipsec: &'a IpsecConfig,
    pub bgp: &'a BgpConfig,
    /// The customer gateway's ASN and BGP AuthKey (for the BGP side).
    pub customer_asn: Option<u32>,
    pub auth_key: Option<&'a Secret>,
    pub enable_dpd: bool,
    pub enable_nat_traversal: bool,
}

impl<'a> PeerTunnel<'a> {
    /// A tunnel of a dual-tunnel connection, labelled with its role.
    pub fn of(t: &'a TunnelSpec, gateway_ip: &'a str, customer_ip: &'a str, psk: &'a Secret) -> Self {
        PeerTunnel {
            label: &t.role,
            gateway_ip,
            customer_ip,
            ike: &t.ike,
            psk,
            ipsec: &t.ipsec,
            bgp: &t.bgp,
            customer_asn: None,
            auth_key: None,
            enable_dpd: t.enable_dpd,
            enable_nat_traversal: t.enable_nat_traversal,
        }
    }
}

/// DPD probe interval on the customer side (the value research/dataplane.md used).
const DPD_DELAY: &str = "10s";

/// The customer side's `swanctl.conf`: one `connections` entry per tunnel and its PSK.
pub fn swanctl_conf(c: &PeerView) -> String {
    let mut out = Out(String::new());
    out.line(0, format_args!("# strongSwan swanctl.conf for the customer side of IPsec connection {}.", c.name));
    out.line(0, "# Install it as /etc/swanctl/conf.d/<name>.conf and run `swanctl --load-all`.");
    out.line(0, "connections {");
    for t in &c.tunnels {
        connection(&mut out, c, t);
    }
    out.line(0, "}");
    out.line(0, "secrets {");
    for t in &c.tunnels {
        out.line(1, format_args!("ike-{} {{", entry_name(c, t)));
        out.line(2, format_args!("id-local = {}", value(&t.ike.remote_id)));
        out.line(2, format_args!("id-remote = {}", value(&t.ike.local_id)));
        out.line(2, format_args!("secret = {}", secret(t.psk.expose())));
        out.line(1, "}");
    }
    out.line(0, "}");
    out.0
}

fn connection(out: &mut Out, c: &PeerView, t: &PeerTunnel) {
    let name = entry_name(c, t);
    let ikev1 = t.ike.ike_version == "ikev1";
    out.line(1, format_args!("{name} {{"));
    out.line(2, format_args!("version = {}", if ikev1 { 1 } else { 2 }));
    if ikev1 {
        out.line(2, format_args!("aggressive = {}", yes_no(t.ike.ike_mode == "aggressive")));
    }
    out.line(2, format_args!("local_addrs = {}", t.customer_ip));
    out.line(2, format_args!("remote_addrs = {}", t.gateway_ip));
    out.line(2, format_args!("proposals = {}", proposal(&t.ike.ike_enc_alg, &t.ike.ike_auth_alg, &t.ike.ike_pfs)));
    out.line(2, format_args!("rekey_time = {}s", t.ike.ike_lifetime));
    if t.enable_nat_traversal {
        out.line(2, "encap = yes");
    }
    if t.enable_dpd {
        out.line(2, format_args!("dpd_delay = {DPD_DELAY}"));
    }
    if t.bgp.enable_bgp {
        out.line(
            2,
            format_args!(
                "# BGP: put {}/{} on this tunnel's interface and peer with {} (AS {}); `gatehouse peer-config --bgp frr` (or bird) renders that side.",
                t.bgp.peer_bgp_ip(),
                t.bgp.tunnel_cidr.split('/').nth(1).unwrap_or("30"),
                t.bgp.local_bgp_ip,
                t.bgp.local_asn
            ),
        );
    }
    for (side, id) in [("local", &t.ike.remote_id), ("remote", &t.ike.local_id)] {
        out.line(2, format_args!("{side} {{"));
        out.line(3, "auth = psk");
        out.line(3, format_args!("id = {}", value(id)));
        out.line(2, "}");
    }
    out.line(2, "children {");
    let selectors = selectors(c, t, ikev1);
    for (i, (local_ts, remote_ts)) in selectors.iter().enumerate() {
        let child = if selectors.len() == 1 { name.clone() } else { format!("{name}-{}", i + 1) };
        out.line(3, format_args!("{child} {{"));
        out.line(4, format_args!("local_ts = {local_ts}"));
        out.line(4, format_args!("remote_ts = {remote_ts}"));
        let esp = proposal(&t.ipsec.ipsec_enc_alg, &t.ipsec.ipsec_auth_alg, &t.ipsec.ipsec_pfs);
        out.line(4, format_args!("esp_proposals = {esp}"));
        out.line(4, format_args!("rekey_time = {}s", t.ipsec.ipsec_lifetime));
        if t.enable_dpd {
            out.line(4, "dpd_action = restart");
        }
        out.line(4, "start_action = start");
        out.line(3, "}");
    }
    out.line(2, "}");
    out.line(1, "}");
}

/// Indented lines.
struct Out(String);

impl Out {
    fn line(&mut self, depth: usize, text: impl Display) {
        let _ = writeln!(self.0, "{:width$}{text}", "", width = 2 * depth);
    }
}

/// A section name: the connection's ID, plus the tunnel's label. Characters that section names
/// may not contain are replaced.
fn entry_name(c: &PeerView, t: &PeerTunnel) -> String {
    let name = if t.label.is_empty() { c.name.to_string() } else { format!("{}-{}", c.name, t.label) };
    name.chars().map(|ch| if ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' { ch } else { '-' }).collect()
}

/// The (local_ts, remote_ts) pairs of the children. IKEv2 negotiates several subnets in one
/// CHILD_SA. IKEv1 takes only the first selector of each side, so it gets one child per pair.
fn selectors(c: &PeerView, t: &PeerTunnel, ikev1: bool) -> Vec<(String, String)> {
    let cidr = t.bgp.enable_bgp.then(|| t.bgp.tunnel_cidr.parse::<Ipv4Net>().ok()).flatten();
    let list = |s: &str| {
        let nets: Vec<Ipv4Net> = subnets(s);
        with_tunnel_cidr(&nets, cidr).iter().map(|n| n.trunc().to_string()).collect::<Vec<_>>()
    };
    let (local, remote) = (list(c.remote_subnet), list(c.local_subnet));
    if ikev1 {
        local.iter().flat_map(|l| remote.iter().map(move |r| (l.clone(), r.clone()))).collect()
    } else {
        vec![(local.join(","), remote.join(","))]
    }
}

/// The subnets of a comma-separated list (as the store keeps LocalSubnet and RemoteSubnet).
fn subnets(s: &str) -> Vec<Ipv4Net> {
    s.split(',').filter_map(|n| n.trim().parse().ok()).collect()
}

/// A strongSwan proposal from the API's names (one mapping, shared with the gateway's side).
fn proposal(enc: &str, auth: &str, pfs: &str) -> String {
    Proposal { enc: enc.into(), auth: auth.into(), dh: pfs.into() }.strongswan()
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// A value as written in the file: bare when it is plain, quoted otherwise (for example an SM
/// certificate subject such as `CN=a,O=b`).
fn value(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || ".:-_@/".contains(c)) {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// The PSK, quoted. A PSK that strongSwan would decode (see `encoded_for_strongswan`), and one
/// with `"`, `\` or `$` (kept away from the lexer's escapes), is written as `0x` followed by hex,
/// which strongSwan always reads back exactly.
fn secret(psk: &str) -> String {
    let plain = !crate::secret::encoded_for_strongswan(psk)
        && psk.chars().all(|c| c.is_ascii_graphic() && !"\"\\$".contains(c));
    if plain {
        format!("\"{psk}\"")
    } else {
        format!("0x{}", hex::encode(psk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::params::Params;
    use crate::secret::MasterKey;
    use crate::secret::Sealed;

    pub(super) fn ike(version: &str, mode: &str) -> IkeConfig {
        let key = MasterKey::from_hex(&"ab".repeat(32)).unwrap();
        IkeConfig {
            psk: Sealed::seal(&key, &Secret::new("unused")),
            ike_version: version.into(),
            ike_mode: mode.into(),
            ike_enc_alg: "aes".into(),
            ike_auth_alg: "sha1".into(),
            ike_pfs: "group2".into(),
            ike_lifetime: 86400,
            local_id: "47.0.0.1".into(),
            remote_id: "8.8.0.1".into(),
        }
    }

    pub(super) fn ipsec(pfs: &str) -> IpsecConfig {
        IpsecConfig {
            ipsec_enc_alg: "aes256".into(),
            ipsec_auth_alg: "sha256".into(),
            ipsec_pfs: pfs.into(),
            ipsec_lifetime: 3600,
            ipsec_lifetime_kb: 0,
        }
    }

    fn has(conf: &str, line: &str) -> bool {
        conf.lines().any(|l| l.trim() == line)
    }

    fn balanced(conf: &str) -> bool {
        let depth = conf.lines().filter(|l| !l.trim_start().starts_with('#')).try_fold(0i32, |d, l| {
            let d = d + l.matches('{').count() as i32 - l.matches('}').count() as i32;
            (d >= 0).then_some(d)
        });
        depth == Some(0)
    }

    #[test]
    fn single_tunnel_ikev2() {
        let (ike, ipsec, bgp, psk) =
            (ike("ikev2", "main"), ipsec("group14"), BgpConfig::default(), Secret::new("s3cret-psk"));
        let view = PeerView {
            name: "vco-abc",
            local_subnet: "10.1.0.0/16, 10.3.0.0/16",
            remote_subnet: "192.168.0.0/24",
            tunnels: vec![PeerTunnel {
                label: "",
                gateway_ip: "47.0.0.1",
                customer_ip: "8.8.0.1",
                ike: &ike,
                psk: &psk,
                ipsec: &ipsec,
                bgp: &bgp,
                customer_asn: None,
                auth_key: None,
                enable_dpd: true,
                enable_nat_traversal: true,
            }],
        };
        let conf = swanctl_conf(&view);
        for line in [
            "connections {",
            "vco-abc {",
            "version = 2",
            "local_addrs = 8.8.0.1",
            "remote_addrs = 47.0.0.1",
            "proposals = aes128-sha1-modp1024",
            "rekey_time = 86400s",
            "encap = yes",
            "dpd_delay = 10s",
            "auth = psk",
            "id = 8.8.0.1",
            "id = 47.0.0.1",
            "local_ts = 192.168.0.0/24",
            "remote_ts = 10.1.0.0/16,10.3.0.0/16",
            "esp_proposals = aes256-sha256-modp2048",
            "rekey_time = 3600s",
            "dpd_action = restart",
            "start_action = start",
            "ike-vco-abc {",
            "id-local = 8.8.0.1",
            "id-remote = 47.0.0.1",
            "secret = \"s3cret-psk\"",
        ] {
            assert!(has(&conf, line), "missing {line:?} in\n{conf}");
        }
        assert!(!conf.contains("aggressive"), "IKEv2 has no aggressive mode");
        // The customer's own ID comes first (local), the gateway's second (remote).
        assert!(conf.find("id = 8.8.0.1").unwrap() < conf.find("id = 47.0.0.1").unwrap());
        assert!(balanced(&conf), "{conf}");
    }

    #[test]
    fn ikev1_aggressive_without_pfs_dpd_or_nat_traversal() {
        let (mut ike, ipsec, bgp, psk) =
            (ike("ikev1", "aggressive"), ipsec("disabled"), BgpConfig::default(), Secret::new("0xdead"));
        ike.remote_id = "CN=test,OU=test,O=test,C=CHN".into();
        ike.ike_pfs = "group24".into();
        let view = PeerView {
            name: "vco-v1",
            local_subnet: "10.1.0.0/16,10.2.0.0/16",
            remote_subnet: "192.168.1.0/24,192.168.2.0/24",
            tunnels: vec![PeerTunnel {
                label: "",
                gateway_ip: "47.0.0.1",
                customer_ip: "8.8.0.1",
                ike: &ike,
                psk: &psk,
                ipsec: &ipsec,
                bgp: &bgp,
                customer_asn: None,
                auth_key: None,
                enable_dpd: false,
                enable_nat_traversal: false,
            }],
        };
        let conf = swanctl_conf(&view);
        for line in [
            "version = 1",
            "aggressive = yes",
            "proposals = aes128-sha1-modp2048s256",
            "esp_proposals = aes256-sha256",
            "id = \"CN=test,OU=test,O=test,C=CHN\"",
            "vco-v1-1 {",
            "vco-v1-4 {",
            "local_ts = 192.168.2.0/24",
            "remote_ts = 10.2.0.0/16",
        ] {
            assert!(has(&conf, line), "missing {line:?} in\n{conf}");
        }
        // A PSK starting with 0x would be read as hex, so it is written as hex itself.
        assert!(has(&conf, &format!("secret = 0x{}", hex::encode("0xdead"))), "{conf}");
        assert_eq!(conf.matches("local_ts = ").count(), 4, "one IKEv1 child per subnet pair");
        for absent in ["encap", "dpd_delay", "dpd_action", "vco-v1-5"] {
            assert!(!conf.contains(absent), "{absent} in\n{conf}");
        }
        assert!(balanced(&conf), "{conf}");
    }

    #[test]
    fn dual_tunnel_one_entry_per_tunnel() {
        let key = MasterKey::from_hex(&"ab".repeat(32)).unwrap();
        let cgw = |id: &str| Ok(if id == "cgw-1" { "8.8.0.1".to_string() } else { "8.8.0.2".to_string() });
        let params = Params::from_pairs([
            ("TunnelOptionsSpecification.1.Role", "master"),
            ("TunnelOptionsSpecification.1.CustomerGatewayId", "cgw-1"),
            ("TunnelOptionsSpecification.1.TunnelIkeConfig.IkeVersion", "ikev2"),
            ("TunnelOptionsSpecification.1.TunnelIkeConfig.Psk", "master-psk"),
            ("TunnelOptionsSpecification.2.Role", "slave"),
            ("TunnelOptionsSpecification.2.CustomerGatewayId", "cgw-2"),
            ("TunnelOptionsSpecification.2.TunnelIkeConfig.IkeVersion", "ikev2"),
            ("TunnelOptionsSpecification.2.TunnelIkeConfig.Psk", "slave-psk"),
            ("EnableTunnelsBgp", "true"),
            ("TunnelOptionsSpecification.1.TunnelBgpConfig.TunnelCidr", "169.254.10.0/30"),
            ("TunnelOptionsSpecification.2.TunnelBgpConfig.TunnelCidr", "169.254.20.0/30"),
        ]);
        let tunnels = TunnelSpec::parse_all(&params, &cgw, ("47.0.0.1", "47.0.0.2"), false, &key).unwrap();
        let psks: Vec<Secret> = tunnels.iter().map(|t| t.ike.psk.open(&key).unwrap()).collect();
        let customer_ips = ["8.8.0.1", "8.8.0.2"];
        let gateway_ips = ["47.0.0.1", "47.0.0.2"];
        let view = PeerView {
            name: "vco-dual",
            local_subnet: "10.1.0.0/16",
            remote_subnet: "192.168.0.0/16",
            tunnels: tunnels
                .iter()
                .enumerate()
                .map(|(i, t)| PeerTunnel::of(t, gateway_ips[i], customer_ips[i], &psks[i]))
                .collect(),
        };
        let conf = swanctl_conf(&view);
        for line in [
            "vco-dual-master {",
            "vco-dual-slave {",
            "remote_addrs = 47.0.0.1",
            "remote_addrs = 47.0.0.2",
            "local_addrs = 8.8.0.1",
            "local_addrs = 8.8.0.2",
            "id = 47.0.0.2",
            "ike-vco-dual-master {",
            "ike-vco-dual-slave {",
            "secret = \"master-psk\"",
            "secret = \"slave-psk\"",
            "proposals = aes128-md5-modp1024",
            "# BGP: put 169.254.20.2/30 on this tunnel's interface and peer with 169.254.20.1 (AS 45104); `gatehouse peer-config --bgp frr` (or bird) renders that side.",
            "local_ts = 192.168.0.0/16,169.254.20.0/30",
            "remote_ts = 10.1.0.0/16,169.254.20.0/30",
        ] {
            assert!(has(&conf, line), "missing {line:?} in\n{conf}");
        }
        assert_eq!(conf.matches("start_action = start").count(), 2);
        assert!(balanced(&conf), "{conf}");
    }

    #[test]
    fn quoting() {
        assert_eq!(value("47.0.0.1"), "47.0.0.1");
        assert_eq!(value("vpn@example.com"), "vpn@example.com");
        assert_eq!(value("CN=a b"), "\"CN=a b\"");
        assert_eq!(value("a\"b\\"), "\"a\\\"b\\\\\"");
        assert_eq!(secret("Sm0ke~T*st+K/y=1"), "\"Sm0ke~T*st+K/y=1\"");
        assert_eq!(secret("0sAAAA"), format!("0x{}", hex::encode("0sAAAA")));
        assert_eq!(secret("0SWfYeENdkkeB1Hd"), format!("0x{}", hex::encode("0SWfYeENdkkeB1Hd")));
        assert_eq!(secret("0Xab"), format!("0x{}", hex::encode("0Xab")));
        assert_eq!(secret("a\"b"), "0x612262");
        assert_eq!(secret("pa$$"), format!("0x{}", hex::encode("pa$$")));
        let odd = PeerView { name: "vco.x y", local_subnet: "", remote_subnet: "", tunnels: vec![] };
        let (ike, ipsec, bgp, psk) = (ike("ikev2", "main"), ipsec("group2"), BgpConfig::default(), Secret::new("p"));
        let t = PeerTunnel {
            label: "",
            gateway_ip: "",
            customer_ip: "",
            ike: &ike,
            psk: &psk,
            ipsec: &ipsec,
            bgp: &bgp,
            customer_asn: None,
            auth_key: None,
            enable_dpd: false,
            enable_nat_traversal: false,
        };
        assert_eq!(entry_name(&odd, &t), "vco-x-y");
        assert_eq!(proposal("3des", "md5", "group1"), "3des-md5-modp768");
        assert_eq!(proposal("aes192", "sha512", "group5"), "aes192-sha512-modp1536");
    }
}
