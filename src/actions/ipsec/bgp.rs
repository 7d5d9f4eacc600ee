//! BGP over the tunnel (`BgpConfig`) and the health check (`HealthCheckConfig`).

use super::*;

// ---------------------------------------------------------------------------------------------
// BGP.

impl Default for BgpConfig {
    fn default() -> Self {
        BgpConfig {
            enable_bgp: false,
            local_asn: DEFAULT_LOCAL_ASN,
            tunnel_cidr: String::new(),
            local_bgp_ip: String::new(),
        }
    }
}

impl BgpConfig {
    pub const KEYS: &'static [&'static str] = &["EnableBgp", "LocalAsn", "TunnelCidr", "LocalBgpIp"];
    /// A tunnel's BGP is switched on for both tunnels by `EnableTunnelsBgp`, not per tunnel.
    pub(super) const TUNNEL_KEYS: &'static [&'static str] = &["LocalAsn", "LocalBgpIp", "TunnelCidr"];

    /// `BgpConfig` of CreateVpnConnection.
    pub fn parse(json: Option<&str>) -> ApiResult<BgpConfig> {
        BgpConfig::default().merge(json)
    }

    /// `BgpConfig` of ModifyVpnConnectionAttribute.
    pub fn merge(&self, json: Option<&str>) -> ApiResult<BgpConfig> {
        self.apply(&Section::parse("BgpConfig".into(), json, Self::KEYS, illegal_bgp)?)
    }

    pub(super) fn apply(&self, o: &Section) -> ApiResult<BgpConfig> {
        let local_asn = match o.value("LocalAsn") {
            None => self.local_asn,
            Some(v) => asn(v)
                .ok_or_else(|| ApiError::bad_request("IllegalParam.LocalAsn", "The specified LocalAsn is invalid."))?,
        };
        BgpConfig {
            enable_bgp: o.flag("EnableBgp")?.unwrap_or(self.enable_bgp),
            local_asn,
            tunnel_cidr: o.text("TunnelCidr")?.unwrap_or_else(|| self.tunnel_cidr.clone()),
            local_bgp_ip: o.text("LocalBgpIp")?.unwrap_or_else(|| self.local_bgp_ip.clone()),
        }
        .checked()
    }

    /// The rules that span fields. When BGP is on, the TunnelCidr is required. A LocalBgpIp must
    /// be a usable host of the TunnelCidr; without one, the first host is used.
    pub(super) fn checked(mut self) -> ApiResult<BgpConfig> {
        let net = match self.tunnel_cidr.as_str() {
            "" if self.enable_bgp => {
                return Err(ApiError::bad_request(
                    "MissingParameter.TunnelCidr",
                    "The parameter TunnelCidr is mandatory when BGP is enabled.",
                ))
            }
            "" => None,
            cidr => Some(tunnel_cidr(cidr)?),
        };
        if let Some(net) = net {
            self.tunnel_cidr = net.to_string();
        }
        let illegal_ip = || ApiError::bad_request("IllegalParam.LocalBgpIp", "The specified LocalBgpIp is invalid.");
        match (net, self.local_bgp_ip.as_str()) {
            (None, "") => {}
            (Some(net), "") => self.local_bgp_ip = net.hosts().next().ok_or_else(illegal_ip)?.to_string(),
            (net, ip) => {
                let ip: Ipv4Addr = ip.trim().parse().map_err(|_| {
                    ApiError::bad_request("InvalidLocalBgpIp.Malformed", "The specified LocalBgpIp is malformed.")
                })?;
                if !net.is_some_and(|net| net.hosts().any(|h| h == ip)) {
                    return Err(illegal_ip());
                }
                self.local_bgp_ip = ip.to_string();
            }
        }
        Ok(self)
    }

    /// The customer side's address: the other usable host of the /30. Empty when unset.
    pub fn peer_bgp_ip(&self) -> String {
        let (Ok(net), Ok(local)) = (self.tunnel_cidr.parse::<Ipv4Net>(), self.local_bgp_ip.parse::<Ipv4Addr>()) else {
            return String::new();
        };
        net.hosts().find(|h| *h != local).map(|h| h.to_string()).unwrap_or_default()
    }

    /// The `VpnBgpConfig` object of DescribeVpnConnection(s) and ModifyVpnConnectionAttribute.
    /// `PeerAsn` (the customer gateway's ASN) is left out when there is none.
    pub fn wire(&self, status: &str, peer_asn: Option<u32>, auth_key: &str) -> Value {
        let mut v = json!({
            "EnableBgp": self.enable_bgp.to_string(),
            "LocalAsn": self.local_asn,
            "TunnelCidr": self.tunnel_cidr,
            "LocalBgpIp": self.local_bgp_ip,
            "PeerBgpIp": self.peer_bgp_ip(),
            "AuthKey": auth_key,
            "Status": status,
        });
        if let Some(asn) = peer_asn {
            v["PeerAsn"] = json!(asn);
        }
        v
    }
}

