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
    let c =
        IkeConfig::parse(Some(r#"{"IkeLifetime": "0", "IkeVersion": "IKEv2", "LocalId": null, "RemoteId": ""}"#), &d)
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
    assert_eq!(code(IpsecConfig::parse(Some(r#"{"IpsecEncAlg": "3des, aes"}"#), &d)), "EncAlgInvalid.DesIncompatible");
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
    let c = IkeConfig::parse(Some(r#"{"Psk": "first", "IkeAuthAlg": "sha1", "LocalId": "a.example"}"#), &d).unwrap();
    let m = c.merge(Some(r#"{"IkeVersion": "ikev2", "IkeLifetime": "600"}"#), &d).unwrap();
    assert_eq!(m.psk, c.psk, "the PSK is kept, not re-sealed");
    assert_eq!((m.ike_version.as_str(), m.ike_lifetime), ("ikev2", 600));
    assert_eq!((m.ike_auth_alg.as_str(), m.local_id.as_str(), m.remote_id.as_str()), ("sha1", "a.example", "47.0.0.2"));
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
    let text = r#"{"IpsecEncAlg": "3des", "IpsecAuthAlg": "sha1", "IpsecPfs": "group24", "IpsecLifetime": "28800"}"#;
    let c = IpsecConfig::parse(Some(text), &d).unwrap();
    assert_eq!((c.ipsec_enc_alg.as_str(), c.ipsec_pfs.as_str(), c.ipsec_lifetime), ("3des", "group24", 28800));
    let m = c.merge(Some(r#"{"IpsecPfs": "group5"}"#), &d).unwrap();
    assert_eq!((m.ipsec_enc_alg.as_str(), m.ipsec_auth_alg.as_str(), m.ipsec_pfs.as_str()), ("3des", "sha1", "group5"));
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
    assert_eq!(code(IpsecConfig::parse(Some(r#"{"IpsecPfs": 2}"#), &d)), "NotSupportVpnConnectionParameter.IpsecPfs");
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
    assert!(e.message.contains("\"TunnelOptionsSpecification.1.TunnelIpsecConfig.IpsecLifetime\""), "{}", e.message);
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
    let c = BgpConfig::parse(Some(r#"{"EnableBgp": true, "LocalAsn": 4294967295, "TunnelCidr": "169.254.20.4/30"}"#))
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
        HealthCheckConfig { enable: true, dip: "192.168.10.1".into(), sip: "10.10.1.1".into(), interval: 5, retry: 2 }
    );
    assert_eq!(c.wire("failed")["Enable"], "true");
    let d = HealthCheckConfig::parse(Some(r#"{"enable": true, "dip": "192.168.10.1", "sip": "10.10.1.1"}"#)).unwrap();
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
    for bad in
        ["TunnelOptionsSpecification.3.Role", "TunnelOptionsSpecification.0.Role", "TunnelOptionsSpecification.x.Role"]
    {
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
    assert!(tunnels(&[("TunnelOptionsSpecification", unknown)]).unwrap_err().message.contains("TunnelIkeConfig.Foo"));

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
    let sm = |pairs: &[(&str, &str)]| TunnelSpec::parse_all(&params(pairs), &cgw, ("1.1.1.1", "1.1.1.2"), true, &key);
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
    let merge = |spec: &TunnelSpec, pairs: &[(&str, &str)]| spec.merge(&params(pairs), &cgw, "47.0.0.1", false, &key);
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
    assert_eq!((s.enable_dpd, s.ike.ike_version.as_str(), s.ipsec.ipsec_auth_alg.as_str()), (true, "ikev2", "sha384"));
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
    let on =
        merge(&t[0], &[("EnableTunnelsBgp", "true"), ("TunnelOptionsSpecification.1.Role", "master"), cidr]).unwrap();
    assert_eq!((on.bgp.enable_bgp, on.bgp.local_bgp_ip.as_str()), (true, "169.254.40.1"));
    assert!(!merge(&on, &[("EnableTunnelsBgp", "false")]).unwrap().bgp.enable_bgp);
    assert!(merge(&on, &[]).unwrap().bgp.enable_bgp, "kept when not given");
}

#[test]
fn a_generated_psk_is_one_strongswan_reads_as_it_is() {
    for _ in 0..20_000 {
        let psk = ike::random_psk();
        let p = psk.expose();
        assert_eq!(p.len(), 16);
        assert!(p.chars().all(|c| c.is_ascii_alphanumeric()), "{p}");
        assert!(!crate::secret::encoded_for_strongswan(p), "{p}");
    }
    assert!(crate::secret::encoded_for_strongswan("0SWfYeENdkkeB1Hd"));
    assert!(crate::secret::encoded_for_strongswan("0xab") && crate::secret::encoded_for_strongswan("0sAB"));
    assert!(!crate::secret::encoded_for_strongswan("0") && !crate::secret::encoded_for_strongswan("x0s"));
}
