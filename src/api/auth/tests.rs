use super::*;
use axum::http::HeaderValue;

use crate::api::test_captures::{capture_files, load_capture, CAPTURE_AK, CAPTURE_SECRET};

const CAPTURE_DIRS: [&str; 5] = ["py_classic", "py_tea", "py_tea_v2", "node_popcore", "node_tea"];

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn parts<'a>(
    method: &'a str,
    query: &'a [(String, String)],
    body_params: &'a [(String, String)],
    headers: &'a HeaderMap,
    body: &'a [u8],
) -> SignedParts<'a> {
    SignedParts { method, path: "/", query, body_params, headers, body }
}

// ----- encoding -----

#[test]
fn percent_encode_rules() {
    assert_eq!(percent_encode("AZaz09-_.~"), "AZaz09-_.~");
    assert_eq!(percent_encode("a b*+/:=&"), "a%20b%2A%2B%2F%3A%3D%26");
    assert_eq!(percent_encode("网"), "%E7%BD%91");
    assert_eq!(percent_encode("!'()%"), "%21%27%28%29%25");
    assert_eq!(percent_encode(""), "");
}

#[test]
fn decode_form_rules() {
    assert_eq!(
        decode_form(b"a=1&SignatureType=&b=x+y%20z&c&d=%2B%7E~*"),
        pairs(&[("a", "1"), ("SignatureType", ""), ("b", "x y z"), ("c", ""), ("d", "+~~*")])
    );
    assert!(decode_form(b"").is_empty());
    assert_eq!(decode_form(b"k=%E7%BD%91"), pairs(&[("k", "网")]));
}

#[test]
fn merge_params_body_wins() {
    let q = pairs(&[("A", "1"), ("B", "q"), ("A", "2")]);
    let b = pairs(&[("B", "body"), ("C", "3")]);
    assert_eq!(merge_params(&q, &b), pairs(&[("A", "2"), ("B", "body"), ("C", "3")]));
}

// ----- protocol.md §9.1 vectors -----

