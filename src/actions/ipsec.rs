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
// Phase 1.

impl IkeConfig {
    pub const KEYS: &'static [&'static str] =
        &["Psk", "IkeVersion", "IkeMode", "IkeEncAlg", "IkeAuthAlg", "IkePfs", "IkeLifetime", "LocalId", "RemoteId"];

    /// `IkeConfig` of CreateVpnConnection. Whatever is absent takes its default.
    pub fn parse(json: Option<&str>, d: &Defaults) -> ApiResult<IkeConfig> {
        let o = Section::parse(SINGLE.name("IkeConfig"), json, Self::KEYS, invalid)?;
        Self::require_remote_id(&o, d)?;
        Self::defaults(d).apply(&o, d, SINGLE)
    }

    /// `IkeConfig` of ModifyVpnConnectionAttribute. Whatever is absent (the PSK too) keeps its
    /// current value.
    pub fn merge(&self, json: Option<&str>, d: &Defaults) -> ApiResult<IkeConfig> {
        self.apply(&Section::parse(SINGLE.name("IkeConfig"), json, Self::KEYS, invalid)?, d, SINGLE)
    }

    /// A national-standard connection is created with the RemoteId given: its default (the
    /// customer gateway's IP) cannot be the subject of the peer's certificate.
    fn require_remote_id(o: &Section, d: &Defaults) -> ApiResult<()> {
        if d.national_standard && o.value("RemoteId").is_none() {
            return Err(ApiError::bad_request(
                "MissingParam.RemoteId",
                "The remote ID is mandatory when creating national standard VPN connection.",
            ));
        }
        Ok(())
    }

    /// The defaults, with a fresh random PSK.
    fn defaults(d: &Defaults) -> IkeConfig {
        let (enc, auth) = d.default_algs();
        IkeConfig {
            psk: Sealed::seal(d.master_key, &random_psk()),
            ike_version: "ikev1".into(),
            ike_mode: "main".into(),
            ike_enc_alg: enc.into(),
            ike_auth_alg: auth.into(),
            ike_pfs: "group2".into(),
            ike_lifetime: MAX_LIFETIME,
            local_id: d.local_ip.into(),
            remote_id: d.remote_ip.into(),
        }
    }

    fn apply(&self, o: &Section, d: &Defaults, scope: Scope) -> ApiResult<IkeConfig> {
        let ike_version = pick(o.choice("IkeVersion", IKE_VERSIONS)?, &self.ike_version);
        let ike_enc_alg = enc_alg(o, "IkeEncAlg", d, ike_version == "ikev1")?;
        Ok(IkeConfig {
            psk: match o.text("Psk")? {
                Some(psk) => Sealed::seal(d.master_key, &check_psk(o, Secret::new(psk))?),
                None => self.psk.clone(),
            },
            ike_mode: pick(o.choice("IkeMode", IKE_MODES)?, &self.ike_mode),
            ike_enc_alg: pick(ike_enc_alg, &self.ike_enc_alg),
            ike_auth_alg: pick(o.choice("IkeAuthAlg", &d.auth_algs())?, &self.ike_auth_alg),
            ike_pfs: pick(o.choice("IkePfs", PFS_GROUPS)?, &self.ike_pfs),
            ike_lifetime: o.int("IkeLifetime", 0..=MAX_LIFETIME)?.unwrap_or(self.ike_lifetime),
            local_id: ike_id(o, "LocalId", scope)?.unwrap_or_else(|| self.local_id.clone()),
            remote_id: ike_id(o, "RemoteId", scope)?.unwrap_or_else(|| self.remote_id.clone()),
            ike_version,
        })
    }

    /// The phase-1 proposal, as a data plane takes it.
    pub fn proposal(&self) -> Proposal {
        Proposal { enc: self.ike_enc_alg.clone(), auth: self.ike_auth_alg.clone(), dh: self.ike_pfs.clone() }
    }

    /// As DescribeVpnConnection, ModifyVpnConnectionAttribute and DownloadVpnConnectionConfig show
    /// it. The PSK is in clear: clients (Terraform) read a generated one back.
    pub fn wire(&self, key: &MasterKey) -> ApiResult<Value> {
        Ok(json!({
            "IkeVersion": self.ike_version,
            "IkeMode": self.ike_mode,
            "IkeEncAlg": self.ike_enc_alg,
            "IkeAuthAlg": self.ike_auth_alg,
            "IkePfs": self.ike_pfs,
            "IkeLifetime": self.ike_lifetime,
            "LocalId": self.local_id,
            "RemoteId": self.remote_id,
            "Psk": self.psk.open(key)?.expose(),
        }))
    }
}

/// A PSK the system picks when none is given: 16 random letters and digits.
fn random_psk() -> Secret {
    Secret::new(Alphanumeric.sample_string(&mut rand::thread_rng(), 16))
}

/// 1-100 characters: letters, digits and the documented symbols (no spaces). The error never
/// shows the value.
fn check_psk(o: &Section, psk: Secret) -> ApiResult<Secret> {
    let p = psk.expose();
    if (1..=100).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric() || PSK_SYMBOLS.contains(c)) {
        Ok(psk)
    } else {
        Err(o.err("Psk", &format!("it must be 1-100 characters: letters, digits and {PSK_SYMBOLS}")))
    }
}

/// `LocalId`/`RemoteId`: at most 100 characters and no control characters. A tunnel's ID also
/// may not contain spaces (000).
fn ike_id(o: &Section, key: &str, scope: Scope) -> ApiResult<Option<String>> {
    let Some(id) = o.text(key)? else { return Ok(None) };
    let bad_char = |c: char| c.is_control() || (scope.tunnel() && c == ' ');
    if id.chars().count() > 100 || id.chars().any(bad_char) {
        return Err(o.err(key, "it must be at most 100 characters, without spaces in a tunnel"));
    }
    Ok(Some(id))
}

/// An encryption algorithm. Only single algorithms from the list are supported. Two documented
/// errors outrank the generic one: des/3des in a multi-algorithm list, and gcm16 under IKEv1.
fn enc_alg(o: &Section, key: &str, d: &Defaults, ikev1: bool) -> ApiResult<Option<&'static str>> {
    let allowed = d.enc_algs();
    o.choice_or(key, &allowed, |v| {
        let v = v.to_ascii_lowercase();
        let algs: Vec<&str> = v.split(',').map(str::trim).collect();
        if algs.len() > 1 && algs.iter().any(|a| *a == "des" || *a == "3des") {
            ApiError::bad_request(
                "EncAlgInvalid.DesIncompatible",
                "Des/3des in IkeEncAlg and IpsecEncAlg does not support multi algorithm.",
            )
        } else if ikev1 && v.contains("gcm") {
            ApiError::bad_request("IkeVersionInvalid.GcmIncompatible", "Ikev1 does not support IkeEncAlg of gcm16.")
        } else {
            o.not_one_of(key, &v, &allowed)
        }
    })
}

/// Whether two connections negotiate the same IKE SA: same PSK and same phase-1 settings,
/// identities included. Connections on the same VPN gateway and customer gateway must.
pub fn same_ike(a: &IkeConfig, b: &IkeConfig, key: &MasterKey) -> ApiResult<bool> {
    let same_settings = IkeConfig { psk: b.psk.clone(), ..a.clone() } == *b;
    Ok(same_settings && (a.psk == b.psk || a.psk.open(key)?.ct_eq(b.psk.open(key)?.expose())))
}

/// The IPsec server's (remote access) starting point: IKEv2 main mode, aes/sha1/group2 for a day
/// in both phases; LocalId the gateway's address, RemoteId empty (any client); the PSK given.
pub fn server_defaults(d: &Defaults, psk: &Secret) -> (IkeConfig, IpsecConfig) {
    let ike = IkeConfig {
        psk: Sealed::seal(d.master_key, psk),
        ike_version: "ikev2".into(),
        ike_mode: "main".into(),
        ike_enc_alg: "aes".into(),
        ike_auth_alg: "sha1".into(),
        ike_pfs: "group2".into(),
        ike_lifetime: MAX_LIFETIME,
        local_id: d.local_ip.into(),
        remote_id: String::new(),
    };
    let ipsec = IpsecConfig {
        ipsec_enc_alg: "aes".into(),
        ipsec_auth_alg: "sha1".into(),
        ipsec_pfs: "group2".into(),
        ipsec_lifetime: MAX_LIFETIME,
        ipsec_lifetime_kb: 0,
    };
    (ike, ipsec)
}

