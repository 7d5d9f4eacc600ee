//! What an IPsec connection negotiates: phase 1 (`IkeConfig`), phase 2 (`IpsecConfig`), BGP, the
//! health check, and the two tunnels of a dual-tunnel connection. They are parsed strictly from
//! the wire, stored as JSON (PSKs sealed), and shown back in the documented shapes.
//!
//! The single-tunnel parameters are JSON text (`IkeConfig={"IkeVersion": "ikev2", ...}`). The
//! dual-tunnel ones are flat (`TunnelOptionsSpecification.1.TunnelIkeConfig.IkeVersion=ikev2`).
//! Both forms become a JSON object first and then go through the same `Section` parser, so each
//! rule lives in one place. Values are read the way the SDKs send them: numbers as JSON numbers
//! or strings, booleans as `true`, `"true"` or `"True"`.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use ipnet::Ipv4Net;
use rand::distributions::{Alphanumeric, DistString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::actions::customer_gateways::parse_asn;
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::dataplane::Proposal;
use crate::secret::{MasterKey, Sealed, Secret};

mod bgp;
mod ike;
#[cfg(test)]
mod tests;
mod tunnels;

pub use self::ike::{same_ike, server_defaults, server_psk};

/// Phase-1 (IKE) negotiation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IkeConfig {
    pub psk: Sealed,
    pub ike_version: String,
    pub ike_mode: String,
    pub ike_enc_alg: String,
    pub ike_auth_alg: String,
    pub ike_pfs: String,
    pub ike_lifetime: u32,
    pub local_id: String,
    pub remote_id: String,
}

/// Phase-2 (IPsec) negotiation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IpsecConfig {
    pub ipsec_enc_alg: String,
    pub ipsec_auth_alg: String,
    pub ipsec_pfs: String,
    pub ipsec_lifetime: u32,
    /// The SA's volume limit in KB (Tencent's `ipsecSaLifetimeTraffic`); 0: none.
    #[serde(default)]
    pub ipsec_lifetime_kb: u32,
}

/// BGP over the tunnel. Empty strings mean "not set". The peer's address is derived: it is the
/// other usable host of the /30 (`peer_bgp_ip`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BgpConfig {
    pub enable_bgp: bool,
    pub local_asn: u32,
    pub tunnel_cidr: String,
    pub local_bgp_ip: String,
}

/// The connection health check. When it is disabled and nothing was set, this is the documented
/// "disabled" shape: empty addresses and zero numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct HealthCheckConfig {
    pub enable: bool,
    pub dip: String,
    pub sip: String,
    pub interval: u32,
    pub retry: u32,
}

/// One tunnel of a dual-tunnel connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TunnelSpec {
    /// `master` (active) or `slave` (standby).
    pub role: String,
    pub customer_gateway_id: String,
    pub enable_dpd: bool,
    pub enable_nat_traversal: bool,
    pub remote_ca_certificate: String,
    pub ike: IkeConfig,
    pub ipsec: IpsecConfig,
    pub bgp: BgpConfig,
}

/// What the parsers need to know about the connection being configured.
pub struct Defaults<'a> {
    /// The VPN gateway's (or the tunnel's) public IP: the default `LocalId`.
    pub local_ip: &'a str,
    /// The customer gateway's IP: the default `RemoteId`.
    pub remote_ip: &'a str,
    pub national_standard: bool,
    pub master_key: &'a MasterKey,
}

/// Where a section sits: in a single-tunnel connection, or in tunnel n of a dual-tunnel one.
/// Tunnels take the wider 000 rules (enumerations, no spaces in IDs), and their errors name
/// `TunnelOptionsSpecification.n.TunnelIkeConfig.*`.
#[derive(Clone, Copy)]
struct Scope(Option<usize>);

const SINGLE: Scope = Scope(None);

impl Scope {
    fn tunnel(self) -> bool {
        self.0.is_some()
    }

    /// The section's wire name: `IkeConfig`, or `TunnelOptionsSpecification.n.TunnelIkeConfig`.
    fn name(self, section: &str) -> String {
        match self.0 {
            None => section.to_string(),
            Some(n) => format!("{TUNNELS}.{n}.Tunnel{section}"),
        }
    }
}

impl Defaults<'_> {
    /// The default (encryption, authentication) pair.
    fn default_algs(&self) -> (&'static str, &'static str) {
        if self.national_standard {
            (SM_ENC, SM_AUTH)
        } else {
            ("aes", "md5")
        }
    }

    fn enc_algs(&self) -> Vec<&'static str> {
        with_sm(ENC_ALGS, self.national_standard.then_some(SM_ENC))
    }

    /// Both modes take the newest seed's list (000 lists sha256/384/512 for tunnels; the real
    /// service takes them in single-tunnel IkeConfig/IpsecConfig too).
    fn auth_algs(&self) -> Vec<&'static str> {
        with_sm(AUTH_ALGS, self.national_standard.then_some(SM_AUTH))
    }
}