fn vector_a() -> Vec<(String, String)> {
    pairs(&[
        ("Action", "CreateVpnGateway"),
        ("Timestamp", "2016-05-23T12:46:24Z"),
        ("Format", "XML"),
        ("AccessKeyId", "testid"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0axxxxxxxx"),
        ("Version", "2014-05-26"),
        ("SignatureVersion", "1.0"),
    ])
}

fn vector_b() -> Vec<(String, String)> {
    pairs(&[
        ("Action", "CreateVpnGateway"),
        ("Timestamp", "2016-05-23T12:46:24Z"),
        ("Format", "JSON"),
        ("AccessKeyId", "testid"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0axxxxxxxx"),
        ("Version", "2016-04-28"),
        ("SignatureVersion", "1.0"),
        ("RegionId", "cn-hangzhou"),
        ("VpcId", "vpc-bp1ub1yt9cvakoelj****"),
        ("Bandwidth", "5"),
        ("Name", "my vpn 网关"),
    ])
}

#[test]
fn vector_a_signature() {
    let sts = rpc_v1_string_to_sign("GET", &vector_a());
    assert_eq!(
        sts,
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DCreateVpnGateway%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0axxxxxxxx%26SignatureVersion%3D1.0%26Timestamp%3D2016-05-23T12%253A46%253A24Z%26Version%3D2014-05-26"
    );
    assert_eq!(rpc_v1_signature(&sts, "testsecret"), "mb833gwv9sOvU6AsuC/MofNXDzs=");
}

#[test]
fn vector_b_get_and_post() {
    let get = rpc_v1_string_to_sign("GET", &vector_b());
    assert_eq!(
        get,
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DCreateVpnGateway%26Bandwidth%3D5%26Format%3DJSON%26Name%3Dmy%2520vpn%2520%25E7%25BD%2591%25E5%2585%25B3%26RegionId%3Dcn-hangzhou%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0axxxxxxxx%26SignatureVersion%3D1.0%26Timestamp%3D2016-05-23T12%253A46%253A24Z%26Version%3D2016-04-28%26VpcId%3Dvpc-bp1ub1yt9cvakoelj%252A%252A%252A%252A"
    );
    assert_eq!(rpc_v1_signature(&get, "testsecret"), "154RmvIceeELX92LyToanbGaE3k=");
    let post = rpc_v1_string_to_sign("POST", &vector_b());
    assert!(post.starts_with("POST&%2F&AccessKeyId%3Dtestid%26"));
    assert_eq!(rpc_v1_signature(&post, "testsecret"), "cKuTGIX4QMmfTBjneFh6AV7bZbM=");
}

#[test]
fn vector_b_verifies_from_a_wire_query_and_as_post_body() {
    // GET: the vector's parameters on the wire the way a sloppy client might encode them ('+' for
    // space, raw '*', unsorted), with the signature appended percent-encoded.
    let mut wire = String::from(
        "Name=my+vpn+%E7%BD%91%E5%85%B3&VpcId=vpc-bp1ub1yt9cvakoelj****&Action=CreateVpnGateway&Timestamp=2016-05-23T12%3A46%3A24Z&Format=JSON&AccessKeyId=testid&SignatureMethod=HMAC-SHA1&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0axxxxxxxx&Version=2016-04-28&SignatureVersion=1.0&RegionId=cn-hangzhou&Bandwidth=5",
    );
    wire.push_str("&Signature=");
    wire.push_str(&percent_encode("154RmvIceeELX92LyToanbGaE3k="));
    let query = decode_form(wire.as_bytes());
    let headers = HeaderMap::new();
    let p = parts("GET", &query, &[], &headers, b"");
    let c = claim(&p).unwrap();
    assert_eq!(c.scheme, Scheme::RpcV1);
    assert_eq!(c.access_key_id, "testid");
    assert_eq!(c.nonce, "3ee8c1b8-83d3-44af-a94f-4e0axxxxxxxx");
    assert_eq!(c.timestamp, "2016-05-23T12:46:24Z");
    verify(&c, &p, "testsecret").unwrap();
    assert_eq!(verify(&c, &p, "wrong").unwrap_err().code, "SignatureDoesNotMatch");
    // Same request as GET but signed for POST must fail.
    let p_post = parts("POST", &query, &[], &headers, b"");
    assert_eq!(verify(&c, &p_post, "testsecret").unwrap_err().code, "SignatureDoesNotMatch");

    // POST: half the parameters in the query, the rest (with the POST signature) in the body.
    let mut params = vector_b();
    let body_params = params.split_off(6);
    let mut body_params = body_params;
    body_params.push(("Signature".into(), "cKuTGIX4QMmfTBjneFh6AV7bZbM=".into()));
    let p = parts("POST", &params, &body_params, &headers, b"");
    let c = claim(&p).unwrap();
    verify(&c, &p, "testsecret").unwrap();
}

#[test]
fn unencoded_plus_in_signature_is_tolerated() {
    // A signature containing '+' sent raw decodes to a space.
    let mut params = vector_a();
    let mut i = 0u32;
    let sig = loop {
        params.retain(|(k, _)| k != "SignatureNonce");
        params.push(("SignatureNonce".into(), format!("nonce-{i}")));
        let s = rpc_v1_signature(&rpc_v1_string_to_sign("GET", &params), "testsecret");
        if s.contains('+') {
            break s;
        }
        i += 1;
    };
    let mut wire: String =
        params.iter().map(|(k, v)| format!("{}={}&", percent_encode(k), percent_encode(v))).collect();
    wire.push_str("Signature=");
    wire.push_str(&sig); // raw, '+' not escaped
    let query = decode_form(wire.as_bytes());
    let headers = HeaderMap::new();
    let p = parts("GET", &query, &[], &headers, b"");
    let c = claim(&p).unwrap();
    assert!(c.signature.contains(' '));
    verify(&c, &p, "testsecret").unwrap();
}

#[test]
fn signature_mismatch_message_shape() {
    let mut q = vector_a();
    q.push(("Signature".into(), "AAAAAAAAAAAAAAAAAAAAAAAAAAA=".into()));
    let headers = HeaderMap::new();
    let p = parts("GET", &q, &[], &headers, b"");
    let c = claim(&p).unwrap();
    let e = verify(&c, &p, "testsecret").unwrap_err();
    assert_eq!(e.status, 400);
    assert_eq!(e.code, "SignatureDoesNotMatch");
    let sts = rpc_v1_string_to_sign("GET", &vector_a());
    assert_eq!(
        e.message,
        format!("Specified signature is not matched with our calculation. server string to sign is:{sts}")
    );
    // The classic SDK does Message.split(':')[1] and compares it with its own string to sign.
    assert_eq!(e.message.split(':').nth(1).unwrap(), sts);
}

// ----- timestamp -----

fn claim_with_ts(ts: &str) -> Claim {
    Claim {
        scheme: Scheme::RpcV1,
        access_key_id: "ak".into(),
        nonce: "n".into(),
        timestamp: ts.into(),
        signature: "s".into(),
        signed_headers: Vec::new(),
    }
}

#[test]
fn timestamp_skew() {
    let now = time::macros::datetime!(2026-11-22 01:46:34 UTC);
    for ok in [
        "2026-11-22T01:46:34Z",
        "2026-11-22T02:01:34Z", // +15 min exactly
        "2026-11-22T01:31:34Z", // -15 min exactly
        "2026-11-22T01:40:00.123Z",
        "2026-11-22T09:46:34+08:00",
    ] {
        check_timestamp(&claim_with_ts(ok), now).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for expired in ["2026-11-22T02:01:35Z", "2026-11-22T01:31:33Z", "2016-05-23T12:46:24Z", "2099-01-01T00:00:00Z"] {
        let e = check_timestamp(&claim_with_ts(expired), now).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "InvalidTimeStamp.Expired"), "{expired}");
        assert_eq!(e.message, "Specified time stamp or date value is expired.");
    }
    for bad in ["", "yesterday", "2026-11-22 01:46:34", "2026-11-22T01:46:34", "1763776000"] {
        let e = check_timestamp(&claim_with_ts(bad), now).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "IllegalTimestamp"), "{bad:?}");
        assert_eq!(
            e.message,
            "The input parameter \"Timestamp\" that is mandatory for processing this request is not supplied."
        );
    }
}