/// The IPsec server's `Psk` parameter (1-100 characters: letters, digits and the documented
/// symbols), or a random 16-character one when it is absent.
pub fn server_psk(value: Option<String>) -> ApiResult<Secret> {
    let Some(psk) = value else { return Ok(random_psk()) };
    let ok =
        (1..=100).contains(&psk.len()) && psk.chars().all(|c| c.is_ascii_alphanumeric() || PSK_SYMBOLS.contains(c));
    if ok {
        Ok(Secret::new(psk))
    } else {
        Err(ApiError::invalid_parameter(
            "Psk",
            format!("it must be 1-100 characters: letters, digits and {PSK_SYMBOLS}"),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Phase 2.

impl IpsecConfig {
    pub const KEYS: &'static [&'static str] = &["IpsecEncAlg", "IpsecAuthAlg", "IpsecPfs", "IpsecLifetime"];

    /// `IpsecConfig` of CreateVpnConnection.
    pub fn parse(json: Option<&str>, d: &Defaults) -> ApiResult<IpsecConfig> {
        Self::defaults(d).merge(json, d)
    }

    fn defaults(d: &Defaults) -> IpsecConfig {
        let (enc, auth) = d.default_algs();
        IpsecConfig {
            ipsec_enc_alg: enc.into(),
            ipsec_auth_alg: auth.into(),
            ipsec_pfs: "group2".into(),
            ipsec_lifetime: MAX_LIFETIME,
            ipsec_lifetime_kb: 0,
        }
    }

    /// `IpsecConfig` of ModifyVpnConnectionAttribute.
    pub fn merge(&self, json: Option<&str>, d: &Defaults) -> ApiResult<IpsecConfig> {
        self.apply(&Section::parse(SINGLE.name("IpsecConfig"), json, Self::KEYS, invalid)?, d, SINGLE)
    }

    fn apply(&self, o: &Section, d: &Defaults, scope: Scope) -> ApiResult<IpsecConfig> {
        let pfs_groups = if scope.tunnel() { TUNNEL_IPSEC_PFS } else { PFS_GROUPS };
        let auth = o.choice_or("IpsecAuthAlg", &d.auth_algs(), |_| {
            ApiError::bad_request(
                "NotSupportVpnConnectionParameter.IpsecAuthAlg",
                "The specified vpn connection ipsec Auth Alg is not support.",
            )
        })?;
        let pfs = o.choice_or("IpsecPfs", pfs_groups, |_| {
            ApiError::bad_request(
                "NotSupportVpnConnectionParameter.IpsecPfs",
                "The specified vpn connection ipsec Ipsec Pfs is not support.",
            )
        })?;
        Ok(IpsecConfig {
            ipsec_enc_alg: pick(enc_alg(o, "IpsecEncAlg", d, false)?, &self.ipsec_enc_alg),
            ipsec_auth_alg: pick(auth, &self.ipsec_auth_alg),
            ipsec_pfs: pick(pfs, &self.ipsec_pfs),
            ipsec_lifetime: o.int("IpsecLifetime", 0..=MAX_LIFETIME)?.unwrap_or(self.ipsec_lifetime),
            ipsec_lifetime_kb: self.ipsec_lifetime_kb,
        })
    }

    /// The phase-2 proposal, as a data plane takes it.
    pub fn proposal(&self) -> Proposal {
        Proposal { enc: self.ipsec_enc_alg.clone(), auth: self.ipsec_auth_alg.clone(), dh: self.ipsec_pfs.clone() }
    }

    pub fn wire(&self) -> Value {
        json!({
            "IpsecEncAlg": self.ipsec_enc_alg,
            "IpsecAuthAlg": self.ipsec_auth_alg,
            "IpsecPfs": self.ipsec_pfs,
            "IpsecLifetime": self.ipsec_lifetime,
        })
    }
}

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
    const TUNNEL_KEYS: &'static [&'static str] = &["LocalAsn", "LocalBgpIp", "TunnelCidr"];

    /// `BgpConfig` of CreateVpnConnection.
    pub fn parse(json: Option<&str>) -> ApiResult<BgpConfig> {
        BgpConfig::default().merge(json)
    }

    /// `BgpConfig` of ModifyVpnConnectionAttribute.
    pub fn merge(&self, json: Option<&str>) -> ApiResult<BgpConfig> {
        self.apply(&Section::parse("BgpConfig".into(), json, Self::KEYS, illegal_bgp)?)
    }

    fn apply(&self, o: &Section) -> ApiResult<BgpConfig> {
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
    fn checked(mut self) -> ApiResult<BgpConfig> {
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
fn asn(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0),
        Value::String(s) => parse_asn(s.trim()),
        _ => None,
    }
}

/// A /30 inside 169.254.0.0/16 that is not one of the reserved blocks.
fn tunnel_cidr(s: &str) -> ApiResult<Ipv4Net> {
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

fn illegal_tunnel_cidr() -> ApiError {
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

// ---------------------------------------------------------------------------------------------
// Dual-tunnel connections.

fn missing_tunnel() -> ApiError {
    ApiError::bad_request(
        "MissingParameter.TunnelOptionsSpecification",
        "The required parameters are missing when creating a tunnel for dual-tunnel VPN.",
    )
}

impl TunnelSpec {
    /// The `TunnelOptionsSpecification` of a dual-tunnel CreateVpnConnection. There must be exactly
    /// two tunnels, one `master` and one `slave`, and they come back in that order.
    /// `cgw_ip` looks up a customer gateway's IP (and fails with the caller's not-found error).
    /// `gateway_ips` holds the VPN gateway's IPs in role order (InternetIp,
    /// DisasterRecoveryInternetIp); each tunnel's LocalId defaults to its own IP. BGP is switched
    /// on for both tunnels by `EnableTunnelsBgp`.
    pub fn parse_all(
        p: &Params,
        cgw_ip: &dyn Fn(&str) -> ApiResult<String>,
        gateway_ips: (&str, &str),
        national_standard: bool,
        master_key: &MasterKey,
    ) -> ApiResult<Vec<TunnelSpec>> {
        let enable_bgp = p.bool("EnableTunnelsBgp")?.unwrap_or(false);
        let parse_one = |(n, obj): (usize, Map<String, Value>)| -> ApiResult<TunnelSpec> {
            let create_keys = &TUNNEL_KEYS[1..]; // no TunnelId
            let o = Section::new(format!("{TUNNELS}.{n}"), obj, create_keys, invalid)?;
            let role = o.choice("Role", ROLES)?.ok_or_else(missing_tunnel)?;
            let customer_gateway_id = o.text("CustomerGatewayId")?.ok_or_else(missing_tunnel)?;
            let remote_ip = cgw_ip(&customer_gateway_id)?;
            let local_ip = if role == "master" { gateway_ips.0 } else { gateway_ips.1 };
            let d = Defaults { local_ip, remote_ip: &remote_ip, national_standard, master_key };
            let fresh = TunnelSpec {
                role: role.into(),
                customer_gateway_id,
                enable_dpd: true,
                enable_nat_traversal: true,
                remote_ca_certificate: String::new(),
                ike: IkeConfig::defaults(&d),
                ipsec: IpsecConfig::defaults(&d),
                bgp: BgpConfig::default(),
            };
            fresh.apply(&o, &d, Scope(Some(n)), enable_bgp, true)
        };
        let mut tunnels = tunnel_objects(p)?.into_iter().map(parse_one).collect::<ApiResult<Vec<_>>>()?;
        tunnels.sort_by_key(|t| t.role != "master");
        match tunnels.as_slice() {
            [m, s] if m.role == "master" && s.role == "slave" => {
                // The tunnel CIDR is unique per VPN gateway; the caller checks the other connections.
                if enable_bgp && m.bgp.tunnel_cidr == s.bgp.tunnel_cidr {
                    return Err(illegal_tunnel_cidr());
                }
                Ok(tunnels)
            }
            [_, _] => Err(invalid(&format!("{TUNNELS}.N.Role"), "one tunnel must be master and the other slave")),
            _ => Err(missing_tunnel()),
        }
    }

    /// This tunnel after a dual-tunnel ModifyVpnConnectionAttribute. The
    /// `TunnelOptionsSpecification` element with this tunnel's `Role` (every element must name
    /// one) applies over the current values; without one, only `EnableTunnelsBgp` (when given)
    /// changes anything. A new `CustomerGatewayId` is looked up with `cgw_ip`, and a RemoteId that
    /// was the old customer gateway's IP follows it. `local_ip` is this tunnel's IP.
    pub fn merge(
        &self,
        p: &Params,
        cgw_ip: &dyn Fn(&str) -> ApiResult<String>,
        local_ip: &str,
        national_standard: bool,
        master_key: &MasterKey,
    ) -> ApiResult<TunnelSpec> {
        let enable_bgp = p.bool("EnableTunnelsBgp")?.unwrap_or(self.bgp.enable_bgp);
        let mut mine = (0, Section::new(String::new(), Map::new(), &[], invalid)?);
        for (n, obj) in tunnel_objects(p)? {
            let o = Section::new(format!("{TUNNELS}.{n}"), obj, TUNNEL_KEYS, invalid)?;
            if o.choice("Role", ROLES)?.ok_or_else(missing_tunnel)? == self.role {
                mine = (n, o);
            }
        }
        let (n, o) = mine;
        let mut next = self.clone();
        if let Some(id) = o.text("CustomerGatewayId")?.filter(|id| *id != self.customer_gateway_id) {
            let ip = cgw_ip(&id)?;
            if cgw_ip(&self.customer_gateway_id).is_ok_and(|old| old == next.ike.remote_id) {
                next.ike.remote_id = ip;
            }
            next.customer_gateway_id = id;
        }
        let d = Defaults { local_ip, remote_ip: &next.ike.remote_id, national_standard, master_key };
        next.apply(&o, &d, Scope(Some(n)), enable_bgp, false)
    }

    /// The element's settings over `self`: the defaults when `creating`, the stored tunnel when
    /// modifying. The callers handle the role and the customer gateway.
    fn apply(
        &self,
        o: &Section,
        d: &Defaults,
        scope: Scope,
        enable_bgp: bool,
        creating: bool,
    ) -> ApiResult<TunnelSpec> {
        let ike = o.sub("TunnelIkeConfig", IkeConfig::KEYS, invalid)?;
        if creating {
            IkeConfig::require_remote_id(&ike, d)?;
        }
        Ok(TunnelSpec {
            enable_dpd: o.flag("EnableDpd")?.unwrap_or(self.enable_dpd),
            enable_nat_traversal: o.flag("EnableNatTraversal")?.unwrap_or(self.enable_nat_traversal),
            remote_ca_certificate: o.text("RemoteCaCertificate")?.unwrap_or_else(|| self.remote_ca_certificate.clone()),
            ike: self.ike.apply(&ike, d, scope)?,
            ipsec: self.ipsec.apply(&o.sub("TunnelIpsecConfig", IpsecConfig::KEYS, invalid)?, d, scope)?,
            bgp: BgpConfig { enable_bgp, ..self.bgp.clone() }.apply(&o.sub(
                "TunnelBgpConfig",
                BgpConfig::TUNNEL_KEYS,
                illegal_bgp,
            )?)?,
            ..self.clone()
        })
    }

    /// One element of DescribeVpnConnection's `TunnelOptionsSpecification.TunnelOptions`. The
    /// SDK models give every scalar here the type string. The caller adds what lives outside this
    /// spec: TunnelId, InternetIp, State, Status, ZoneNo, TunnelIndex.
    pub fn wire(&self, key: &MasterKey, bgp_status: &str, peer_asn: Option<u32>) -> ApiResult<Map<String, Value>> {
        let bgp = json!({
            "BgpStatus": bgp_status,
            "LocalAsn": self.bgp.local_asn,
            "LocalBgpIp": self.bgp.local_bgp_ip,
            "PeerAsn": peer_asn.map(|a| a.to_string()).unwrap_or_default(),
            "PeerBgpIp": self.bgp.peer_bgp_ip(),
            "TunnelCidr": self.bgp.tunnel_cidr,
        });
        let v = json!({
            "Role": self.role,
            "CustomerGatewayId": self.customer_gateway_id,
            "EnableDpd": self.enable_dpd,
            "EnableNatTraversal": self.enable_nat_traversal,
            "RemoteCaCertificate": self.remote_ca_certificate,
            "TunnelIkeConfig": strings(self.ike.wire(key)?),
            "TunnelIpsecConfig": strings(self.ipsec.wire()),
            "TunnelBgpConfig": strings(bgp),
        });
        let Value::Object(map) = strings(v) else { unreachable!("json! of an object") };
        Ok(map)
    }
}

/// An object whose number and boolean values are turned into strings.
fn strings(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| match v {
                    Value::Number(_) | Value::Bool(_) => (k, Value::String(v.to_string())),
                    other => (k, other),
                })
                .collect(),
        ),
        other => other,
    }
}

/// The tunnels as JSON objects keyed like `TUNNEL_KEYS`, each with its index N. They come from
/// the flat form (`TunnelOptionsSpecification.1.TunnelIkeConfig.Psk=...`) or from a JSON array
/// in `TunnelOptionsSpecification`.
fn tunnel_objects(p: &Params) -> ApiResult<Vec<(usize, Map<String, Value>)>> {
    if let Some(text) = p.get(TUNNELS) {
        let bad = || invalid(TUNNELS, "it must be a JSON array of at most 2 objects");
        let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text) else { return Err(bad()) };
        if items.len() > 2 {
            return Err(bad());
        }
        return items
            .into_iter()
            .zip(1..)
            .map(|(v, n)| match v {
                Value::Object(map) => Ok((n, map)),
                _ => Err(bad()),
            })
            .collect();
    }
    // `Params` cannot list its keys, but `tags` walks every `TunnelOptionsSpecification.N.*` key.
    // It rejects an N outside 1..=2 with InvalidParameter; its other complaint (no `.Key`) does
    // not apply here and is ignored.
    if let Err(e) = p.tags(TUNNELS, 2) {
        if e.code == "InvalidParameter" {
            return Err(e);
        }
    }
    let mut out = Vec::new();
    for n in 1..=2 {
        if let Some(obj) = flat_tunnel(p, n)? {
            out.push((n, obj));
        }
    }
    Ok(out)
}