fn with_sm(base: &[&'static str], sm: Option<&'static str>) -> Vec<&'static str> {
    base.iter().copied().chain(sm).collect()
}

// The documented value lists. A single-tunnel connection takes the 004/002 lists; the tunnels of
// a dual-tunnel connection take the wider 000 lists.
const IKE_VERSIONS: &[&str] = &["ikev1", "ikev2"];
const IKE_MODES: &[&str] = &["main", "aggressive"];
const ENC_ALGS: &[&str] = &["aes", "aes192", "aes256", "des", "3des"];
const AUTH_ALGS: &[&str] = &["md5", "sha1", "sha256", "sha384", "sha512"];
/// IKE groups everywhere, and IPsec groups on a single-tunnel connection. 000 lists no IkePfs
/// values for tunnels, so they take this list too.
const PFS_GROUPS: &[&str] = &["group1", "group2", "group5", "group14", "group24"];
const TUNNEL_IPSEC_PFS: &[&str] = &["disabled", "group1", "group2", "group5", "group14"];
/// National-standard (SM) gateways also accept, and default to, SM4 encryption and SM3 hashing.
const SM_ENC: &str = "sm4";
const SM_AUTH: &str = "sm3";
const MAX_LIFETIME: u32 = 86400;
/// The characters a PSK may contain besides letters and digits, as documented.
const PSK_SYMBOLS: &str = "~!`@#$%^&*()_-+={}[]|;:\\\",.<>/?";
const DEFAULT_LOCAL_ASN: u32 = 45104;
/// The health check's interval and retry count have no documented default. 3 and 3 are the
/// values every documented example uses.
const DEFAULT_HEALTH_CHECK_INTERVAL: u32 = 3;
const DEFAULT_HEALTH_CHECK_RETRY: u32 = 3;
/// Tunnel CIDRs that 000 reserves.
const FORBIDDEN_TUNNEL_CIDRS: &[&str] = &[
    "169.254.0.0/30",
    "169.254.1.0/30",
    "169.254.2.0/30",
    "169.254.3.0/30",
    "169.254.4.0/30",
    "169.254.5.0/30",
    "169.254.6.0/30",
    "169.254.169.252/30",
];
const TUNNELS: &str = "TunnelOptionsSpecification";
const ROLES: &[&str] = &["master", "slave"];
/// A tunnel's keys. `TunnelId` (first) is for ModifyVpnConnectionAttribute only; it is accepted
/// there and not used.
const TUNNEL_KEYS: &[&str] = &[
    "TunnelId",
    "Role",
    "CustomerGatewayId",
    "EnableDpd",
    "EnableNatTraversal",
    "RemoteCaCertificate",
    "TunnelIkeConfig",
    "TunnelIpsecConfig",
    "TunnelBgpConfig",
];

// ---------------------------------------------------------------------------------------------
// One JSON object of the request, read strictly.

type BadValue = fn(&str, &str) -> ApiError;

/// Malformed values in most sections: `InvalidParameter` naming `<section>.<key>`.
fn invalid(param: &str, why: &str) -> ApiError {
    ApiError::invalid_parameter(param, why)
}

/// Malformed values in a BGP section: the documented catch-all code, saying what was wrong.
fn illegal_bgp(param: &str, why: &str) -> ApiError {
    ApiError::bad_request("IllegalParam.BgpConfig", format!("The specified BgpConfig is invalid: {param}: {why}"))
}

/// One JSON object of the request, e.g. `IkeConfig` or
/// `TunnelOptionsSpecification.1.TunnelIkeConfig`. It accepts only the keys it knows.
struct Section {
    name: String,
    map: Map<String, Value>,
    bad: BadValue,
}

impl Section {
    /// From JSON text. Absent or empty text is an empty object.
    fn parse(name: String, json: Option<&str>, keys: &[&str], bad: BadValue) -> ApiResult<Section> {
        let map = match json.map(str::trim).filter(|t| !t.is_empty()) {
            None => Map::new(),
            Some(text) => match serde_json::from_str(text) {
                Ok(Value::Object(map)) => map,
                _ => return Err(bad(&name, "it must be a JSON object")),
            },
        };
        Section::new(name, map, keys, bad)
    }

