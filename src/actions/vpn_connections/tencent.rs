//! The connection family in Tencent's legacy dialect (API 2.0): AddVpnConnEx. It decodes
//! Tencent's parameters into the same `NewConnection` CreateVpnConnection builds, runs the same
//! `create`, and renders the output and the family's errors in Tencent's terms (`error`).
//!
//! Mapping onto the model:
//! - `vpnGwId`/`userGwId` are the gateways' own ids (`vpn-…`, `cgw-…`); `vpcId` must be the
//!   gateway's VPC.
//! - `userGwCidrBlock.N` (N from 0) are the IDC side (RemoteSubnet), the VPC side being any
//!   address (`0.0.0.0/0`: a VPC's own CIDR is not modelled); `spdAcl` maps VPC CIDRs to IDC
//!   CIDRs, and since one connection carries one set of selectors, every VPC CIDR must list the
//!   same IDC CIDRs. CIDRs with host bits (`10.56.20.1/24`, as in the documentation) are taken as
//!   their network.
//! - `IKESet.*`/`IPsecSet.*` become the IKE (IKEv1) and IPsec configuration, with Tencent's
//!   documented defaults (3des-cbc, md5, main, address identities) and these where it documents
//!   none: DH group group2, IKE SA 86400 s, IPsec SA 3600 s, no volume limit.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use ipnet::Ipv4Net;
use serde_json::{json, Value};

use super::{ConnectionError, ConnectionFields, Created, Negotiation, NewConnection};
use crate::actions::ipsec::{IkeConfig, IpsecConfig};
use crate::api::params::Params;
use crate::api::tencent::{self, Common, TencentError};
use crate::app::{Body, Ctx};
use crate::secret::{Sealed, Secret};

const NAME_MAX: usize = 60;
const PSK_MAX: usize = 128;
/// How many `userGwCidrBlock.N` a request may list (N = 0..=99).
const CIDR_INDEXES: RangeInclusive<usize> = 0..=99;

/// (Tencent's name, the stored name) of each documented value.
const ENCRYPTION: &[(&str, &str)] = &[
    ("3des-cbc", "3des"),
    ("aes-cbc-128", "aes"),
    ("aes-cbc-192", "aes192"),
    ("aes-cbc-256", "aes256"),
    ("des-cbc", "des"),
];
/// Phase 2 may also not encrypt.
const ESP_ENCRYPTION: &[(&str, &str)] = &[
    ("3des-cbc", "3des"),
    ("aes-cbc-128", "aes"),
    ("aes-cbc-192", "aes192"),
    ("aes-cbc-256", "aes256"),
    ("des-cbc", "des"),
    ("null", "null"),
];
const INTEGRITY: &[(&str, &str)] = &[("md5", "md5"), ("sha", "sha1")];
const EXCHANGE_MODES: &[(&str, &str)] = &[("main", "main"), ("aggressive", "aggressive")];
const DH_GROUPS: &[(&str, &str)] =
    &[("group1", "group1"), ("group2", "group2"), ("group5", "group5"), ("group14", "group14"), ("group24", "group24")];
const PFS_GROUPS: &[(&str, &str)] = &[
    ("null", "disabled"),
    ("dh-group1", "group1"),
    ("dh-group2", "group2"),
    ("dh-group5", "group5"),
    ("dh-group14", "group14"),
    ("dh-group24", "group24"),
];
const IDENTITIES: &[(&str, &str)] = &[("address", "address"), ("fqdn", "fqdn")];

/// Every `IKESet.*` and `IPsecSet.*` member (`encryptAlgorithm` is documented under IKESet and
/// describes phase 2; it is also taken under IPsecSet, and `integrityAlgorith` also spelled
/// `integrityAlgorithm`).
const IKE_KEYS: &[&str] = &[
    "propoEncryAlgorithm",
    "propoAuthenAlgorithm",
    "exchangeMode",
    "localIdentity",
    "remoteIdentity",
    "localAddress",
    "remoteAddress",
    "localFqdnName",
    "remoteFqdnName",
    "dhGroupName",
    "ikeSaLifetimeSeconds",
    "encryptAlgorithm",
];
const IPSEC_KEYS: &[&str] = &[
    "encryptAlgorithm",
    "integrityAlgorith",
    "integrityAlgorithm",
    "ipsecSaLifetimeSeconds",
    "ipsecSaLifetimeTraffic",
    "pfsDhGroup",
];

