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
