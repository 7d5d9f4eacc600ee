//! Remote access in a gateway's plan: its SSL-VPN server (OpenVPN's model: a CA, a server
//! certificate, a CRL, an address pool, routes pushed to clients) and its IPsec server (IKEv2
//! remote access with a virtual-IP pool). Plain data, like the rest of the plan.

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

    #[test]
    fn log_lines_look_like_openvpns() {
        let l = LogLine::openvpn(1_646_057_151_421_630, "MULTI: multi_create_instance called");
        assert_eq!(l.text, "Mon Feb 28 14:05:51 2022 us=421630 MULTI: multi_create_instance called");
        assert_eq!(l.ms, 1_646_057_151_421);
        assert_eq!(LogLine::openvpn(1_646_057_151_000_005, "x").text, "Mon Feb 28 14:05:51 2022 us=5 x");
        assert!(LogLine::openvpn(1_643_673_600_000_000, "x").text.starts_with("Tue Feb  1 00:00:00 2022"));
    }
}