/// Every error of the family, in Tencent's codes (the documented ones where it has them).
pub fn error(e: ConnectionError) -> TencentError {
    let not_found = |desc: &str, what: &str| {
        TencentError::new(Common::ResourceNotFound, desc, format!("The {what} does not exist."))
    };
    match e {
        ConnectionError::VpcNotFound => not_found("InvalidVpc.NotFound", "VPC"),
        ConnectionError::GatewayNotFound => not_found("InvalidVpnGw.NotFound", "VPN gateway"),
        ConnectionError::CustomerGatewayNotFound => not_found("InvalidUserGw.NotFound", "peer gateway"),
        ConnectionError::ConnectionNotFound => not_found("InvalidVpnConn.NotFound", "VPN tunnel"),
        ConnectionError::GatewayConfiguring => TencentError::new(
            Common::InvalidParameter,
            "VpnGw.Configuring",
            "The VPN gateway is applying another change; try again when it is done.",
        ),
        ConnectionError::IpsecDisabled => TencentError::new(
            Common::InvalidParameter,
            "VpnGw.IpsecDisabled",
            "The VPN gateway does not run IPsec VPN.",
        ),
        ConnectionError::QuotaFull => TencentError::new(
            Common::QuotaExceeded,
            "VpnConnLimitExceeded",
            "The VPN gateway has as many VPN tunnels as it may have.",
        ),
        ConnectionError::MissingCustomerGateway => TencentError::missing_parameter("userGwId"),
        ConnectionError::TakesDualTunnel(_) | ConnectionError::TakesSingleTunnel => TencentError::new(
            Common::InvalidParameter,
            "UnsupportedOperation.DualTunnelVpnGw",
            "This VPN gateway takes dual-tunnel connections, which AddVpnConnEx cannot describe.",
        ),
        ConnectionError::CustomerGatewayIsGateway => TencentError::new(
            Common::InvalidParameter,
            "InvalidUserGw.SameAddressAsVpnGw",
            "The peer gateway's address is the VPN gateway's own.",
        ),
        ConnectionError::MissingPeerCertificate | ConnectionError::PeerCertificateNotTaken => TencentError::new(
            Common::InvalidParameter,
            "UnsupportedOperation.NationalStandardVpnGw",
            "This VPN gateway needs the peer's CA certificate, which AddVpnConnEx cannot give.",
        ),
        ConnectionError::CustomerGatewayWithoutAsn | ConnectionError::TunnelCidrTaken(_) => TencentError::new(
            Common::InvalidParameter,
            "InvalidParameter",
            "The tunnel's BGP settings do not fit the VPN gateway.",
        ),
        ConnectionError::DifferentIkeConfigs => TencentError::new(
            Common::InvalidParameter,
            "VpnConn.IKESetConflict",
            "Tunnels between the same VPN gateway and peer gateway share one IKE configuration (IKESet and \
             preSharedKey): this one differs.",
        ),
        ConnectionError::SelectorsOverlap => TencentError::new(
            Common::InvalidParameter,
            "VpnConn.SpdAclConflict",
            "The tunnel's CIDR blocks overlap another tunnel's between the same VPN gateway and peer gateway.",
        ),
        ConnectionError::DryRunPassed => {
            TencentError::new(Common::InvalidParameter, "DryRunOperation", "The request would have succeeded.")
        }
        ConnectionError::Rule(e) => e.into(),
    }
}