/// Tunnel N from flat parameters. A sub-object comes from its flat fields
/// (`…TunnelIkeConfig.Psk`) or from one JSON-text parameter (`…TunnelIkeConfig`), not both.
fn flat_tunnel(p: &Params, n: usize) -> ApiResult<Option<Map<String, Value>>> {
    let at = |key: &str| p.get(&format!("{TUNNELS}.{n}.{key}")).map(|v| Value::String(v.to_string()));
    let mut obj = Map::new();
    for key in TUNNEL_KEYS {
        let fields = match *key {
            "TunnelIkeConfig" => IkeConfig::KEYS,
            "TunnelIpsecConfig" => IpsecConfig::KEYS,
            "TunnelBgpConfig" => BgpConfig::TUNNEL_KEYS,
            _ => &[],
        };
        let sub: Map<String, Value> =
            fields.iter().filter_map(|f| at(&format!("{key}.{f}")).map(|v| (f.to_string(), v))).collect();
        match (at(key), sub.is_empty()) {
            (Some(_), false) => {
                return Err(invalid(&format!("{TUNNELS}.{n}.{key}"), "give either the object or its fields"))
            }
            (Some(whole), true) => {
                obj.insert(key.to_string(), whole);
            }
            (None, false) => {
                obj.insert(key.to_string(), Value::Object(sub));
            }
            (None, true) => {}
        }
    }
    Ok((!obj.is_empty()).then_some(obj))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mk() -> MasterKey {
        MasterKey::from_hex(&"ab".repeat(32)).unwrap()
    }

    fn single(master_key: &MasterKey) -> Defaults<'_> {
        Defaults { local_ip: "47.0.0.1", remote_ip: "47.0.0.2", national_standard: false, master_key }
    }

    fn code<T: std::fmt::Debug>(r: ApiResult<T>) -> String {
        r.unwrap_err().code
    }

    fn psk(c: &IkeConfig, key: &MasterKey) -> String {
        c.psk.open(key).unwrap().expose().to_string()
    }

    #[test]
    fn ike_defaults_and_generated_psk() {
        let key = mk();
        let c = IkeConfig::parse(None, &single(&key)).unwrap();
        assert_eq!(
            (c.ike_version.as_str(), c.ike_mode.as_str(), c.ike_enc_alg.as_str(), c.ike_auth_alg.as_str()),
            ("ikev1", "main", "aes", "md5")
        );
        assert_eq!((c.ike_pfs.as_str(), c.ike_lifetime), ("group2", 86400));
        assert_eq!((c.local_id.as_str(), c.remote_id.as_str()), ("47.0.0.1", "47.0.0.2"));
        let p = psk(&c, &key);
        assert_eq!(p.len(), 16);
        assert!(p.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(p, psk(&IkeConfig::parse(Some(""), &single(&key)).unwrap(), &key));
        // Never in Debug output, nor in the stored JSON.
        assert!(!format!("{c:?}").contains(&p));
        assert!(format!("{c:?}").contains("Sealed(<redacted>)"));
        assert!(!serde_json::to_string(&c).unwrap().contains(&p));
    }

    #[test]
    fn ike_python_json_strings_and_numbers() {
        let key = mk();
        let d = single(&key);
        let text = r#"{"Psk": "Sm0ke~T*st+K/y=1", "IkeVersion": "ikev2", "IkeMode": "aggressive", "IkeEncAlg": "aes256", "IkeAuthAlg": "sha1", "IkePfs": "group14", "IkeLifetime": 3600, "LocalId": "gw.example.com", "RemoteId": "10.9.9.9"}"#;
        let c = IkeConfig::parse(Some(text), &d).unwrap();
        assert_eq!(psk(&c, &key), "Sm0ke~T*st+K/y=1");
        assert_eq!(
            (c.ike_version.as_str(), c.ike_mode.as_str(), c.ike_enc_alg.as_str()),
            ("ikev2", "aggressive", "aes256")
        );
        assert_eq!((c.ike_auth_alg.as_str(), c.ike_pfs.as_str(), c.ike_lifetime), ("sha1", "group14", 3600));
        assert_eq!((c.local_id.as_str(), c.remote_id.as_str()), ("gw.example.com", "10.9.9.9"));
        // Lifetimes as strings, enumerations in any case, null and "" as absent.
        let c = IkeConfig::parse(
            Some(r#"{"IkeLifetime": "0", "IkeVersion": "IKEv2", "LocalId": null, "RemoteId": ""}"#),
            &d,
        )
        .unwrap();
        assert_eq!(
            (c.ike_lifetime, c.ike_version.as_str(), c.local_id.as_str(), c.remote_id.as_str()),
            (0, "ikev2", "47.0.0.1", "47.0.0.2")
        );
        assert_eq!(IkeConfig::parse(Some(r#"{"Psk": 12345678}"#), &d).map(|c| psk(&c, &key)).unwrap(), "12345678");
    }

    #[test]
    fn ike_rejects_bad_input_naming_the_key() {
        let key = mk();
        let d = single(&key);
        let err = |json: &str| IkeConfig::parse(Some(json), &d).unwrap_err();
        for (json, needle) in [
            ("not json", "\"IkeConfig\""),
            ("[1, 2]", "\"IkeConfig\""),
            ("\"ikev1\"", "\"IkeConfig\""),
            (r#"{"IkeVersion": "ikev3"}"#, "\"IkeConfig.IkeVersion\""),
            (r#"{"IkeVersion": true}"#, "\"IkeConfig.IkeVersion\""),
            (r#"{"ikeversion": "ikev1"}"#, "\"IkeConfig.ikeversion\""),
            (r#"{"IkeMode": "quick"}"#, "\"IkeConfig.IkeMode\""),
            (r#"{"IkeEncAlg": "aes128"}"#, "\"IkeConfig.IkeEncAlg\""),
            (r#"{"IkeAuthAlg": "sha224"}"#, "\"IkeConfig.IkeAuthAlg\""),
            (r#"{"IkePfs": "group19"}"#, "\"IkeConfig.IkePfs\""),
            (r#"{"IkeLifetime": 86401}"#, "\"IkeConfig.IkeLifetime\""),
            (r#"{"IkeLifetime": -1}"#, "\"IkeConfig.IkeLifetime\""),
            (r#"{"IkeLifetime": "1h"}"#, "\"IkeConfig.IkeLifetime\""),
            (r#"{"IkeLifetime": 3600.5}"#, "\"IkeConfig.IkeLifetime\""),
            (r#"{"Psk": "has space"}"#, "\"IkeConfig.Psk\""),
            (r#"{"Psk": "it's"}"#, "\"IkeConfig.Psk\""),
            (r#"{"Psk": ["x"]}"#, "\"IkeConfig.Psk\""),
        ] {
            let e = err(json);
            assert_eq!((e.status, e.code.as_str()), (400, "InvalidParameter"), "{json}");
            assert!(e.message.contains(needle), "{json}: {}", e.message);
        }
        let long = format!(r#"{{"Psk": "{}"}}"#, "a".repeat(101));
        assert!(!err(&long).message.contains("aaaa"), "the PSK is never echoed");
        assert!(IkeConfig::parse(Some(&format!(r#"{{"Psk": "{}"}}"#, "a".repeat(100))), &d).is_ok());
        assert_eq!(err(&format!(r#"{{"LocalId": "{}"}}"#, "x".repeat(101))).code, "InvalidParameter");
        // A single-tunnel ID may contain a space (an SM certificate subject); a tunnel's may not.
        assert!(IkeConfig::parse(Some(r#"{"RemoteId": "CN=a b"}"#), &d).is_ok());
    }

    #[test]
    fn ike_specific_algorithm_errors() {
        let key = mk();
        let d = single(&key);
        assert_eq!(code(IkeConfig::parse(Some(r#"{"IkeEncAlg": "aes,des"}"#), &d)), "EncAlgInvalid.DesIncompatible");
        assert_eq!(
            code(IpsecConfig::parse(Some(r#"{"IpsecEncAlg": "3des, aes"}"#), &d)),
            "EncAlgInvalid.DesIncompatible"
        );
        assert_eq!(code(IkeConfig::parse(Some(r#"{"IkeEncAlg": "aes,aes256"}"#), &d)), "InvalidParameter");
        assert_eq!(code(IkeConfig::parse(Some(r#"{"IkeEncAlg": "gcm16"}"#), &d)), "IkeVersionInvalid.GcmIncompatible");
        assert_eq!(
            code(IkeConfig::parse(Some(r#"{"IkeVersion": "ikev2", "IkeEncAlg": "gcm16"}"#), &d)),
            "InvalidParameter"
        );
    }

    #[test]
    fn national_standard_gateways() {
        let key = mk();
        let d = Defaults { national_standard: true, ..single(&key) };
        assert_eq!(code(IkeConfig::parse(None, &d)), "MissingParam.RemoteId");
        let c = IkeConfig::parse(Some(r#"{"RemoteId": "CN=test,OU=test,O=test,C=CHN"}"#), &d).unwrap();
        assert_eq!((c.ike_enc_alg.as_str(), c.ike_auth_alg.as_str()), ("sm4", "sm3"));
        assert_eq!(c.merge(None, &d).unwrap(), c, "Modify does not ask for the RemoteId again");
        let s = IpsecConfig::parse(None, &d).unwrap();
        assert_eq!((s.ipsec_enc_alg.as_str(), s.ipsec_auth_alg.as_str()), ("sm4", "sm3"));
        assert!(IpsecConfig::parse(Some(r#"{"IpsecEncAlg": "aes"}"#), &d).is_ok());
        // SM algorithms are for SM gateways only.
        assert_eq!(code(IkeConfig::parse(Some(r#"{"IkeEncAlg": "sm4"}"#), &single(&key))), "InvalidParameter");
        assert_eq!(
            code(IpsecConfig::parse(Some(r#"{"IpsecAuthAlg": "sm3"}"#), &single(&key))),
            "NotSupportVpnConnectionParameter.IpsecAuthAlg"
        );
    }

    #[test]
    fn ike_merge_keeps_what_is_absent() {
        let key = mk();
        let d = single(&key);
        let c =
            IkeConfig::parse(Some(r#"{"Psk": "first", "IkeAuthAlg": "sha1", "LocalId": "a.example"}"#), &d).unwrap();
        let m = c.merge(Some(r#"{"IkeVersion": "ikev2", "IkeLifetime": "600"}"#), &d).unwrap();
        assert_eq!(m.psk, c.psk, "the PSK is kept, not re-sealed");
        assert_eq!((m.ike_version.as_str(), m.ike_lifetime), ("ikev2", 600));
        assert_eq!(
            (m.ike_auth_alg.as_str(), m.local_id.as_str(), m.remote_id.as_str()),
            ("sha1", "a.example", "47.0.0.2")
        );
        assert_eq!(psk(&c.merge(Some(r#"{"Psk": "second"}"#), &d).unwrap(), &key), "second");
        assert_eq!(c.merge(None, &d).unwrap(), c);
        assert_eq!(code(c.merge(Some(r#"{"Bogus": 1}"#), &d)), "InvalidParameter");
    }

    #[test]
    fn same_ike_compares_psk_and_phase_one() {
        let key = mk();
        let d = single(&key);
        let a = IkeConfig::parse(Some(r#"{"Psk": "shared"}"#), &d).unwrap();
        let b = IkeConfig::parse(Some(r#"{"Psk": "shared"}"#), &d).unwrap();
        assert_ne!(a.psk, b.psk, "two seals of one PSK differ");
        assert!(same_ike(&a, &b, &key).unwrap());
        assert!(!same_ike(&a, &a.merge(Some(r#"{"Psk": "other"}"#), &d).unwrap(), &key).unwrap());
        assert!(!same_ike(&a, &a.merge(Some(r#"{"IkePfs": "group5"}"#), &d).unwrap(), &key).unwrap());
        assert!(!same_ike(&a, &a.merge(Some(r#"{"RemoteId": "x"}"#), &d).unwrap(), &key).unwrap());
    }

    #[test]
    fn ipsec_defaults_merge_and_documented_codes() {
        let key = mk();
        let d = single(&key);
        let c = IpsecConfig::parse(None, &d).unwrap();
        assert_eq!(
            c,
            IpsecConfig {
                ipsec_enc_alg: "aes".into(),
                ipsec_auth_alg: "md5".into(),
                ipsec_pfs: "group2".into(),
                ipsec_lifetime: 86400,
                ipsec_lifetime_kb: 0,
            }
        );
        let text =
            r#"{"IpsecEncAlg": "3des", "IpsecAuthAlg": "sha1", "IpsecPfs": "group24", "IpsecLifetime": "28800"}"#;
        let c = IpsecConfig::parse(Some(text), &d).unwrap();
        assert_eq!((c.ipsec_enc_alg.as_str(), c.ipsec_pfs.as_str(), c.ipsec_lifetime), ("3des", "group24", 28800));
        let m = c.merge(Some(r#"{"IpsecPfs": "group5"}"#), &d).unwrap();
        assert_eq!(
            (m.ipsec_enc_alg.as_str(), m.ipsec_auth_alg.as_str(), m.ipsec_pfs.as_str()),
            ("3des", "sha1", "group5")
        );
        // A single-tunnel connection takes the narrow PFS list, and every hash the tunnels take.
        assert_eq!(IpsecConfig::parse(Some(r#"{"IpsecAuthAlg": "sha512"}"#), &d).unwrap().ipsec_auth_alg, "sha512");
        assert_eq!(
            code(IpsecConfig::parse(Some(r#"{"IpsecAuthAlg": "sha224"}"#), &d)),
            "NotSupportVpnConnectionParameter.IpsecAuthAlg"
        );
        assert_eq!(
            code(IpsecConfig::parse(Some(r#"{"IpsecPfs": "disabled"}"#), &d)),
            "NotSupportVpnConnectionParameter.IpsecPfs"
        );
        assert_eq!(
            code(IpsecConfig::parse(Some(r#"{"IpsecPfs": 2}"#), &d)),
            "NotSupportVpnConnectionParameter.IpsecPfs"
        );
        assert_eq!(code(IpsecConfig::parse(Some(r#"{"IpsecPfs": false}"#), &d)), "InvalidParameter");
        assert_eq!(code(IpsecConfig::parse(Some(r#"{"IpsecLifetime": 86401}"#), &d)), "InvalidParameter");
        assert_eq!(code(IpsecConfig::parse(Some(r#"{"IkeLifetime": 1}"#), &d)), "InvalidParameter");
        // A tunnel takes the wide ones.
        let tunnel = |json: &str| {
            let scope = Scope(Some(1));
            let o = Section::parse(scope.name("IpsecConfig"), Some(json), IpsecConfig::KEYS, invalid)?;
            IpsecConfig::defaults(&d).apply(&o, &d, scope)
        };
        let c = tunnel(r#"{"IpsecAuthAlg": "sha512", "IpsecPfs": "disabled"}"#).unwrap();
        assert_eq!((c.ipsec_auth_alg.as_str(), c.ipsec_pfs.as_str()), ("sha512", "disabled"));
        assert_eq!(code(tunnel(r#"{"IpsecPfs": "group24"}"#)), "NotSupportVpnConnectionParameter.IpsecPfs");
        let e = tunnel(r#"{"IpsecLifetime": "x"}"#).unwrap_err();
        assert!(
            e.message.contains("\"TunnelOptionsSpecification.1.TunnelIpsecConfig.IpsecLifetime\""),
            "{}",
            e.message
        );
    }

    #[test]
    fn bgp_defaults_and_values() {
        assert_eq!(
            BgpConfig::parse(None).unwrap(),
            BgpConfig { enable_bgp: false, local_asn: 45104, tunnel_cidr: String::new(), local_bgp_ip: String::new() }
        );
        let c = BgpConfig::parse(Some(
            r#"{"EnableBgp": "true", "LocalAsn": "65000", "TunnelCidr": "169.254.11.0/30", "LocalBgpIp": "169.254.11.2"}"#,
        ))
        .unwrap();
        assert_eq!((c.enable_bgp, c.local_asn, c.local_bgp_ip.as_str()), (true, 65000, "169.254.11.2"));
        assert_eq!(c.peer_bgp_ip(), "169.254.11.1");
        let c =
            BgpConfig::parse(Some(r#"{"EnableBgp": true, "LocalAsn": 4294967295, "TunnelCidr": "169.254.20.4/30"}"#))
                .unwrap();
        assert_eq!(
            (c.local_asn, c.local_bgp_ip.as_str(), c.peer_bgp_ip().as_str()),
            (u32::MAX, "169.254.20.5", "169.254.20.6")
        );
        assert_eq!(
            BgpConfig::parse(Some(r#"{"EnableBgp": "True", "LocalAsn": "1.10", "TunnelCidr": "169.254.9.0/30"}"#))
                .unwrap()
                .local_asn,
            65546
        );
        // Disabled: TunnelCidr is optional, but what is given must still be valid.
        assert_eq!(BgpConfig::parse(Some(r#"{"EnableBgp": "false"}"#)).unwrap().peer_bgp_ip(), "");
        assert_eq!(code(BgpConfig::parse(Some(r#"{"TunnelCidr": "169.254.1.0/30"}"#))), "IllegalParam.TunnelCidr");
    }

    #[test]
    fn bgp_errors() {
        let e = |json: &str| code(BgpConfig::parse(Some(json)));
        assert_eq!(e(r#"{"EnableBgp": "true"}"#), "MissingParameter.TunnelCidr");
        for bad in ["0", "4294967296", "-1", "abc", "1.65536"] {
            assert_eq!(e(&format!(r#"{{"LocalAsn": "{bad}"}}"#)), "IllegalParam.LocalAsn", "{bad}");
        }
        assert_eq!(e(r#"{"LocalAsn": 0}"#), "IllegalParam.LocalAsn");
        assert_eq!(e(r#"{"LocalAsn": true}"#), "IllegalParam.LocalAsn");
        let on = |cidr: &str, ip: &str| {
            code(BgpConfig::parse(Some(&format!(
                r#"{{"EnableBgp": "true", "TunnelCidr": "{cidr}", "LocalBgpIp": "{ip}"}}"#
            ))))
        };
        assert_eq!(on("169.254.11.0/33", ""), "InvalidTunnelCidr.Malformed");
        assert_eq!(on("banana", ""), "InvalidTunnelCidr.Malformed");
        assert_eq!(on("169.254.11.0", ""), "InvalidTunnelCidr.Malformed");
        assert_eq!(on("169.254.11.0/29", ""), "IllegalParam.TunnelCidr");
        assert_eq!(on("169.254.11.1/30", ""), "IllegalParam.TunnelCidr");
        assert_eq!(on("10.0.0.0/30", ""), "IllegalParam.TunnelCidr");
        for forbidden in FORBIDDEN_TUNNEL_CIDRS {
            assert_eq!(on(forbidden, ""), "IllegalParam.TunnelCidr", "{forbidden}");
        }
        assert_eq!(on("169.254.11.0/30", "169.254.11.x"), "InvalidLocalBgpIp.Malformed");
        for outside in ["169.254.11.0", "169.254.11.3", "169.254.12.1"] {
            assert_eq!(on("169.254.11.0/30", outside), "IllegalParam.LocalBgpIp", "{outside}");
        }
        assert_eq!(e(r#"{"LocalBgpIp": "169.254.11.1"}"#), "IllegalParam.LocalBgpIp");
        // Any other bad shape.
        for shape in ["nope", "[]", r#"{"Enable": true}"#, r#"{"EnableBgp": "yes"}"#, r#"{"TunnelCidr": true}"#] {
            let err = BgpConfig::parse(Some(shape)).unwrap_err();
            assert_eq!(err.code, "IllegalParam.BgpConfig", "{shape}");
            assert!(err.message.starts_with("The specified BgpConfig is invalid: BgpConfig"), "{}", err.message);
        }
    }

    #[test]
    fn bgp_merge_and_wire() {
        let c = BgpConfig::parse(Some(
            r#"{"EnableBgp": "true", "TunnelCidr": "169.254.11.0/30", "LocalBgpIp": "169.254.11.1"}"#,
        ))
        .unwrap();
        let m = c.merge(Some(r#"{"LocalAsn": 65001}"#)).unwrap();
        assert_eq!(
            (m.local_asn, m.tunnel_cidr.as_str(), m.local_bgp_ip.as_str()),
            (65001, "169.254.11.0/30", "169.254.11.1")
        );
        // Moving the CIDR without the IP leaves the IP outside it.
        assert_eq!(code(c.merge(Some(r#"{"TunnelCidr": "169.254.12.0/30"}"#))), "IllegalParam.LocalBgpIp");
        assert_eq!(
            c.wire("success", Some(65530), "k"),
            json!({"EnableBgp": "true", "LocalAsn": 45104, "PeerAsn": 65530, "TunnelCidr": "169.254.11.0/30",
                   "LocalBgpIp": "169.254.11.1", "PeerBgpIp": "169.254.11.2", "AuthKey": "k", "Status": "success"})
        );
        let off = BgpConfig::default().wire("success", None, "");
        assert_eq!(off["EnableBgp"], "false");
        assert!(off.get("PeerAsn").is_none());
    }

    #[test]
    fn health_check() {
        let off = HealthCheckConfig::parse(None).unwrap();
        assert_eq!(
            off.wire("success"),
            json!({"Enable": "false", "Dip": "", "Sip": "", "Interval": 0, "Retry": 0, "Status": "success"})
        );
        let c = HealthCheckConfig::parse(Some(
            r#"{"enable": "true", "dip": "192.168.10.1", "sip": "10.10.1.1", "interval": "5", "retry": 2}"#,
        ))
        .unwrap();
        assert_eq!(
            c,
            HealthCheckConfig {
                enable: true,
                dip: "192.168.10.1".into(),
                sip: "10.10.1.1".into(),
                interval: 5,
                retry: 2
            }
        );
        assert_eq!(c.wire("failed")["Enable"], "true");
        let d =
            HealthCheckConfig::parse(Some(r#"{"enable": true, "dip": "192.168.10.1", "sip": "10.10.1.1"}"#)).unwrap();
        assert_eq!((d.interval, d.retry), (3, 3));
        let m = c.merge(Some(r#"{"interval": 10}"#)).unwrap();
        assert_eq!((m.enable, m.dip.as_str(), m.interval, m.retry), (true, "192.168.10.1", 10, 2));
        assert!(!c.merge(Some(r#"{"enable": "False"}"#)).unwrap().enable);
        let e = |json: &str| HealthCheckConfig::parse(Some(json)).unwrap_err();
        assert!(e(r#"{"enable": "true", "sip": "10.10.1.1"}"#).message.contains("\"HealthCheckConfig.dip\""));
        assert!(e(r#"{"enable": "true", "dip": "10.10.1.1"}"#).message.contains("\"HealthCheckConfig.sip\""));
        assert!(e(r#"{"dip": "10.10.1"}"#).message.contains("\"HealthCheckConfig.dip\""));
        assert!(e(r#"{"Enable": "true"}"#).message.contains("\"HealthCheckConfig.Enable\""));
        assert!(e(r#"{"retry": "many"}"#).message.contains("\"HealthCheckConfig.retry\""));
        assert_eq!(e("{").code, "InvalidParameter");
    }

    #[test]
    fn ike_and_ipsec_wire() {
        let key = mk();
        let d = single(&key);
        let c = IkeConfig::parse(Some(r#"{"Psk": "pgw6dy7d1i8in7x5"}"#), &d).unwrap();
        assert_eq!(
            c.wire(&key).unwrap(),
            json!({"IkeVersion": "ikev1", "IkeMode": "main", "IkeEncAlg": "aes", "IkeAuthAlg": "md5", "IkePfs": "group2",
                   "IkeLifetime": 86400, "LocalId": "47.0.0.1", "RemoteId": "47.0.0.2", "Psk": "pgw6dy7d1i8in7x5"})
        );
        assert!(c.wire(&MasterKey::from_hex(&"cd".repeat(32)).unwrap()).is_err());
        assert_eq!(
            IpsecConfig::parse(None, &d).unwrap().wire(),
            json!({"IpsecEncAlg": "aes", "IpsecAuthAlg": "md5", "IpsecPfs": "group2", "IpsecLifetime": 86400})
        );
    }

    #[test]
    fn sealed_is_transparent_and_redacted() {
        let key = mk();
        let s = Sealed::seal(&key, &Secret::new("hunter2"));
        assert_eq!(format!("{s:?}"), "Sealed(<redacted>)");
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.starts_with('"') && !text.contains("hunter2"));
        let back: Sealed = serde_json::from_str(&text).unwrap();
        assert_eq!(back.open(&key).unwrap().expose(), "hunter2");
        assert_eq!(code(serde_json::from_str::<Sealed>("\"garbage\"").unwrap().open(&key)), "InternalError");
    }

    #[test]
    fn subnets() {
        let nets = parse_subnets("LocalSubnet", "192.168.1.0/24, 192.168.2.0/24").unwrap();
        assert_eq!(nets, vec!["192.168.1.0/24".parse::<Ipv4Net>().unwrap(), "192.168.2.0/24".parse().unwrap()]);
        assert_eq!(parse_subnets("RemoteSubnet", "0.0.0.0/0").unwrap().len(), 1);
        for bad in ["10.0.0.1/24", "10.0.0.0", "10.0.0.0/33", "", "10.0.0.0/8,", "fe80::/10", "a/8"] {
            let e = parse_subnets("LocalSubnet", bad).unwrap_err();
            assert_eq!(e.code, "IllegalParam.LocalSubnet");
            assert_eq!(e.message, format!("The specified \"LocalSubnet\" ({bad}) is invalid."));
        }
        assert_eq!(code(parse_subnets("RemoteSubnet", "x")), "IllegalParam.RemoteSubnet");
        let n = |s: &str| parse_subnets("LocalSubnet", s).unwrap();
        assert!(subnets_overlap(&n("10.0.0.0/8"), &n("192.168.0.0/16,10.1.0.0/16")));
        assert!(subnets_overlap(&n("10.1.2.0/24"), &n("10.0.0.0/8")));
        assert!(!subnets_overlap(&n("10.0.0.0/24"), &n("10.0.1.0/24")));
        assert!(selectors_overlap(&n("10.0.0.0/16"), &n("192.168.0.0/24"), &n("10.0.5.0/24"), &n("192.168.0.128/25")));
        assert!(!selectors_overlap(&n("10.0.0.0/16"), &n("192.168.0.0/24"), &n("10.0.5.0/24"), &n("192.168.1.0/24")));
    }

    // -- dual tunnel ------------------------------------------------------------------------------

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().copied())
    }

    fn cgw(id: &str) -> ApiResult<String> {
        match id {
            "cgw-1" => Ok("8.8.0.1".into()),
            "cgw-2" => Ok("8.8.0.2".into()),
            _ => Err(ApiError::not_found("InvalidCustomerGatewayInstanceId.NotFound", "nope")),
        }
    }

    fn tunnels(pairs: &[(&str, &str)]) -> ApiResult<Vec<TunnelSpec>> {
        TunnelSpec::parse_all(&params(pairs), &cgw, ("47.0.0.1", "47.0.0.9"), false, &mk())
    }

    const TWO: &[(&str, &str)] = &[
        ("TunnelOptionsSpecification.1.Role", "slave"),
        ("TunnelOptionsSpecification.1.CustomerGatewayId", "cgw-1"),
        ("TunnelOptionsSpecification.1.EnableDpd", "False"),
        ("TunnelOptionsSpecification.1.TunnelIkeConfig.Psk", "tunnel-one"),
        ("TunnelOptionsSpecification.1.TunnelIkeConfig.IkeAuthAlg", "sha256"),
        ("TunnelOptionsSpecification.1.TunnelIkeConfig.IkeLifetime", "3600"),
        ("TunnelOptionsSpecification.1.TunnelIpsecConfig.IpsecPfs", "disabled"),
        ("TunnelOptionsSpecification.2.Role", "master"),
        ("TunnelOptionsSpecification.2.CustomerGatewayId", "cgw-2"),
        ("TunnelOptionsSpecification.2.EnableNatTraversal", "false"),
    ];

    #[test]
    fn dual_tunnel_flat_form() {
        let key = mk();
        let t = tunnels(TWO).unwrap();
        let (m, s) = (&t[0], &t[1]);
        assert_eq!((m.role.as_str(), m.customer_gateway_id.as_str()), ("master", "cgw-2"));
        assert_eq!((s.role.as_str(), s.customer_gateway_id.as_str()), ("slave", "cgw-1"));
        // LocalId defaults to the tunnel's own IP by role, RemoteId to its customer gateway's.
        assert_eq!((m.ike.local_id.as_str(), m.ike.remote_id.as_str()), ("47.0.0.1", "8.8.0.2"));
        assert_eq!((s.ike.local_id.as_str(), s.ike.remote_id.as_str()), ("47.0.0.9", "8.8.0.1"));
        assert_eq!(
            (m.enable_dpd, m.enable_nat_traversal, s.enable_dpd, s.enable_nat_traversal),
            (true, false, false, true)
        );
        assert_eq!(psk(&s.ike, &key), "tunnel-one");
        assert_eq!(psk(&m.ike, &key).len(), 16);
        assert_eq!(
            (s.ike.ike_auth_alg.as_str(), s.ike.ike_lifetime, s.ipsec.ipsec_pfs.as_str()),
            ("sha256", 3600, "disabled")
        );
        assert_eq!((m.ike.ike_auth_alg.as_str(), m.ipsec.ipsec_pfs.as_str()), ("md5", "group2"));
        assert!(!m.bgp.enable_bgp && m.remote_ca_certificate.is_empty());
        // Stored as JSON and read back unchanged.
        let stored = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Vec<TunnelSpec>>(&stored).unwrap(), t);
    }

    #[test]
    fn dual_tunnel_requires_both_roles() {
        let missing = "MissingParameter.TunnelOptionsSpecification";
        assert_eq!(code(tunnels(&[])), missing);
        assert_eq!(code(tunnels(&TWO[..7])), missing, "no second tunnel");
        let without = |key: &str| TWO.iter().copied().filter(|(k, _)| *k != key).collect::<Vec<_>>();
        assert_eq!(code(tunnels(&without("TunnelOptionsSpecification.2.Role"))), missing);
        assert_eq!(code(tunnels(&without("TunnelOptionsSpecification.1.CustomerGatewayId"))), missing);
        let e = tunnels(&[("TunnelOptionsSpecification.2.CustomerGatewayId", "cgw-9"), TWO[6], TWO[7]]).unwrap_err();
        assert_eq!(e.message, "The required parameters are missing when creating a tunnel for dual-tunnel VPN.");
        // Two masters.
        let mut two_masters = TWO.to_vec();
        two_masters[0].1 = "Master";
        assert_eq!(code(tunnels(&two_masters)), "InvalidParameter");
        let mut bad_role = TWO.to_vec();
        bad_role[0].1 = "backup";
        assert!(tunnels(&bad_role).unwrap_err().message.contains("TunnelOptionsSpecification.1.Role"));
        // The customer gateway lookup's error comes through.
        let mut unknown = TWO.to_vec();
        unknown[1].1 = "cgw-9";
        assert_eq!(code(tunnels(&unknown)), "InvalidCustomerGatewayInstanceId.NotFound");
    }

    #[test]
    fn dual_tunnel_bad_index_and_bad_values() {
        for bad in [
            "TunnelOptionsSpecification.3.Role",
            "TunnelOptionsSpecification.0.Role",
            "TunnelOptionsSpecification.x.Role",
        ] {
            let mut ps = TWO.to_vec();
            ps.push((bad, "master"));
            let e = tunnels(&ps).unwrap_err();
            assert_eq!(e.code, "InvalidParameter", "{bad}");
            assert!(e.message.contains(bad), "{}", e.message);
        }
        let with = |extra: (&'static str, &'static str)| {
            let mut ps = TWO.to_vec();
            ps.push(extra);
            tunnels(&ps).unwrap_err()
        };
        let e = with(("TunnelOptionsSpecification.2.TunnelIkeConfig.IkeVersion", "ikev3"));
        assert!(e.message.contains("\"TunnelOptionsSpecification.2.TunnelIkeConfig.IkeVersion\""), "{}", e.message);
        let e = with(("TunnelOptionsSpecification.2.TunnelIkeConfig.LocalId", "has space"));
        assert!(e.message.contains("TunnelOptionsSpecification.2.TunnelIkeConfig.LocalId"), "{}", e.message);
        assert_eq!(with(("TunnelOptionsSpecification.2.EnableDpd", "maybe")).code, "InvalidParameter");
        assert_eq!(
            with(("TunnelOptionsSpecification.2.TunnelIpsecConfig.IpsecPfs", "group24")).code,
            "NotSupportVpnConnectionParameter.IpsecPfs"
        );
        assert_eq!(with(("TunnelOptionsSpecification.1.TunnelId", "tun-1")).code, "InvalidParameter", "Modify only");
        // pop-core sends nested objects as "[object Object]".
        assert_eq!(with(("TunnelOptionsSpecification.2.TunnelIkeConfig", "[object Object]")).code, "InvalidParameter");
        assert_eq!(with(("TunnelOptionsSpecification.1.TunnelIkeConfig", r#"{"Psk": "x"}"#)).code, "InvalidParameter");
        assert_eq!(code(tunnels(&[("TunnelOptionsSpecification", "{}")])), "InvalidParameter");
    }

    #[test]
    fn dual_tunnel_json_forms_and_bgp() {
        let key = mk();
        let mut ps = TWO.to_vec();
        ps.push(("TunnelOptionsSpecification.2.TunnelIkeConfig", r#"{"IkeVersion": "ikev2", "Psk": "json-psk"}"#));
        let t = tunnels(&ps).unwrap();
        assert_eq!((t[0].ike.ike_version.as_str(), psk(&t[0].ike, &key).as_str()), ("ikev2", "json-psk"));

        let array = r#"[{"Role": "master", "CustomerGatewayId": "cgw-1", "EnableDpd": true,
                         "TunnelIkeConfig": {"IkeLifetime": 600}, "TunnelBgpConfig": {"TunnelCidr": "169.254.10.0/30", "LocalAsn": 65010}},
                        {"Role": "slave", "CustomerGatewayId": "cgw-2", "TunnelBgpConfig": {"TunnelCidr": "169.254.10.4/30"}}]"#;
        let t = tunnels(&[("TunnelOptionsSpecification", array), ("EnableTunnelsBgp", "true")]).unwrap();
        assert_eq!(t[0].ike.ike_lifetime, 600);
        assert_eq!(
            t[0].bgp,
            BgpConfig {
                enable_bgp: true,
                local_asn: 65010,
                tunnel_cidr: "169.254.10.0/30".into(),
                local_bgp_ip: "169.254.10.1".into()
            }
        );
        assert_eq!(
            (t[1].bgp.enable_bgp, t[1].bgp.local_asn, t[1].bgp.local_bgp_ip.as_str()),
            (true, 45104, "169.254.10.5")
        );
        let unknown = r#"[{"Role": "master", "CustomerGatewayId": "cgw-1", "TunnelIkeConfig": {"Foo": 1}}]"#;
        assert!(tunnels(&[("TunnelOptionsSpecification", unknown)])
            .unwrap_err()
            .message
            .contains("TunnelIkeConfig.Foo"));

        // BGP on: each tunnel needs its own CIDR; EnableBgp is not a per-tunnel key.
        let mut bgp = TWO.to_vec();
        bgp.push(("EnableTunnelsBgp", "True"));
        assert_eq!(code(tunnels(&bgp)), "MissingParameter.TunnelCidr");
        bgp.push(("TunnelOptionsSpecification.1.TunnelBgpConfig.TunnelCidr", "169.254.30.0/30"));
        bgp.push(("TunnelOptionsSpecification.2.TunnelBgpConfig.TunnelCidr", "169.254.30.0/30"));
        assert_eq!(code(tunnels(&bgp)), "IllegalParam.TunnelCidr");
        bgp.pop();
        bgp.push(("TunnelOptionsSpecification.2.TunnelBgpConfig.TunnelCidr", "169.254.169.252/30"));
        assert_eq!(code(tunnels(&bgp)), "IllegalParam.TunnelCidr");
        bgp.pop();
        bgp.push(("TunnelOptionsSpecification.2.TunnelBgpConfig.TunnelCidr", "169.254.31.0/30"));
        bgp.push(("TunnelOptionsSpecification.2.TunnelBgpConfig.LocalBgpIp", "169.254.30.1"));
        assert_eq!(code(tunnels(&bgp)), "IllegalParam.LocalBgpIp");
        bgp.pop();
        assert!(tunnels(&bgp).unwrap().iter().all(|t| t.bgp.enable_bgp));
        let bad_json = [("TunnelOptionsSpecification.1.TunnelBgpConfig", "[]"), TWO[0], TWO[1]];
        assert_eq!(code(tunnels(&bad_json)), "IllegalParam.BgpConfig");
    }

    #[test]
    fn dual_tunnel_national_standard() {
        let key = mk();
        let sm =
            |pairs: &[(&str, &str)]| TunnelSpec::parse_all(&params(pairs), &cgw, ("1.1.1.1", "1.1.1.2"), true, &key);
        let mut ps = TWO.to_vec();
        ps.push(("TunnelOptionsSpecification.2.RemoteCaCertificate", "-----BEGIN CERTIFICATE----- x"));
        assert_eq!(code(sm(&ps)), "MissingParam.RemoteId");
        ps.push(("TunnelOptionsSpecification.1.TunnelIkeConfig.RemoteId", "CN=a"));
        ps.push(("TunnelOptionsSpecification.2.TunnelIkeConfig.RemoteId", "CN=b"));
        let t = sm(&ps).unwrap();
        assert_eq!(t[0].remote_ca_certificate, "-----BEGIN CERTIFICATE----- x");
        assert_eq!(
            (t[0].ike.ike_enc_alg.as_str(), t[0].ipsec.ipsec_auth_alg.as_str(), t[0].ike.remote_id.as_str()),
            ("sm4", "sm3", "CN=b")
        );
    }

    #[test]
    fn tunnel_wire_uses_strings() {
        let key = mk();
        let mut bgp = TWO.to_vec();
        bgp.extend([
            ("EnableTunnelsBgp", "true"),
            ("TunnelOptionsSpecification.1.TunnelBgpConfig.TunnelCidr", "169.254.30.0/30"),
            ("TunnelOptionsSpecification.2.TunnelBgpConfig.TunnelCidr", "169.254.31.0/30"),
        ]);
        let t = tunnels(&bgp).unwrap();
        let w = Value::Object(t[1].wire(&key, "success", Some(65001)).unwrap());
        assert_eq!(w["Role"], "slave");
        assert_eq!(w["EnableDpd"], "false");
        assert_eq!(w["EnableNatTraversal"], "true");
        assert_eq!(w["TunnelIkeConfig"]["IkeLifetime"], "3600");
        assert_eq!(w["TunnelIkeConfig"]["Psk"], "tunnel-one");
        assert_eq!(w["TunnelIkeConfig"]["LocalId"], "47.0.0.9");
        assert_eq!(w["TunnelIpsecConfig"]["IpsecLifetime"], "86400");
        assert_eq!(
            w["TunnelBgpConfig"],
            json!({"BgpStatus": "success", "LocalAsn": "45104", "LocalBgpIp": "169.254.30.1", "PeerAsn": "65001",
                   "PeerBgpIp": "169.254.30.2", "TunnelCidr": "169.254.30.0/30"})
        );
    }

    #[test]
    fn dual_tunnel_modify() {
        let key = mk();
        let t = tunnels(TWO).unwrap();
        let merge =
            |spec: &TunnelSpec, pairs: &[(&str, &str)]| spec.merge(&params(pairs), &cgw, "47.0.0.1", false, &key);
        let slave = ("TunnelOptionsSpecification.1.Role", "slave");
        // Nothing given: nothing changes (the PSK stays sealed as it was).
        assert_eq!(merge(&t[0], &[]).unwrap(), t[0]);
        // Only the element with this tunnel's role applies.
        let change = [
            slave,
            ("TunnelOptionsSpecification.1.TunnelId", "tun-x"),
            ("TunnelOptionsSpecification.1.EnableDpd", "true"),
            ("TunnelOptionsSpecification.1.TunnelIkeConfig.IkeVersion", "ikev2"),
            ("TunnelOptionsSpecification.1.TunnelIpsecConfig.IpsecAuthAlg", "sha384"),
        ];
        assert_eq!(merge(&t[0], &change).unwrap(), t[0]);
        let s = merge(&t[1], &change).unwrap();
        assert_eq!(
            (s.enable_dpd, s.ike.ike_version.as_str(), s.ipsec.ipsec_auth_alg.as_str()),
            (true, "ikev2", "sha384")
        );
        assert_eq!((&s.ike.psk, s.ike.ike_lifetime, s.ike.local_id.as_str()), (&t[1].ike.psk, 3600, "47.0.0.9"));
        // A new customer gateway: a default RemoteId follows it, a chosen one stays.
        let to = |id| [slave, ("TunnelOptionsSpecification.1.CustomerGatewayId", id)];
        let moved = merge(&t[1], &to("cgw-2")).unwrap();
        assert_eq!((moved.customer_gateway_id.as_str(), moved.ike.remote_id.as_str()), ("cgw-2", "8.8.0.2"));
        let mut chosen = t[1].clone();
        chosen.ike.remote_id = "peer.example".into();
        assert_eq!(merge(&chosen, &to("cgw-2")).unwrap().ike.remote_id, "peer.example");
        assert_eq!(code(merge(&t[1], &to("cgw-9"))), "InvalidCustomerGatewayInstanceId.NotFound");
        // Every element names its role; the tunnel rules and strictness still hold.
        let no_role = [("TunnelOptionsSpecification.1.EnableDpd", "true")];
        assert_eq!(code(merge(&t[0], &no_role)), "MissingParameter.TunnelOptionsSpecification");
        assert_eq!(code(merge(&t[0], &[("TunnelOptionsSpecification.3.Role", "master")])), "InvalidParameter");
        let pfs = [
            ("TunnelOptionsSpecification.2.Role", "master"),
            ("TunnelOptionsSpecification.2.TunnelIpsecConfig.IpsecPfs", "group24"),
        ];
        assert_eq!(code(merge(&t[0], &pfs)), "NotSupportVpnConnectionParameter.IpsecPfs");
        // EnableTunnelsBgp switches BGP on every tunnel, which then needs its CIDR.
        assert_eq!(code(merge(&t[0], &[("EnableTunnelsBgp", "true")])), "MissingParameter.TunnelCidr");
        let cidr = ("TunnelOptionsSpecification.1.TunnelBgpConfig.TunnelCidr", "169.254.40.0/30");
        let on = merge(&t[0], &[("EnableTunnelsBgp", "true"), ("TunnelOptionsSpecification.1.Role", "master"), cidr])
            .unwrap();
        assert_eq!((on.bgp.enable_bgp, on.bgp.local_bgp_ip.as_str()), (true, "169.254.40.1"));
        assert!(!merge(&on, &[("EnableTunnelsBgp", "false")]).unwrap().bgp.enable_bgp);
        assert!(merge(&on, &[]).unwrap().bgp.enable_bgp, "kept when not given");
    }
}
