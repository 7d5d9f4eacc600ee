//! OpenVPN's configuration language, for both ends of an SSL-VPN server: the client profile the
//! API hands out (ClientConfig) and the server's own configuration (`gatehouse
//! ssl-server-config`, and the OpenVPN driver of gateway mode). Certificates go inline.

use ipnet::Ipv4Net;

use super::SslVpnServer;
use crate::actions::vpn_gateways::VpnGateway;
use crate::dataplane::remote_access::{SslCipher, SslProto};

/// Lines of a configuration, certificates inline as `<tag>…</tag>`.
#[derive(Default)]
struct Conf(String);

impl Conf {
    fn line(&mut self, l: impl AsRef<str>) {
        self.0.push_str(l.as_ref());
        self.0.push('\n');
    }

    fn inline(&mut self, tag: &str, pem: &str) {
        self.line(format!("<{tag}>\n{}\n</{tag}>", pem.trim_end()));
    }

    /// The data channel both ends agree on: the cipher (also what older clients negotiate) and
    /// compression.
    fn data_channel(&mut self, s: &SslVpnServer) {
        self.line(format!("cipher {}", s.cipher.wire()));
        self.line(format!("data-ciphers {}", s.cipher.wire()));
        if s.cipher == SslCipher::None {
            self.line("allow-deprecated-insecure-static-crypto");
        }
        if s.compress {
            self.line("allow-compression yes");
            self.line("comp-lzo");
        }
    }
}

/// A complete client profile for certificate `cert` (key `key_pem`) of server `s` on gateway
/// `gw`: what a stock `openvpn --config` takes as is.
pub fn client_profile(s: &SslVpnServer, gw: &VpnGateway, cert: &str, key_pem: &str) -> String {
    let mut c = Conf::default();
    c.line("client");
    c.line("dev tun");
    c.line(match s.proto {
        SslProto::Udp => "proto udp",
        SslProto::Tcp => "proto tcp-client",
    });
    c.line(format!("remote {} {}", gw.internet_ip, s.port));
    for l in ["resolv-retry infinite", "nobind", "persist-key", "persist-tun", "remote-cert-tls server"] {
        c.line(l);
    }
    c.data_channel(s);
    c.line("auth-nocache");
    c.line("verb 3");
    c.inline("ca", &s.ca_cert);
    c.inline("cert", cert);
    c.inline("key", key_pem);
    c.0
}

fn mask(net: Ipv4Net) -> String {
    format!("{} {}", net.network(), net.netmask())
}

/// The server's configuration: its pool, the routes it pushes, its certificate and key, the CRL
/// (a deleted certificate is refused at its next connection), at most `max_clients` at once.
pub fn server_config(s: &SslVpnServer, server_key_pem: &str, max_clients: u32) -> String {
    let mut c = Conf::default();
    c.line(format!("port {}", s.port));
    c.line(match s.proto {
        SslProto::Udp => "proto udp",
        SslProto::Tcp => "proto tcp-server",
    });
    c.line("dev tun");
    c.line("topology subnet");
    if let Ok(pool) = s.client_ip_pool.parse::<Ipv4Net>() {
        c.line(format!("server {}", mask(pool)));
    }
    for net in s.local_subnets() {
        c.line(format!("push \"route {}\"", mask(net)));
    }
    c.line(format!("max-clients {max_clients}"));
    for l in ["keepalive 10 60", "persist-key", "persist-tun", "remote-cert-tls client", "dh none"] {
        c.line(l);
    }
    c.data_channel(s);
    c.line("verb 3");
    c.inline("ca", &s.ca_cert);
    c.inline("cert", &s.server_cert);
    c.inline("key", server_key_pem);
    c.inline("crl-verify", &s.crl);
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::ssl_vpn::pki::Revoked;
    use crate::secret::{MasterKey, Sealed, Secret};

    fn server(proto: SslProto, cipher: SslCipher, compress: bool) -> SslVpnServer {
        let key = MasterKey::from_hex(&"11".repeat(32)).unwrap();
        let sealed = Sealed::seal(&key, &Secret::new("KEY"));
        SslVpnServer {
            id: "vss-1".into(),
            account_id: 1,
            region_id: "cn-hangzhou".into(),
            vpn_gateway_id: "vpn-1".into(),
            name: "s".into(),
            client_ip_pool: "192.168.100.0/24".into(),
            local_subnet: "10.0.0.0/8,172.16.0.0/16".into(),
            proto,
            cipher,
            port: 1195,
            compress,
            enable_multi_factor_auth: false,
            idaas_instance_id: String::new(),
            idaas_region_id: String::new(),
            created_ms: 0,
            connections: 0,
            ca_cert: "CA-PEM\n".into(),
            ca_key: sealed.clone(),
            server_cert: "SERVER-PEM".into(),
            server_key: sealed,
            revoked: vec![Revoked { id: "vsc-1".into(), serial: 9, revoked_ms: 0 }],
            crl: "CRL-PEM".into(),
            crl_number: 1,
        }
    }

    #[test]
    fn the_client_profile_follows_the_server() {
        let gw = VpnGateway { internet_ip: "198.18.0.7".into(), ..crate::actions::test_support::gateway() };
        let p = client_profile(&server(SslProto::Udp, SslCipher::Aes128Cbc, false), &gw, "CERT", "KEY");
        for l in ["client", "proto udp", "remote 198.18.0.7 1195", "remote-cert-tls server", "cipher AES-128-CBC"] {
            assert!(p.lines().any(|x| x == l), "{l} in\n{p}");
        }
        assert!(p.contains("<ca>\nCA-PEM\n</ca>\n<cert>\nCERT\n</cert>\n<key>\nKEY\n</key>\n"), "{p}");
        assert!(!p.contains("comp-lzo"));
        let p = client_profile(&server(SslProto::Tcp, SslCipher::Aes256Cbc, true), &gw, "CERT", "KEY");
        for l in ["proto tcp-client", "cipher AES-256-CBC", "data-ciphers AES-256-CBC", "comp-lzo"] {
            assert!(p.lines().any(|x| x == l), "{l} in\n{p}");
        }
    }

    #[test]
    fn the_server_config_serves_the_pool_routes_and_crl() {
        let c = server_config(&server(SslProto::Udp, SslCipher::Aes192Cbc, false), "KEY", 10);
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
    }
}