pub async fn add_vpn_conn_ex(ctx: Ctx) -> Result<Body, TencentError> {
    let region = tencent::region(&ctx)?;
    let p = &ctx.params;
    let vpc_id = required(p, "vpcId")?;
    let vpn_gateway_id = required(p, "vpnGwId")?;
    let user_gw_id = required(p, "userGwId")?;
    let name = p.str("vpnConnName");
    if name.as_ref().is_some_and(|n| n.chars().count() > NAME_MAX) {
        return Err(TencentError::new(
            Common::InvalidParameter,
            "InvalidVpnConnName",
            format!("The VPN tunnel name may have at most {NAME_MAX} characters."),
        ));
    }
    let psk = pre_shared_key(p)?;
    let (local, remote) = selectors(p)?;
    let negotiation = negotiation(p, &psk, &ctx.app.master_key)?;
    let new = NewConnection {
        region: region.id,
        vpn_gateway_id,
        vpc_id: Some(vpc_id),
        fields: ConnectionFields {
            name,
            local_subnet: Some(join(&local)),
            remote_subnet: Some(join(&remote)),
            effect_immediately: None,
            auto_config_route: None,
            enable_dpd: None,
            enable_nat_traversal: None,
            remote_ca_certificate: None,
            customer_gateway_id: Some(user_gw_id),
            negotiation,
            bgp: None,
            health_check: None,
            tunnel_options: Params::default(),
        },
        tags: Vec::new(),
        enable_tunnels_bgp: false,
        dry_run: false,
    };
    let (account_id, app) = (ctx.account_id, ctx.app.clone());
    let created = ctx.write_typed(move |tx| super::create(tx, &app, account_id, &new)).await.map_err(error)?;
    Ok(answer(&created, &psk, &remote))
}

/// `data` of a created connection. `vpnConnStatus` is 0 while the gateway applies it (as the
/// documented example shows for a new tunnel).
fn answer(created: &Created, psk: &Secret, remote: &[Ipv4Net]) -> Body {
    let c = &created.connection;
    let mut data = Body::new();
    data.insert("taskId".into(), json!(created.task_id));
    data.insert("vpnGwId".into(), json!(c.vpn_gateway_id));
    data.insert("userGwId".into(), json!(c.main_tunnel().spec.customer_gateway_id));
    data.insert("vpnConnId".into(), json!(c.id));
    data.insert("vpnConnStatus".into(), json!(0));
    data.insert("preSharedKey".into(), json!(psk.expose()));
    data.insert("userGwSubnetList".into(), Value::from(remote.iter().map(|n| n.to_string()).collect::<Vec<_>>()));
    data
}

fn required(p: &Params, name: &str) -> Result<String, TencentError> {
    p.str(name).ok_or_else(|| TencentError::missing_parameter(name))
}

/// `preSharedKey`: 1-128 printable ASCII characters (spaces included). The error never shows it.
fn pre_shared_key(p: &Params) -> Result<Secret, TencentError> {
    let psk = Secret::new(required(p, "preSharedKey")?);
    let ok = psk.expose().len() <= PSK_MAX && psk.expose().chars().all(|c| c == ' ' || c.is_ascii_graphic());
    if !ok {
        return Err(TencentError::invalid_parameter(
            "preSharedKey",
            format!("it must be 1-{PSK_MAX} printable ASCII characters"),
        ));
    }
    Ok(psk)
}

/// One CIDR block, taken as its network.
fn cidr(name: &str, value: &str) -> Result<Ipv4Net, TencentError> {
    value
        .trim()
        .parse::<Ipv4Net>()
        .map(|n| n.trunc())
        .map_err(|_| TencentError::invalid_parameter(name, format!("{value:?} is not an IPv4 CIDR block")))
}

fn join(nets: &[Ipv4Net]) -> String {
    nets.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",")
}

/// The traffic selectors, (VPC side, IDC side), from exactly one of `userGwCidrBlock.N` and `spdAcl`.
fn selectors(p: &Params) -> Result<(Vec<Ipv4Net>, Vec<Ipv4Net>), TencentError> {
    let blocks = p.list_in("userGwCidrBlock", CIDR_INDEXES)?;
    match (blocks.is_empty(), p.str("spdAcl")) {
        (false, Some(_)) => {
            Err(TencentError::invalid_parameter("spdAcl", "give either userGwCidrBlock.N or spdAcl, not both"))
        }
        (true, None) => Err(TencentError::new(
            Common::InvalidParameter,
            "MissingParameter",
            "One of the parameters userGwCidrBlock.N and spdAcl is required.",
        )),
        (false, None) => {
            let remote = blocks.iter().map(|b| cidr("userGwCidrBlock", b)).collect::<Result<Vec<_>, _>>()?;
            Ok((vec![Ipv4Net::default()], dedup(remote)))
        }
        (true, Some(acl)) => spd_acl(&acl),
    }
}

fn dedup(mut nets: Vec<Ipv4Net>) -> Vec<Ipv4Net> {
    nets.sort();
    nets.dedup();
    nets
}