// ----- claim() errors -----

fn claim_err(query: &[(String, String)], headers: &HeaderMap) -> ApiError {
    claim(&parts("GET", query, &[], headers, b"")).unwrap_err()
}

fn without(params: &[(String, String)], name: &str) -> Vec<(String, String)> {
    params.iter().filter(|(k, _)| k != name).cloned().collect()
}

fn with(params: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    let mut p = without(params, name);
    p.push((name.into(), value.into()));
    p
}

#[test]
fn claim_rpc_v1_errors() {
    let h = HeaderMap::new();
    let full = with(&vector_a(), "Signature", "mb833gwv9sOvU6AsuC/MofNXDzs=");
    claim(&parts("GET", &full, &[], &h, b"")).unwrap();

    let e = claim_err(&[], &h);
    assert_eq!((e.status, e.code.as_str()), (400, "MissingAccessKeyId"));
    assert_eq!(
        e.message,
        "The input parameter \"AccessKeyId\" that is mandatory for processing this request is not supplied."
    );
    let e = claim_err(&without(&full, "AccessKeyId"), &h);
    assert_eq!((e.status, e.code.as_str()), (400, "MissingAccessKeyId"));
    let e = claim_err(&with(&full, "AccessKeyId", ""), &h);
    assert_eq!(e.code, "MissingAccessKeyId");

    let e = claim_err(&without(&full, "Signature"), &h);
    assert_eq!((e.status, e.code.as_str()), (400, "MissingSignature"));
    let e = claim_err(&without(&full, "SignatureNonce"), &h);
    assert_eq!((e.status, e.code.as_str()), (400, "MissingSignatureNonce"));
    let e = claim_err(&without(&full, "Timestamp"), &h);
    assert_eq!((e.status, e.code.as_str()), (400, "MissingTimestamp"));
    assert_eq!(
        e.message,
        "The input parameter \"Timestamp\" that is mandatory for processing this request is not supplied."
    );

    let e = claim_err(&with(&full, "SignatureMethod", "HMAC-SHA256"), &h);
    assert_eq!((e.status, e.code.as_str()), (400, "InvalidSignatureMethod"));
    let e = claim_err(&with(&full, "SignatureVersion", "2.0"), &h);
    assert_eq!((e.status, e.code.as_str()), (400, "InvalidSignatureVersion"));
    // Absent SignatureMethod / SignatureVersion are accepted.
    claim(&parts("GET", &without(&without(&full, "SignatureMethod"), "SignatureVersion"), &[], &h, b"")).unwrap();

    // Parameters may come from the body alone (pop-core POST).
    let c = claim(&parts("POST", &[], &full, &h, b"")).unwrap();
    assert_eq!(c.access_key_id, "testid");

    // A foreign Authorization scheme does not hide the RPC parameters.
    let mut h2 = HeaderMap::new();
    h2.insert("authorization", HeaderValue::from_static("Basic Zm9vOmJhcg=="));
    assert_eq!(claim(&parts("GET", &full, &[], &h2, b"")).unwrap().scheme, Scheme::RpcV1);
    let e = claim_err(&[], &h2);
    assert_eq!(e.code, "MissingAccessKeyId");
}

