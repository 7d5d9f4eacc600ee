//! The OpenVPN client profile the API hands out (ClientConfig), certificates inline. The server's
//! side is rendered from the gateway's plan (`SslVpnPlan::openvpn_server_config`), so that both
//! agree on the data channel (`remote_access::data_channel`).

use super::SslVpnServer;
use crate::actions::vpn_gateways::VpnGateway;
use crate::dataplane::remote_access::{data_channel, SslProto};

/// A complete client profile for certificate `cert` (key `key_pem`) of server `s` on gateway
/// `gw`: what a stock `openvpn --config` takes as is.
pub fn client_profile(s: &SslVpnServer, gw: &VpnGateway, cert: &str, key_pem: &str) -> String {
    let mut c: Vec<String> = vec!["client".into(), "dev tun".into()];
    c.push(match s.proto {
        SslProto::Udp => "proto udp".into(),
        SslProto::Tcp => "proto tcp-client".into(),
    });
    c.push(format!("remote {} {}", gw.internet_ip, s.port));
    for l in ["resolv-retry infinite", "nobind", "persist-key", "persist-tun", "remote-cert-tls server"] {
        c.push(l.into());
    }
    c.extend(data_channel(s.cipher, s.compress));
    c.push("auth-nocache".into());
    c.push("verb 3".into());
    for (tag, pem) in [("ca", s.ca_cert.as_str()), ("cert", cert), ("key", key_pem)] {
        c.push(format!("<{tag}>\n{}\n</{tag}>", pem.trim_end()));
    }
    c.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::ssl_vpn::pki::Revoked;
    use crate::dataplane::remote_access::SslCipher;
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
}