/// `{"<VPC CIDR>": ["<IDC CIDR>", ...], ...}`, every VPC CIDR listing the same IDC CIDRs.
fn spd_acl(text: &str) -> Result<(Vec<Ipv4Net>, Vec<Ipv4Net>), TencentError> {
    let bad = |why: &str| TencentError::invalid_parameter("spdAcl", why);
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        return Err(bad(r#"it must be a JSON object such as {"10.0.0.0/24":["172.16.0.0/16"]}"#));
    };
    if map.is_empty() {
        return Err(bad("it lists no VPC CIDR block"));
    }
    let (mut local, mut remote) = (Vec::new(), None);
    for (vpc_side, idc_side) in &map {
        local.push(cidr("spdAcl", vpc_side)?);
        let Value::Array(items) = idc_side else {
            return Err(bad("each VPC CIDR block maps to a list of IDC CIDR blocks"));
        };
        let nets = items
            .iter()
            .map(|v| v.as_str().ok_or_else(|| bad("IDC CIDR blocks are strings")).and_then(|s| cidr("spdAcl", s)))
            .collect::<Result<Vec<_>, _>>()?;
        let nets = dedup(nets);
        if nets.is_empty() {
            return Err(bad("each VPC CIDR block lists at least one IDC CIDR block"));
        }
        match &remote {
            Some(r) if *r != nets => {
                return Err(bad(
                    "every VPC CIDR block must list the same IDC CIDR blocks (one tunnel, one set of selectors)",
                ))
            }
            _ => remote = Some(nets),
        }
    }
    Ok((dedup(local), remote.unwrap_or_default()))
}

/// A documented value of `name`, as stored; `default` when absent.
fn choice(
    p: &Params,
    name: &str,
    table: &[(&str, &'static str)],
    default: &'static str,
) -> Result<&'static str, TencentError> {
    let Some(v) = p.get(name) else { return Ok(default) };
    table.iter().find(|(wire, _)| wire.eq_ignore_ascii_case(v.trim())).map(|(_, stored)| *stored).ok_or_else(|| {
        let names: Vec<&str> = table.iter().map(|(w, _)| *w).collect();
        TencentError::invalid_parameter(name, format!("{v:?} is not one of {}", names.join(", ")))
    })
}

/// A whole number of `name` within `range`; `default` when absent.
fn number(p: &Params, name: &str, range: RangeInclusive<u32>, default: u32) -> Result<u32, TencentError> {
    let Some(v) = p.get(name) else { return Ok(default) };
    v.trim().parse::<u32>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
        TencentError::invalid_parameter(
            name,
            format!("it must be a whole number from {} to {}", range.start(), range.end()),
        )
    })
}

/// One side's IKE identity: its address (`address`, defaulting to the side's public address,
/// filled in by the operation) or its name (`fqdn`, then required).
fn identity(p: &Params, side: &str) -> Result<String, TencentError> {
    let kind = choice(p, &format!("IKESet.{side}Identity"), IDENTITIES, "address")?;
    if kind == "address" {
        let name = format!("IKESet.{side}Address");
        return match p.get(&name) {
            None => Ok(String::new()),
            Some(a) => a
                .trim()
                .parse::<Ipv4Addr>()
                .map(|a| a.to_string())
                .map_err(|_| TencentError::invalid_parameter(&name, format!("{a:?} is not an IPv4 address"))),
        };
    }
    let name = format!("IKESet.{side}FqdnName");
    let fqdn = required(p, &name)?;
    if fqdn.chars().count() > 100 || fqdn.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(TencentError::invalid_parameter(&name, "it must be at most 100 characters, without spaces"));
    }
    Ok(fqdn)
}