/// An AS number from 1 to 4294967295: a JSON number, or a string (plain or asdot `high.low`).
pub(super) fn asn(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0),
        Value::String(s) => parse_asn(s.trim()),
        _ => None,
    }
}

/// A /30 inside 169.254.0.0/16 that is not one of the reserved blocks.
pub(super) fn tunnel_cidr(s: &str) -> ApiResult<Ipv4Net> {
    let net: Ipv4Net = s
        .trim()
        .parse()
        .map_err(|_| ApiError::bad_request("InvalidTunnelCidr.Malformed", "The specified TunnelCidr is malformed."))?;
    let link_local: Ipv4Net = "169.254.0.0/16".parse().expect("a valid network");
    let ok = net.prefix_len() == 30
        && net.trunc() == net
        && link_local.contains(&net)
        && !FORBIDDEN_TUNNEL_CIDRS.contains(&net.to_string().as_str());
    if ok {
        Ok(net)
    } else {
        Err(illegal_tunnel_cidr())
    }
}

pub(super) fn illegal_tunnel_cidr() -> ApiError {
    ApiError::bad_request("IllegalParam.TunnelCidr", "The specified TunnelCidr is invalid.")
}

// ---------------------------------------------------------------------------------------------
// Health check.

impl HealthCheckConfig {
    pub const KEYS: &'static [&'static str] = &["enable", "dip", "sip", "interval", "retry"];

    /// `HealthCheckConfig` of CreateVpnConnection (lower-case keys).
    pub fn parse(json: Option<&str>) -> ApiResult<HealthCheckConfig> {
        HealthCheckConfig::default().merge(json)
    }

    /// `HealthCheckConfig` of ModifyVpnConnectionAttribute.
    pub fn merge(&self, json: Option<&str>) -> ApiResult<HealthCheckConfig> {
        let o = Section::parse("HealthCheckConfig".into(), json, Self::KEYS, invalid)?;
        let ipv4 = |key: &str| -> ApiResult<Option<String>> {
            o.text(key)?
                .map(|s| s.trim().parse::<Ipv4Addr>().map(|ip| ip.to_string()))
                .transpose()
                .map_err(|_| o.err(key, "it must be an IPv4 address"))
        };
        let mut c = HealthCheckConfig {
            enable: o.flag("enable")?.unwrap_or(self.enable),
            dip: ipv4("dip")?.unwrap_or_else(|| self.dip.clone()),
            sip: ipv4("sip")?.unwrap_or_else(|| self.sip.clone()),
            interval: o.int("interval", 0..=u32::MAX)?.unwrap_or(self.interval),
            retry: o.int("retry", 0..=u32::MAX)?.unwrap_or(self.retry),
        };
        if c.enable {
            for (key, value) in [("dip", &c.dip), ("sip", &c.sip)] {
                if value.is_empty() {
                    return Err(o.err(key, "it is required when the health check is enabled"));
                }
            }
            // Zero means "not set" (the disabled shape), so the default applies.
            if c.interval == 0 {
                c.interval = DEFAULT_HEALTH_CHECK_INTERVAL;
            }
            if c.retry == 0 {
                c.retry = DEFAULT_HEALTH_CHECK_RETRY;
            }
        }
        Ok(c)
    }

    /// The `VcoHealthCheck` object. `Enable` is the string "true"/"false".
    pub fn wire(&self, status: &str) -> Value {
        json!({
            "Enable": self.enable.to_string(),
            "Dip": self.dip,
            "Sip": self.sip,
            "Interval": self.interval,
            "Retry": self.retry,
            "Status": status,
        })
    }
}
