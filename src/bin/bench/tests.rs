use super::*;
use gatehouse::api::auth::{claim, decode_form, verify, SignedParts};

#[test]
fn percentile_nearest_rank() {
    assert_eq!(percentile(&[], 50.0), None);
    assert_eq!(percentile(&[7], 0.0), Some(7));
    assert_eq!(percentile(&[7], 99.0), Some(7));
    let v: Vec<u32> = (1..=100).collect();
    assert_eq!(percentile(&v, 50.0), Some(50));
    assert_eq!(percentile(&v, 90.0), Some(90));
    assert_eq!(percentile(&v, 99.0), Some(99));
    assert_eq!(percentile(&v, 100.0), Some(100));
    assert_eq!(percentile(&v, 0.0), Some(1));
    let v = [10, 20, 30, 40];
    assert_eq!(percentile(&v, 50.0), Some(20));
    assert_eq!(percentile(&v, 51.0), Some(30));
    assert_eq!(percentile(&v, 99.0), Some(40));
    let v: Vec<u32> = (1..=1000).collect();
    assert_eq!(percentile(&v, 99.0), Some(990));
    assert_eq!(percentile(&v, 99.9), Some(999));
}

#[test]
fn template_parsing_and_expansion() {
    assert_eq!(parse_template("cgw{n}").unwrap(), vec![Seg::Lit("cgw".into()), Seg::N]);
    assert_eq!(parse_template("{ip}").unwrap(), vec![Seg::Ip]);
    assert_eq!(parse_template("plain").unwrap(), vec![Seg::Lit("plain".into())]);
    assert_eq!(parse_template("").unwrap(), vec![]);
    assert_eq!(parse_template("a{{b}}").unwrap(), vec![Seg::Lit("a{b}".into())]);
    assert_eq!(parse_template("网{n}关").unwrap(), vec![Seg::Lit("网".into()), Seg::N, Seg::Lit("关".into())]);
    assert!(parse_template("{x}").is_err());
    assert!(parse_template("{n").is_err());
    assert!(parse_template("a}b").is_err());

    let t = parse_template("cgw-{n}-{ip}").unwrap();
    assert_eq!(expand(&t, 0), "cgw-0-11.0.0.1");
    assert_eq!(expand(&t, 253), "cgw-253-11.0.0.254");
    assert_eq!(expand(&t, 254), "cgw-254-11.0.1.1");
    assert_eq!(expand(&t, 12345), "cgw-12345-11.0.48.154");
}

#[test]
fn ip_for_is_unique_and_never_network_or_broadcast() {
    let mut seen = std::collections::HashSet::new();
    for n in 0..200_000u64 {
        let ip = ip_for(n);
        let o = ip.octets();
        assert_eq!(o[0], 11);
        assert!(o[3] != 0 && o[3] != 255, "{ip}");
        assert!(seen.insert(ip), "duplicate {ip} at {n}");
    }
    assert_eq!(ip_for(254 * 65536 - 1), Ipv4Addr::new(11, 255, 255, 254));
}

#[test]
fn cli_param_parsing() {
    assert_eq!(parse_param("RegionId=cn-hangzhou").unwrap(), ("RegionId".into(), "cn-hangzhou".into()));
    assert_eq!(parse_param("A=b=c").unwrap(), ("A".into(), "b=c".into()));
    assert_eq!(parse_param("Empty=").unwrap(), ("Empty".into(), "".into()));
    assert!(parse_param("novalue").is_err());
    assert!(parse_param("=x").is_err());
    assert_eq!(parse_template_param("Name=cgw{n}").unwrap().1, vec![Seg::Lit("cgw".into()), Seg::N]);
}

#[test]
fn durations() {
    assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
    assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
    assert!(parse_duration("ten").is_err());
    assert!(parse_duration("5h").is_err());
    assert!(parse_bench_duration("300s").is_ok());
    assert!(parse_bench_duration("301s").is_err());
    assert!(parse_bench_duration("0s").is_err());
}

#[test]
fn endpoint_parsing() {
    let t = parse_endpoint("http://127.0.0.1:8080").unwrap();
    assert_eq!((t.addr.as_str(), t.host.to_str().unwrap(), t.path.as_str()), ("127.0.0.1:8080", "127.0.0.1:8080", "/"));
    let t = parse_endpoint("http://localhost").unwrap();
    assert_eq!(t.addr, "localhost:80");
    let t = parse_endpoint("https://127.0.0.1:8443").unwrap();
    assert_eq!(t.addr, "127.0.0.1:8443");
    assert!(t.tls_name.is_some());
    assert!(parse_endpoint("ftp://127.0.0.1").is_err());
    assert!(parse_endpoint("127.0.0.1:8080").is_err());
}