/// `IKESet.*` and `IPsecSet.*` as the connection's IKE and IPsec configuration.
fn negotiation(p: &Params, psk: &Secret, key: &crate::secret::MasterKey) -> Result<Negotiation, TencentError> {
    for (set, keys) in [("IKESet.", IKE_KEYS), ("IPsecSet.", IPSEC_KEYS)] {
        if let Some(unknown) = p.names_with_prefix(set).find(|n| !keys.contains(&&n[set.len()..])) {
            return Err(TencentError::invalid_parameter(unknown, format!("expected one of {set}{}", keys.join(", "))));
        }
    }
    let esp_enc = match (p.get("IKESet.encryptAlgorithm"), p.get("IPsecSet.encryptAlgorithm")) {
        (Some(a), Some(b)) if !a.eq_ignore_ascii_case(b) => {
            return Err(TencentError::invalid_parameter(
                "IPsecSet.encryptAlgorithm",
                "it differs from IKESet.encryptAlgorithm, which names the same setting",
            ))
        }
        (_, Some(_)) => choice(p, "IPsecSet.encryptAlgorithm", ESP_ENCRYPTION, "3des")?,
        _ => choice(p, "IKESet.encryptAlgorithm", ESP_ENCRYPTION, "3des")?,
    };
    let integrity_name = if p.get("IPsecSet.integrityAlgorithm").is_some() {
        "IPsecSet.integrityAlgorithm"
    } else {
        "IPsecSet.integrityAlgorith"
    };
    let ike = IkeConfig {
        psk: Sealed::seal(key, psk),
        ike_version: "ikev1".into(),
        ike_mode: choice(p, "IKESet.exchangeMode", EXCHANGE_MODES, "main")?.into(),
        ike_enc_alg: choice(p, "IKESet.propoEncryAlgorithm", ENCRYPTION, "3des")?.into(),
        ike_auth_alg: choice(p, "IKESet.propoAuthenAlgorithm", INTEGRITY, "md5")?.into(),
        ike_pfs: choice(p, "IKESet.dhGroupName", DH_GROUPS, "group2")?.into(),
        ike_lifetime: number(p, "IKESet.ikeSaLifetimeSeconds", 60..=604800, 86400)?,
        local_id: identity(p, "local")?,
        remote_id: identity(p, "remote")?,
    };
    let ipsec = IpsecConfig {
        ipsec_enc_alg: esp_enc.into(),
        ipsec_auth_alg: choice(p, integrity_name, INTEGRITY, "md5")?.into(),
        ipsec_pfs: choice(p, "IPsecSet.pfsDhGroup", PFS_GROUPS, "disabled")?.into(),
        ipsec_lifetime: number(p, "IPsecSet.ipsecSaLifetimeSeconds", 180..=604800, 3600)?,
        ipsec_lifetime_kb: number(p, "IPsecSet.ipsecSaLifetimeTraffic", 2560..=604800, 0)?,
    };
    Ok(Negotiation::Settled { ike: Box::new(ike), ipsec })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().copied())
    }

    fn settled(params: &Params) -> (IkeConfig, IpsecConfig) {
        let key = crate::actions::test_support::key();
        match negotiation(params, &Secret::new("k"), &key).unwrap() {
            Negotiation::Settled { ike, ipsec } => (*ike, ipsec),
            Negotiation::Text { .. } => panic!("Tencent's settings arrive settled"),
        }
    }

    #[test]
    fn documented_defaults_and_mappings() {
        let (ike, ipsec) = settled(&p(&[]));
        let got = (ike.ike_enc_alg.as_str(), ike.ike_auth_alg.as_str(), ike.ike_mode.as_str(), ike.ike_pfs.as_str());
        assert_eq!(got, ("3des", "md5", "main", "group2"));
        assert_eq!((ike.ike_lifetime, ike.local_id.as_str(), ike.remote_id.as_str()), (86400, "", ""));
        let got = (ipsec.ipsec_enc_alg.as_str(), ipsec.ipsec_auth_alg.as_str(), ipsec.ipsec_pfs.as_str());
        assert_eq!(got, ("3des", "md5", "disabled"));
        assert_eq!((ipsec.ipsec_lifetime, ipsec.ipsec_lifetime_kb), (3600, 0));

        let (ike, ipsec) = settled(&p(&[
            ("IKESet.propoEncryAlgorithm", "aes-cbc-256"),
            ("IKESet.propoAuthenAlgorithm", "SHA"),
            ("IKESet.exchangeMode", "aggressive"),
            ("IKESet.localIdentity", "fqdn"),
            ("IKESet.localFqdnName", "vpn.example.com"),
            ("IKESet.remoteAddress", "203.0.113.9"),
            ("IKESet.dhGroupName", "group14"),
            ("IKESet.ikeSaLifetimeSeconds", "604800"),
            ("IKESet.encryptAlgorithm", "null"),
            ("IPsecSet.integrityAlgorith", "sha"),
            ("IPsecSet.ipsecSaLifetimeSeconds", "180"),
            ("IPsecSet.ipsecSaLifetimeTraffic", "2560"),
            ("IPsecSet.pfsDhGroup", "dh-group24"),
        ]));
        assert_eq!(
            (ike.ike_enc_alg.as_str(), ike.ike_auth_alg.as_str(), ike.ike_mode.as_str()),
            ("aes256", "sha1", "aggressive")
        );
        assert_eq!(
            (ike.local_id.as_str(), ike.remote_id.as_str(), ike.ike_pfs.as_str()),
            ("vpn.example.com", "203.0.113.9", "group14")
        );
        assert_eq!(ike.ike_lifetime, 604800);
        assert_eq!(
            (ipsec.ipsec_enc_alg.as_str(), ipsec.ipsec_auth_alg.as_str(), ipsec.ipsec_pfs.as_str()),
            ("null", "sha1", "group24")
        );
        assert_eq!((ipsec.ipsec_lifetime, ipsec.ipsec_lifetime_kb), (180, 2560));
    }

    #[test]
    fn bad_settings_name_their_parameter() {
        let key = crate::actions::test_support::key();
        for (name, value) in [
            ("IKESet.propoEncryAlgorithm", "aes"),
            ("IKESet.propoAuthenAlgorithm", "sha256"),
            ("IKESet.dhGroupName", "group3"),
            ("IKESet.ikeSaLifetimeSeconds", "59"),
            ("IKESet.ikeSaLifetimeSeconds", "604801"),
            ("IKESet.localAddress", "vpn.example.com"),
            ("IPsecSet.ipsecSaLifetimeSeconds", "179"),
            ("IPsecSet.ipsecSaLifetimeTraffic", "2559"),
            ("IPsecSet.pfsDhGroup", "group2"),
            ("IKESet.bogus", "1"),
        ] {
            let Err(e) = negotiation(&p(&[(name, value)]), &Secret::new("k"), &key) else { panic!("{name}={value}") };
            assert_eq!((e.common, e.desc.as_str()), (Common::InvalidParameter, "InvalidParameter"), "{name}={value}");
            assert!(e.message.contains(name), "{e:?}");
        }
        let Err(e) = negotiation(&p(&[("IKESet.remoteIdentity", "fqdn")]), &Secret::new("k"), &key) else {
            panic!("remoteIdentity fqdn without remoteFqdnName")
        };
        assert_eq!(e.desc, "MissingParameter");
        assert!(e.message.contains("IKESet.remoteFqdnName"), "{e:?}");
    }

    #[test]
    fn selectors_from_either_form() {
        let (l, r) =
            selectors(&p(&[("userGwCidrBlock.1", "10.56.21.0/24"), ("userGwCidrBlock.0", "10.56.20.1/24")])).unwrap();
        assert_eq!(join(&l), "0.0.0.0/0");
        assert_eq!(join(&r), "10.56.20.0/24,10.56.21.0/24");
        let (l, r) =
            selectors(&p(&[("spdAcl", r#"{"10.0.0.5/24":["172.123.10.5/16"],"10.1.0.0/24":["172.123.0.0/16"]}"#)]))
                .unwrap();
        assert_eq!((join(&l), join(&r)), ("10.0.0.0/24,10.1.0.0/24".into(), "172.123.0.0/16".into()));

        assert_eq!(selectors(&p(&[])).unwrap_err().desc, "MissingParameter");
        for bad in [
            p(&[("userGwCidrBlock.0", "10.0.0.0/24"), ("spdAcl", r#"{"10.0.0.0/24":["172.16.0.0/16"]}"#)]),
            p(&[("userGwCidrBlock.0", "10.0.0.0/33")]),
            p(&[("userGwCidrBlock.100", "10.0.0.0/24")]),
            p(&[("spdAcl", "[]")]),
            p(&[("spdAcl", "{}")]),
            p(&[("spdAcl", r#"{"10.0.0.0/24":"172.16.0.0/16"}"#)]),
            p(&[("spdAcl", r#"{"10.0.0.0/24":[]}"#)]),
            p(&[("spdAcl", r#"{"10.0.0.0/24":["172.16.0.0/16"],"10.1.0.0/24":["172.17.0.0/16"]}"#)]),
        ] {
            let e = selectors(&bad).unwrap_err();
            assert_eq!((e.common, e.desc.as_str()), (Common::InvalidParameter, "InvalidParameter"), "{bad:?}");
        }
    }
}
