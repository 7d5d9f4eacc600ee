//! Remote access in a gateway's plan: its SSL-VPN server (OpenVPN's model: a CA, a server
//! certificate, a CRL, an address pool, routes pushed to clients) and its IPsec server (IKEv2
//! remote access with a virtual-IP pool). Plain data, like the rest of the plan.

use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::{exposed, IkeVersion, Proposal};
use crate::secret::Secret;

crate::wire_enum!(
    /// The SSL-VPN server's transport (`Proto`).
    SslProto {
        #[default]
        Udp = "UDP",
        Tcp = "TCP",
    }
);

crate::wire_enum!(
    /// The SSL-VPN data-channel cipher (`Cipher`), in OpenVPN's own names.
    SslCipher {
        #[default]
        Aes128Cbc = "AES-128-CBC",
        Aes192Cbc = "AES-192-CBC",
        Aes256Cbc = "AES-256-CBC",
        None = "none",
    }
);

/// A client certificate the server's CA issued: its resource id (the certificate's CN) and
/// serial.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCertPlan {
    pub id: String,
    pub serial: u64,
}

/// One SSL-VPN server as OpenVPN runs it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SslVpnPlan {
    pub id: String,
    pub proto: SslProto,
    pub port: u16,
    pub cipher: SslCipher,
    pub compress: bool,
    /// Where clients' tunnel addresses come from.
    pub client_ip_pool: Ipv4Net,
    /// What clients reach: pushed to them as routes.
    pub local_subnets: Vec<Ipv4Net>,
    /// Concurrent clients at most (the gateway's SslConnections).
    pub max_connections: u32,
    pub ca_cert: String,
    pub server_cert: String,
    #[serde(with = "exposed")]
    pub server_key: Secret,
    /// The CA's revocation list (PEM): a revoked certificate is refused at its next connection.
    pub crl: String,
    /// Certificates that may connect.
    pub clients: Vec<ClientCertPlan>,
    /// Certificates on the CRL.
    pub revoked: Vec<ClientCertPlan>,
}

/// The OpenVPN options of the data channel both ends must agree on: the cipher (also what older
/// clients negotiate) and compression.
pub fn data_channel(cipher: SslCipher, compress: bool) -> Vec<String> {
    let mut lines = vec![format!("cipher {}", cipher.wire()), format!("data-ciphers {}", cipher.wire())];
    if compress {
        lines.push("allow-compression yes".into());
        lines.push("comp-lzo".into());
    }
    lines
}

/// Where a running server keeps its files (gateway mode): the CRL as a file it re-reads at every
/// connection, its management socket, its log. Without, everything is inline.
pub struct OpenVpnFiles<'a> {
    pub dir: &'a Path,
    pub local: Ipv4Addr,
}

fn mask(net: Ipv4Net) -> String {
    format!("{} {}", net.network(), net.netmask())
}

impl SslVpnPlan {
    /// The server's OpenVPN configuration: its pool, the routes it pushes, its certificate and
    /// key, the CRL, at most `max_connections` clients.
    pub fn openvpn_server_config(&self, files: Option<&OpenVpnFiles>) -> String {
        let mut c: Vec<String> = Vec::new();
        if let Some(f) = files {
            c.push(format!("local {}", f.local));
        }
        c.push(format!("port {}", self.port));
        c.push(match self.proto {
            SslProto::Udp => "proto udp".into(),
            SslProto::Tcp => "proto tcp-server".into(),
        });
        c.push("dev tun".into());
        c.push("topology subnet".into());
        c.push(format!("server {}", mask(self.client_ip_pool)));
        c.extend(self.local_subnets.iter().map(|n| format!("push \"route {}\"", mask(*n))));
        c.push(format!("max-clients {}", self.max_connections.max(1)));
        for l in ["keepalive 10 60", "persist-key", "persist-tun", "remote-cert-tls client", "dh none"] {
            c.push(l.into());
        }
        c.extend(data_channel(self.cipher, self.compress));
        c.push("verb 3".into());
        let inline = |tag: &str, pem: &str| format!("<{tag}>\n{}\n</{tag}>", pem.trim_end());
        c.push(inline("ca", &self.ca_cert));
        c.push(inline("cert", &self.server_cert));
        c.push(inline("key", self.server_key.expose()));
        match files {
            Some(f) => {
                let path = |name: &str| f.dir.join(name).display().to_string();
                c.push(format!("crl-verify {}", path("crl.pem")));
                c.push(format!("management {} unix", path("management.sock")));
                c.push(format!("log-append {}", path("openvpn.log")));
                // The online clients, rewritten every 2 s (read without a management session,
                // which would log itself).
                c.push(format!("status {} 2", path("status.txt")));
                c.push("status-version 3".into());
            }
            None => c.push(inline("crl-verify", &self.crl)),
        }
        c.join("\n") + "\n"
    }
}