fn acs3_headers(auth: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("127.0.0.1:8080"));
    h.insert("x-acs-action", HeaderValue::from_static("DescribeVpnGateway"));
    h.insert("x-acs-version", HeaderValue::from_static("2016-04-28"));
    h.insert("x-acs-date", HeaderValue::from_static("2026-11-22T01:46:34Z"));
    h.insert("x-acs-signature-nonce", HeaderValue::from_static("abc123"));
    h.insert(
        "x-acs-content-sha256",
        HeaderValue::from_static("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    );
    h.insert("authorization", HeaderValue::from_str(auth).unwrap());
    h
}

const ALL_SIGNED: &str = "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version";

/// Signs `headers` (already holding a placeholder Authorization) the way a client would.
fn acs3_sign(method: &str, query: &[(String, String)], headers: &mut HeaderMap, body: &[u8], secret: &str) {
    let signed: Vec<String> = ALL_SIGNED.split(';').map(String::from).collect();
    let hash = headers.get("x-acs-content-sha256").unwrap().to_str().unwrap().to_owned();
    let sig = {
        let p = parts(method, query, &[], headers, body);
        acs3_signature(&acs3_string_to_sign(&acs3_canonical_request(&p, &signed, &hash)), secret)
    };
    let auth = format!("ACS3-HMAC-SHA256 Credential=ak1,SignedHeaders={ALL_SIGNED},Signature={sig}");
    headers.insert("authorization", HeaderValue::from_str(&auth).unwrap());
}

#[test]
fn claim_acs3_and_errors() {
    let sig = "0".repeat(64);
    let good = format!("ACS3-HMAC-SHA256 Credential=ak1,SignedHeaders={ALL_SIGNED},Signature={sig}");
    let h = acs3_headers(&good);
    let c = claim(&parts("POST", &[], &[], &h, b"")).unwrap();
    assert_eq!(c.scheme, Scheme::Acs3);
    assert_eq!(c.access_key_id, "ak1");
    assert_eq!(c.nonce, "abc123");
    assert_eq!(c.timestamp, "2026-11-22T01:46:34Z");
    assert_eq!(c.signature, sig);
    assert_eq!(c.signed_headers.len(), 6);

    // ACS3 wins over RPC parameters.
    let q = with(&vector_a(), "Signature", "x");
    assert_eq!(claim(&parts("POST", &q, &[], &h, b"")).unwrap().scheme, Scheme::Acs3);

    for malformed in [
        "ACS3-HMAC-SHA256".to_string(),
        "ACS3-HMAC-SHA256 ".to_string(),
        format!("ACS3-HMAC-SHA256 Credential=ak1,Signature={sig}"),
        format!("ACS3-HMAC-SHA256 Credential=ak1,SignedHeaders={ALL_SIGNED}"),
        format!("ACS3-HMAC-SHA256 Credential=ak1 SignedHeaders={ALL_SIGNED} Signature={sig}"),
        format!("ACS3-HMAC-SHA256 Credential=ak1,SignedHeaders={ALL_SIGNED},Signature="),
        format!("ACS3-HMAC-SHA256 Credential=ak1,SignedHeaders=host;;x-acs-date,Signature={sig}"),
        format!("ACS3-HMAC-SHA256 Credential=ak1,SignedHeaders={ALL_SIGNED},Signature={sig},Bogus=1"),
        format!("ACS3-HMAC-SHA256 Credential=ak1,Credential=ak2,SignedHeaders={ALL_SIGNED},Signature={sig}"),
        // Replay-relevant headers present but not signed.
        format!("ACS3-HMAC-SHA256 Credential=ak1,SignedHeaders=host;x-acs-action;x-acs-version;x-acs-signature-nonce,Signature={sig}"),
        format!("ACS3-HMAC-SHA256 Credential=ak1,SignedHeaders=host;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature={sig}"),
    ] {
        let e = claim_err(&[], &acs3_headers(&malformed));
        assert_eq!((e.status, e.code.as_str()), (400, "IncompleteSignature"), "{malformed}");
    }

    let e = claim_err(&[], &acs3_headers(&format!("ACS3-HMAC-SM3 Credential=ak1,SignedHeaders=host,Signature={sig}")));
    assert_eq!((e.status, e.code.as_str()), (400, "InvalidSignatureMethod"));

    let e = claim_err(
        &[],
        &acs3_headers(&format!("ACS3-HMAC-SHA256 Credential=,SignedHeaders={ALL_SIGNED},Signature={sig}")),
    );
    assert_eq!((e.status, e.code.as_str()), (400, "MissingAccessKeyId"));

    let mut h = acs3_headers(&good);
    h.remove("x-acs-signature-nonce");
    let e = claim_err(&[], &h);
    assert_eq!((e.status, e.code.as_str()), (400, "MissingSignatureNonce"));

    let mut h = acs3_headers(&good);
    h.remove("x-acs-date");
    let e = claim_err(&[], &h);
    assert_eq!((e.status, e.code.as_str()), (400, "MissingTimestamp"));
}

#[test]
fn acs3_roundtrip_body_hash_and_tampering() {
    let query = pairs(&[("VpnGatewayId", "vpn-1"), ("RegionId", "cn-hangzhou"), ("Name", "a b*")]);
    let body = b"TunnelOptionsSpecification.1.Role=master";
    let mut h = acs3_headers("placeholder");
    h.insert("x-acs-content-sha256", HeaderValue::from_str(&hex::encode(Sha256::digest(body))).unwrap());
    acs3_sign("POST", &query, &mut h, body, "s3cret");
    let bp = decode_form(body);
    let p = parts("POST", &query, &bp, &h, body);
    let c = claim(&p).unwrap();
    verify(&c, &p, "s3cret").unwrap();

    // Wrong secret.
    let e = verify(&c, &p, "other").unwrap_err();
    assert_eq!(e.code, "SignatureDoesNotMatch");
    assert!(e.message.starts_with(
        "Specified signature is not matched with our calculation. server string to sign is:ACS3-HMAC-SHA256\n"
    ));
    // Body changed (hash header no longer matches).
    let p2 = parts("POST", &query, &bp, &h, b"TunnelOptionsSpecification.1.Role=slave");
    assert_eq!(verify(&c, &p2, "s3cret").unwrap_err().code, "SignatureDoesNotMatch");
    // Query changed.
    let q2 = with(&query, "VpnGatewayId", "vpn-2");
    let p3 = parts("POST", &q2, &bp, &h, body);
    assert_eq!(verify(&c, &p3, "s3cret").unwrap_err().code, "SignatureDoesNotMatch");
    // Signed header changed.
    let mut h4 = h.clone();
    h4.insert("x-acs-action", HeaderValue::from_static("DeleteVpnGateway"));
    let p4 = parts("POST", &query, &bp, &h4, body);
    assert_eq!(verify(&c, &p4, "s3cret").unwrap_err().code, "SignatureDoesNotMatch");
    // Upper-case hex signature is accepted.
    let mut c5 = c.clone();
    c5.signature = c5.signature.to_ascii_uppercase();
    verify(&c5, &p, "s3cret").unwrap();
}

// ----- captures -----

#[test]
fn all_captures_verify() {
    let files = capture_files(&CAPTURE_DIRS);
    assert!(files.len() >= 70, "expected the full capture set, found {}", files.len());
    let (mut good, mut bad, mut rpc, mut acs3) = (0, 0, 0, 0);
    for path in &files {
        let cap = load_capture(path);
        let name = &cap.name;
        let p = parts(&cap.method, &cap.query, &cap.body_params, &cap.headers, &cap.body);
        let c = claim(&p).unwrap_or_else(|e| panic!("{name}: claim failed: {e}"));
        assert_eq!(c.access_key_id, CAPTURE_AK, "{name}");
        assert!(!c.nonce.is_empty() && !c.timestamp.is_empty(), "{name}");
        // The capture timestamps are old; only check they parse (i.e. not IllegalTimestamp).
        let ts_err = check_timestamp(&c, time::OffsetDateTime::now_utc()).err();
        assert!(ts_err.as_ref().is_none_or(|e| e.code == "InvalidTimeStamp.Expired"), "{name}: {ts_err:?}");

        let expected_scheme = match cap.sig["scheme"].as_str() {
            Some("rpc-v1") => Scheme::RpcV1,
            Some("acs3") => Scheme::Acs3,
            other => panic!("{name}: unknown scheme {other:?}"),
        };
        assert_eq!(c.scheme, expected_scheme, "{name}");

        // Our string to sign must match the capture's.
        let sts = match c.scheme {
            Scheme::RpcV1 => {
                rpc += 1;
                rpc_v1_server_string_to_sign(&p)
            }
            Scheme::Acs3 => {
                acs3 += 1;
                let hash = cap.headers.get("x-acs-content-sha256").unwrap().to_str().unwrap();
                assert_eq!(hash, hex::encode(Sha256::digest(&cap.body)), "{name}: body hash");
                let canonical = acs3_canonical_request(&p, &c.signed_headers, hash);
                if let Some(want) = cap.sig["canonical_request"].as_str() {
                    assert_eq!(String::from_utf8(canonical.clone()).unwrap(), want, "{name}: canonical request");
                }
                if let Some(want) = cap.sig["signed_headers"].as_array() {
                    let want: Vec<&str> = want.iter().map(|h| h.as_str().unwrap()).collect();
                    assert_eq!(c.signed_headers, want, "{name}: signed headers");
                }
                acs3_string_to_sign(&canonical)
            }
        };
        if let Some(want) = cap.sig["string_to_sign"].as_str() {
            assert_eq!(sts, want, "{name}: string to sign");
        }

        let result = verify(&c, &p, CAPTURE_SECRET);
        if name.ends_with("_BADSIG.json") {
            bad += 1;
            let e = result.expect_err(name);
            assert_eq!((e.status, e.code.as_str()), (400, "SignatureDoesNotMatch"), "{name}");
            assert_eq!(e.message, format!("{SIGNATURE_MISMATCH_PREFIX}{sts}"), "{name}");
        } else {
            good += 1;
            result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(cap.sig["ok"].as_bool(), Some(true), "{name}");
            // And with a wrong secret the same request must fail.
            let e = verify(&c, &p, "not-the-secret").unwrap_err();
            assert_eq!(e.code, "SignatureDoesNotMatch", "{name}");
        }
    }
    assert_eq!(bad, 4, "one _BADSIG capture per signing client family");
    assert!(good > 0 && rpc > 0 && acs3 > 0);
}