fn plan(method: HttpMethod) -> Plan {
    Plan {
        method,
        action: "CreateCustomerGateway".into(),
        api_version: "2016-04-28".into(),
        access_key_id: "ak-bench".into(),
        secret: "bench~secret".into(),
        params: vec![
            ("RegionId".into(), Value::Literal("cn-hangzhou".into())),
            ("Format".into(), Value::Literal("json".into())),
            ("IpAddress".into(), Value::Template(parse_template("{ip}").unwrap())),
            ("Name".into(), Value::Template(parse_template("cgw {n}*").unwrap())),
        ],
    }
}

#[test]
fn params_for_overrides_and_expands() {
    let p = plan(HttpMethod::Post).params_for(7, "nonce-1", "2026-11-22T01:46:34Z");
    let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("Format"), Some("json")); // user value replaced the common one
    assert_eq!(p.iter().filter(|(n, _)| n == "Format").count(), 1);
    assert_eq!(get("IpAddress"), Some("11.0.0.8"));
    assert_eq!(get("Name"), Some("cgw 7*"));
    assert_eq!(get("SignatureNonce"), Some("nonce-1"));
    assert_eq!(get("AccessKeyId"), Some("ak-bench"));
    assert_eq!(get("Action"), Some("CreateCustomerGateway"));
}

/// What the bench sends must pass the server's own verification, both as a GET query and a POST body.
#[test]
fn encoded_requests_verify_with_the_server_code() {
    let headers = hyper::HeaderMap::new();
    for method in [HttpMethod::Get, HttpMethod::Post] {
        let plan = plan(method);
        let ts = timestamp_now();
        let wire = plan.encoded_request(42, "abcdef0123456789", &ts);
        let decoded = decode_form(wire.as_bytes());
        let (query, body): (Vec<_>, Vec<_>) = match method {
            HttpMethod::Get => (decoded, vec![]),
            HttpMethod::Post => (vec![], decoded),
        };
        let parts = SignedParts {
            method: method.as_str(),
            path: "/",
            query: &query,
            body_params: &body,
            headers: &headers,
            body: wire.as_bytes(),
        };
        let c = claim(&parts).unwrap();
        assert_eq!(c.access_key_id, "ak-bench");
        assert_eq!(c.nonce, "abcdef0123456789");
        assert_eq!(c.timestamp, ts);
        gatehouse::api::auth::check_timestamp(&c, time::OffsetDateTime::now_utc()).unwrap();
        verify(&c, &parts, "bench~secret").unwrap();
        assert!(verify(&c, &parts, "other").is_err());
    }
}

#[test]
fn timestamp_format() {
    let ts = timestamp_now();
    assert_eq!(ts.len(), "2026-11-22T01:46:34Z".len());
    assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T');
}

#[test]
fn clap_definition_is_valid() {
    use clap::CommandFactory;
    Args::command().debug_assert();
    let a = Args::try_parse_from([
        "gatehouse-bench",
        "--access-key-id",
        "ID",
        "--access-key-secret",
        "S",
        "--action",
        "DescribeVpnGateway",
        "--param",
        "VpnGatewayId=vpn-xxx",
        "--param",
        "RegionId=cn-hangzhou",
        "--param-template",
        "Name=cgw{n}",
        "--connections",
        "4",
        "--duration",
        "2s",
        "--method",
        "get",
        "--param-file",
        "VpnGatewayId=gateways.txt",
        "--wait-active",
        "--json",
    ])
    .unwrap();
    assert_eq!(a.param_files, [("VpnGatewayId".to_owned(), "gateways.txt".to_owned())]);
    assert!(a.wait_active);
    assert_eq!(a.method, HttpMethod::Get);
    assert_eq!(a.params.len(), 2);
    assert_eq!(a.duration, Duration::from_secs(2));
    assert!(a.json);
}

#[test]
fn value_lists() {
    assert_eq!(parse_value_list("vpn-a\nvpn-b\r\n\nvpn-c\n").unwrap(), vec!["vpn-a", "vpn-b", "vpn-c"]);
    assert_eq!(parse_value_list("a b, c").unwrap(), vec!["a b, c"]); // a line is one value, as is
    assert!(parse_value_list("").is_err());
    assert!(parse_value_list("\n\r\n").is_err());
    let list = Value::List(vec!["a".into(), "b".into(), "c".into()]);
    assert_eq!((0..7).map(|n| list.at(n)).collect::<Vec<_>>(), ["a", "b", "c", "a", "b", "c", "a"]);
    assert_eq!(Value::Literal("x".into()).at(9), "x");
    assert_eq!(Value::Template(parse_template("r{n}").unwrap()).at(9), "r9");
}

#[test]
fn values_split_between_connections() {
    let list = |len: usize| Value::List((0..len).map(|i| format!("vpn-{i}")).collect());
    assert!(list(100).splits_between(20));
    assert!(list(100).splits_between(1));
    assert!(!list(100).splits_between(30));
    assert!(!list(3).splits_between(6));
    assert!(Value::Literal("vpn-a".into()).splits_between(1));
    assert!(!Value::Literal("vpn-a".into()).splits_between(2));
    assert!(Value::Template(parse_template("vpn-{n}").unwrap()).splits_between(8));
    assert!(!Value::Template(parse_template("vpn-a").unwrap()).splits_between(8));
}