/// The IPsec server: IKEv2 (or v1) remote access, clients authenticated by PSK, each given an
/// address from `client_ip_pool` and reaching `local_subnets`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IpsecServerPlan {
    pub id: String,
    pub client_ip_pool: Ipv4Net,
    pub local_subnets: Vec<Ipv4Net>,
    pub effect_immediately: bool,
    pub ike_version: IkeVersion,
    pub aggressive: bool,
    pub ike: Proposal,
    pub ike_lifetime_s: u32,
    pub esp: Proposal,
    pub ipsec_lifetime_s: u32,
    pub local_id: String,
    /// Empty: any client identity.
    pub remote_id: String,
    #[serde(with = "exposed")]
    pub psk: Secret,
}

/// One line of the SSL-VPN server's log, in OpenVPN's format (`Mon Feb 28 14:05:51 2022
/// us=421630 message`), with its time for queries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub ms: i64,
    pub text: String,
}

impl LogLine {
    /// `message` as OpenVPN logs it at `micros` (UNIX microseconds, UTC).
    pub fn openvpn(micros: i64, message: &str) -> LogLine {
        let fmt = time::macros::format_description!(
            "[weekday repr:short] [month repr:short] [day padding:space] [hour]:[minute]:[second] [year]"
        );
        let t = time::OffsetDateTime::from_unix_timestamp(micros.div_euclid(1_000_000))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let date = t.format(&fmt).unwrap_or_default();
        LogLine { ms: micros.div_euclid(1000), text: format!("{date} us={} {message}", micros.rem_euclid(1_000_000)) }
    }
}

/// Where the SSL-VPN server stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SslVpnReport {
    pub id: String,
    /// Clients connected now.
    pub connections: u32,
    /// Log lines written since the last report.
    pub log: Vec<LogLine>,
    /// Why the data plane could not run the server as configured, if it could not.
    pub error: Option<String>,
}

/// Where the IPsec server stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpsecServerReport {
    pub id: String,
    pub online_clients: u32,
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> SslVpnPlan {
        SslVpnPlan {
            id: "vss-1".into(),
            proto: SslProto::Udp,
            port: 1195,
            cipher: SslCipher::Aes192Cbc,
            compress: false,
            client_ip_pool: "192.168.100.0/24".parse().unwrap(),
            local_subnets: vec!["10.0.0.0/8".parse().unwrap(), "172.16.0.0/16".parse().unwrap()],
            max_connections: 10,
            ca_cert: "CA-PEM\n".into(),
            server_cert: "SERVER-PEM".into(),
            server_key: Secret::new("KEY"),
            crl: "CRL-PEM".into(),
            clients: vec![],
            revoked: vec![],
        }
    }

    #[test]
    fn the_server_config_serves_the_pool_routes_and_crl() {
        let c = plan().openvpn_server_config(None);
        for l in [
            "port 1195",
            "proto udp",
            "server 192.168.100.0 255.255.255.0",
            "push \"route 10.0.0.0 255.0.0.0\"",
            "push \"route 172.16.0.0 255.255.0.0\"",
            "max-clients 10",
            "remote-cert-tls client",
            "data-ciphers AES-192-CBC",
        ] {
            assert!(c.lines().any(|x| x == l), "{l} in\n{c}");
        }
        assert!(c.contains("<crl-verify>\nCRL-PEM\n</crl-verify>"), "{c}");
        assert!(c.contains("<key>\nKEY\n</key>"), "{c}");
        assert!(!c.contains("local "), "{c}");
        // A running server reads its CRL from a file (rewritten live) and is managed by socket.
        let dir = Path::new("/run/gh");
        let c = plan().openvpn_server_config(Some(&OpenVpnFiles { dir, local: "198.18.0.1".parse().unwrap() }));
        for l in ["local 198.18.0.1", "crl-verify /run/gh/crl.pem", "management /run/gh/management.sock unix"] {
            assert!(c.lines().any(|x| x == l), "{l} in\n{c}");
        }
        assert!(!c.contains("<crl-verify>"));
    }

    #[test]
    fn log_lines_look_like_openvpns() {
        let l = LogLine::openvpn(1_646_057_151_421_630, "MULTI: multi_create_instance called");
        assert_eq!(l.text, "Mon Feb 28 14:05:51 2022 us=421630 MULTI: multi_create_instance called");
        assert_eq!(l.ms, 1_646_057_151_421);
        assert_eq!(LogLine::openvpn(1_646_057_151_000_005, "x").text, "Mon Feb 28 14:05:51 2022 us=5 x");
        assert!(LogLine::openvpn(1_643_673_600_000_000, "x").text.starts_with("Tue Feb  1 00:00:00 2022"));
    }
}