    fn new(name: String, map: Map<String, Value>, keys: &[&str], bad: BadValue) -> ApiResult<Section> {
        match map.keys().find(|k| !keys.contains(&k.as_str())) {
            Some(k) => Err(bad(&format!("{name}.{k}"), &format!("unknown key; expected one of {}", keys.join(", ")))),
            None => Ok(Section { name, map, bad }),
        }
    }

    /// A nested section, given as a JSON object or as JSON text.
    fn sub(&self, key: &str, keys: &[&str], bad: BadValue) -> ApiResult<Section> {
        let name = format!("{}.{key}", self.name);
        match self.value(key) {
            None => Section::new(name, Map::new(), keys, bad),
            Some(Value::Object(map)) => Section::new(name, map.clone(), keys, bad),
            Some(Value::String(text)) => Section::parse(name, Some(text), keys, bad),
            Some(_) => Err(bad(&name, "it must be a JSON object")),
        }
    }

    fn err(&self, key: &str, why: &str) -> ApiError {
        (self.bad)(&format!("{}.{key}", self.name), why)
    }

    fn not_one_of(&self, key: &str, value: &str, allowed: &[&str]) -> ApiError {
        self.err(key, &format!("{value:?} is not one of {}", allowed.join(", ")))
    }

    /// A present value. JSON null and the empty string count as absent, as empty parameters do.
    fn value(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null() && v.as_str() != Some(""))
    }

    /// A string. A number is taken as its decimal text.
    fn text(&self, key: &str) -> ApiResult<Option<String>> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(self.err(key, "it must be a string")),
        }
    }

    /// An integer within `range`, as a JSON number or a string of digits.
    fn int(&self, key: &str, range: RangeInclusive<u32>) -> ApiResult<Option<u32>> {
        let Some(v) = self.value(key) else { return Ok(None) };
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match n.and_then(|n| u32::try_from(n).ok()).filter(|n| range.contains(n)) {
            Some(n) => Ok(Some(n)),
            None => Err(self.err(key, &format!("it must be an integer from {} to {}", range.start(), range.end()))),
        }
    }

    /// `true`/`false` as JSON booleans or as strings in any case.
    fn flag(&self, key: &str) -> ApiResult<Option<bool>> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(self.err(key, "it must be true or false")),
        }
    }

    /// One of `allowed`, matched in any case and returned in its canonical spelling. A value
    /// outside the list gets the error `refuse` builds.
    fn choice_or(
        &self,
        key: &str,
        allowed: &[&'static str],
        refuse: impl FnOnce(&str) -> ApiError,
    ) -> ApiResult<Option<&'static str>> {
        let Some(v) = self.text(key)? else { return Ok(None) };
        match allowed.iter().find(|a| a.eq_ignore_ascii_case(v.trim())) {
            Some(a) => Ok(Some(*a)),
            None => Err(refuse(&v)),
        }
    }

    fn choice(&self, key: &str, allowed: &[&'static str]) -> ApiResult<Option<&'static str>> {
        self.choice_or(key, allowed, |v| self.not_one_of(key, v, allowed))
    }
}

/// The new value if one was given, else the current one.
fn pick(new: Option<&str>, current: &str) -> String {
    new.unwrap_or(current).to_string()
}

// ---------------------------------------------------------------------------------------------
// Traffic selectors.

/// `LocalSubnet`/`RemoteSubnet`: comma-separated IPv4 CIDR blocks (spaces around them are
/// ignored). A block with host bits set, such as 10.0.0.1/24, is invalid.
pub fn parse_subnets(name: &str, value: &str) -> ApiResult<Vec<Ipv4Net>> {
    value
        .split(',')
        .map(|s| s.trim().parse::<Ipv4Net>().ok().filter(|net| net.trunc() == *net))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            ApiError::bad_request(
                format!("IllegalParam.{name}"),
                format!("The specified \"{name}\" ({value}) is invalid."),
            )
        })
}

/// Whether any block of `a` overlaps any block of `b`.
pub fn subnets_overlap(a: &[Ipv4Net], b: &[Ipv4Net]) -> bool {
    a.iter().any(|x| b.iter().any(|y| x.contains(&y.network()) || y.contains(&x.network())))
}

/// Whether two connections' traffic selectors overlap: their local subnets overlap and their
/// remote subnets overlap.
pub fn selectors_overlap(local_a: &[Ipv4Net], remote_a: &[Ipv4Net], local_b: &[Ipv4Net], remote_b: &[Ipv4Net]) -> bool {
    subnets_overlap(local_a, local_b) && subnets_overlap(remote_a, remote_b)
}