/// Under --wait-active, connection i of C gets exactly the requests n ≡ i (mod C), so with a list
/// whose length is a multiple of C no two connections share a value, and --requests N sends 0..N.
#[test]
fn strided_requests_partition_the_values() {
    let (c, n_requests) = (20u64, 1000u64);
    let gateways = Value::List((0..100).map(|i| format!("vpn-{i}")).collect());
    let mut owner = std::collections::HashMap::new();
    let mut all = Vec::new();
    for i in 0..c {
        for seq in (0..).map(|k| strided_seq(i, k, c)).take_while(|&s| s < n_requests) {
            all.push(seq);
            let prev = owner.insert(gateways.at(seq), i);
            assert!(prev.is_none() || prev == Some(i), "{} used by {prev:?} and {i}", gateways.at(seq));
        }
    }
    all.sort_unstable();
    assert_eq!(all, (0..n_requests).collect::<Vec<_>>());
    assert_eq!(owner.len(), 100);
}

#[test]
fn poll_plan_asks_for_the_same_gateway() {
    let mut create = plan(HttpMethod::Post);
    create.action = "CreateVpnConnection".into();
    assert!(create.poll_plan(1).err().unwrap().contains("VpnGatewayId"));
    create.params.push(("VpnGatewayId".into(), Value::List(vec!["vpn-a".into(), "vpn-b".into()])));
    assert!(create.poll_plan(3).is_err());
    let poll = create.poll_plan(2).unwrap();
    assert_eq!(poll.action, "DescribeVpnGateway");
    let names: Vec<&str> = poll.params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["RegionId", "VpnGatewayId"]);
    for n in 0..4 {
        let p = poll.params_for(n, "nonce", "2026-11-22T01:46:34Z");
        let get = |k: &str| p.iter().find(|(name, _)| name == k).map(|(_, v)| v.clone());
        assert_eq!(get("VpnGatewayId"), Some(create.value("VpnGatewayId").unwrap().at(n)));
        assert_eq!(get("Format").as_deref(), Some("JSON"));
        assert_eq!(get("RegionId").as_deref(), Some("cn-hangzhou"));
    }
}

#[test]
fn answers_fields_and_codes() {
    let gw = br#"{"RequestId":"r","VpnGatewayId":"vpn-a","Status":"updating"}"#;
    assert_eq!(json_field(gw, "Status").as_deref(), Some("updating"));
    assert_eq!(json_field(gw, "Missing"), None);
    assert_eq!(json_field(b"<xml/>", "Status"), None);
    let err = br#"{"RequestId":"r","HostId":"h","Code":"VpnGateway.Configuring","Message":"m"}"#;
    assert_eq!(error_code(StatusCode::BAD_REQUEST, err), "VpnGateway.Configuring");
    assert_eq!(error_code(StatusCode::BAD_GATEWAY, b"oops"), "HTTP 502");
}

#[test]
fn summaries() {
    assert_eq!(Summary::of(vec![]), Summary { mean: None, p50: None, p90: None, p99: None, max: None });
    let s = Summary::of((1..=100).rev().map(|ms| ms * 1000).collect());
    assert_eq!((s.mean, s.p50, s.p90, s.p99, s.max), (Some(50.5), Some(50.0), Some(90.0), Some(99.0), Some(100.0)));
    assert_eq!(s.text(), "mean 50.500  p50 50.000  p90 90.000  p99 99.000  max 100.000");
    assert_eq!(s.json()["p99"], 99.0);
}

#[test]
fn user_params_reads_files_and_refuses_repeats() {
    let dir = std::env::temp_dir().join(format!("gatehouse-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gateways");
    std::fs::write(&file, "vpn-a\nvpn-b\n").unwrap();
    let path = file.to_str().unwrap();
    let parse = |extra: &[&str]| {
        let mut argv = vec!["gatehouse-bench", "--access-key-id", "I", "--access-key-secret", "S", "--action", "A"];
        argv.extend_from_slice(extra);
        user_params(&Args::try_parse_from(argv).unwrap())
    };
    let p = parse(&["--param", "RegionId=r", "--param-file", &format!("VpnGatewayId={path}")]).unwrap();
    assert_eq!(p[1], ("VpnGatewayId".into(), Value::List(vec!["vpn-a".into(), "vpn-b".into()])));
    let repeated = parse(&["--param", "VpnGatewayId=x", "--param-file", &format!("VpnGatewayId={path}")]);
    assert!(repeated.unwrap_err().contains("more than once"));
    assert!(parse(&["--param-template", "Signature={n}"]).is_err());
    assert!(parse(&["--param-file", "X=/nonexistent/gatehouse-bench"]).unwrap_err().contains("X=/nonexistent"));
    std::fs::remove_dir_all(&dir).unwrap();
}
