//! Tencent Cloud API 2.0 request signatures, pure functions only (no I/O, no credential store).
//!
//! The signed set is every parameter of the request (query ∪ form body, the body winning on a
//! name clash) except `Signature`; a POST leaves out values starting with `@` (the legacy
//! client's file-upload convention), and the pipeline drops them from what actions read too.
//! Names are signed with `_` written as `.` (the client sends `a_b` and signs `a.b`); values are
//! signed raw, not percent-encoded:
//!
//! ```text
//! StringToSign = METHOD + Host + "/v2/index.php" + "?" + join("&", sorted(name=value))
//! Signature    = base64(HMAC-SHA1 or HMAC-SHA256(SecretKey, StringToSign))
//! ```
//!
//! `Host` is the request's Host header verbatim (`127.0.0.1:8443`, as the client was configured).

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::TencentError;

/// The one path of the v2 API.
pub const PATH: &str = "/v2/index.php";
/// Allowed clock skew, both directions: Tencent's five minutes.
pub const MAX_SKEW_S: i64 = 5 * 60;

crate::wire_enum!(
    /// `SignatureMethod`: HmacSHA1 when absent.
    SignatureMethod {
        #[default]
        HmacSha1 = "HmacSHA1",
        HmacSha256 = "HmacSHA256",
    }
);

/// What a request claims about its signer, read before the secret is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub secret_id: String,
    /// `Nonce`: a positive integer, spent once per key.
    pub nonce: u64,
    /// `Timestamp`: Unix seconds.
    pub timestamp: i64,
    pub method: SignatureMethod,
    /// As sent (base64).
    pub signature: String,
}

fn value<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// A positive integer parameter, or the documented parameter error.
fn positive(params: &[(String, String)], name: &str) -> Result<u64, TencentError> {
    let v = value(params, name).ok_or_else(|| TencentError::missing_parameter(name))?;
    v.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| TencentError::invalid_parameter(name, format!("{v:?} is not a positive integer")))
}

/// Reads the common parameters of a signed request: `SecretId`, `Signature`, `Nonce`,
/// `Timestamp` and `SignatureMethod`.
pub fn claim(params: &[(String, String)]) -> Result<Claim, TencentError> {
    let secret_id = value(params, "SecretId").ok_or_else(|| TencentError::missing_parameter("SecretId"))?;
    let signature = value(params, "Signature").ok_or_else(|| TencentError::missing_parameter("Signature"))?;
    let method = match value(params, "SignatureMethod") {
        None => SignatureMethod::HmacSha1,
        Some(m) => SignatureMethod::from_wire(m).ok_or_else(|| {
            TencentError::invalid_parameter(
                "SignatureMethod",
                format!("{m:?} is not one of {}", SignatureMethod::NAMES.join(", ")),
            )
        })?,
    };
    let nonce = positive(params, "Nonce")?;
    let timestamp = positive(params, "Timestamp")?;
    Ok(Claim {
        secret_id: secret_id.to_owned(),
        nonce,
        timestamp: i64::try_from(timestamp).unwrap_or(i64::MAX),
        method,
        signature: signature.to_owned(),
    })
}

/// Refuses a `Timestamp` more than five minutes away from `now` (Unix seconds).
pub fn check_timestamp(claim: &Claim, now: i64) -> Result<(), TencentError> {
    if claim.timestamp.abs_diff(now) > MAX_SKEW_S as u64 {
        return Err(TencentError::expired());
    }
    Ok(())
}

/// The parameters a POST may not carry signed (see the module doc); kept on a GET.
pub fn signable(method: &str, name_value: &(String, String)) -> bool {
    method != "POST" || !name_value.1.starts_with('@')
}

/// The server's string to sign for `params` (`Signature` and unsignable values left out).
pub fn string_to_sign(method: &str, host: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, &str)> = params
        .iter()
        .filter(|p| p.0 != "Signature" && signable(method, p))
        .map(|(k, v)| (k.replace('_', "."), v.as_str()))
        .collect();
    pairs.sort();
    let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{method}{host}{PATH}?{}", joined.join("&"))
}

/// base64(HMAC(secret, string_to_sign)) with the claimed algorithm.
pub fn signature(method: SignatureMethod, string_to_sign: &str, secret: &str) -> String {
    use base64::Engine as _;
    let mac = match method {
        SignatureMethod::HmacSha1 => {
            let mut m = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
            m.update(string_to_sign.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        SignatureMethod::HmacSha256 => {
            let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
            m.update(string_to_sign.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
    };
    base64::engine::general_purpose::STANDARD.encode(mac)
}

/// Verifies the signature with the secret (constant-time compare). A mismatch is
/// `AuthFailure.SignatureFailure`, whose message shows the server's string to sign.
pub fn verify(
    claim: &Claim,
    method: &str,
    host: &str,
    params: &[(String, String)],
    secret: &str,
) -> Result<(), TencentError> {
    let sts = string_to_sign(method, host, params);
    let expected = signature(claim.method, &sts, secret);
    // A raw '+' in an unencoded Signature arrives as a space after form decoding; base64 never
    // contains spaces, so mapping them back is lossless.
    let sent = claim.signature.trim().replace(' ', "+");
    if bool::from(expected.as_bytes().ct_eq(sent.as_bytes())) {
        Ok(())
    } else {
        Err(TencentError::signature_mismatch(&sts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::auth::merge_params;
    use crate::api::tencent::Common;
    use crate::api::test_captures::{capture_files, load_capture, CAPTURE_AK, CAPTURE_SECRET};

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The parameters of the legacy client's own signature tests; the signatures are what its
    /// `QcloudApi.common.sign.Sign.make` computes for them.
    fn vector() -> Vec<(String, String)> {
        pairs(&[
            ("SecretId", "secretIdFoo"),
            ("Region", "ap-guangzhou"),
            ("Nonce", "1290303896666895346"),
            ("Timestamp", "1512393162"),
            ("Action", "DescribeInstances"),
            ("Version", "2017-03-12"),
        ])
    }

    #[test]
    fn the_clients_own_vectors() {
        let host = "cvm.api.qcloud.com";
        let sign = |m, http: &str, p: &[(String, String)]| signature(m, &string_to_sign(http, host, p), "secretKeyBar");
        assert_eq!(sign(SignatureMethod::HmacSha1, "GET", &vector()), "KHdtYu01BJgAkeZxebYvBTZ529s=");
        assert_eq!(sign(SignatureMethod::HmacSha1, "POST", &vector()), "yRn9EBsOuEs1eZqC1+T5KPb3wjo=");
        let mut v = vector();
        v.push(("SignatureMethod".into(), "HmacSHA256".into()));
        assert_eq!(sign(SignatureMethod::HmacSha256, "POST", &v), "B2T37FRSP6Fk0/q/cdfrTE0p3zX5ooB/2BPWZUFpsj4=");
    }

    #[test]
    fn names_signed_with_dots_values_raw_and_at_values_left_out_of_a_post() {
        let p = pairs(&[("b_c", "x y/+"), ("A", "1"), ("Signature", "s"), ("f", "@file")]);
        assert_eq!(string_to_sign("GET", "h:1", &p), "GETh:1/v2/index.php?A=1&b.c=x y/+&f=@file");
        assert_eq!(string_to_sign("POST", "h:1", &p), "POSTh:1/v2/index.php?A=1&b.c=x y/+");
    }

    #[test]
    fn claims_and_their_errors() {
        let mut full = vector();
        full.push(("Signature".into(), "c2ln".into()));
        let c = claim(&full).unwrap();
        assert_eq!((c.secret_id.as_str(), c.nonce, c.timestamp), ("secretIdFoo", 1290303896666895346, 1512393162));
        assert_eq!(c.method, SignatureMethod::HmacSha1);
        let without = |name: &str| full.iter().filter(|(k, _)| k != name).cloned().collect::<Vec<_>>();
        let with = |name: &str, v: &str| {
            let mut p = without(name);
            p.push((name.into(), v.into()));
            p
        };
        for name in ["SecretId", "Signature", "Nonce", "Timestamp"] {
            let e = claim(&without(name)).unwrap_err();
            assert_eq!((e.common, e.desc.as_str()), (Common::InvalidParameter, "MissingParameter"), "{name}");
            assert!(e.message.contains(name), "{e:?}");
        }
        for (name, bad) in [
            ("Nonce", "abc"),
            ("Nonce", "0"),
            ("Nonce", "-3"),
            ("Timestamp", "2026-01-01"),
            ("SignatureMethod", "HmacSM3"),
        ] {
            let e = claim(&with(name, bad)).unwrap_err();
            assert_eq!((e.common, e.desc.as_str()), (Common::InvalidParameter, "InvalidParameter"), "{name}={bad}");
        }
        assert_eq!(claim(&with("SignatureMethod", "HmacSHA256")).unwrap().method, SignatureMethod::HmacSha256);
    }

    #[test]
    fn timestamps_within_five_minutes() {
        let c = |ts: i64| Claim {
            secret_id: "k".into(),
            nonce: 1,
            timestamp: ts,
            method: SignatureMethod::HmacSha1,
            signature: String::new(),
        };
        let now = 1_800_000_000;
        assert!(check_timestamp(&c(now - 300), now).is_ok());
        assert!(check_timestamp(&c(now + 300), now).is_ok());
        for ts in [now - 301, now + 301, 1, i64::MAX] {
            let e = check_timestamp(&c(ts), now).unwrap_err();
            assert_eq!((e.common, e.desc.as_str()), (Common::RequestExpired, "AuthFailure.SignatureExpire"));
        }
    }

    #[test]
    fn captured_requests_verify_and_a_wrong_secret_or_a_change_does_not() {
        let files = capture_files(&["py_qcloud", "py_qcloud_tls"]);
        assert_eq!(files.len(), 7);
        let mut methods = std::collections::HashSet::new();
        for path in &files {
            let cap = load_capture(path);
            let name = &cap.name;
            assert_eq!(cap.sig["scheme"], "tc-v2", "{name}");
            let params = merge_params(&cap.query, &cap.body_params);
            let host = cap.headers.get("host").unwrap().to_str().unwrap();
            let c = claim(&params).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(c.secret_id, CAPTURE_AK, "{name}");
            methods.insert((cap.method.clone(), c.method));
            assert_eq!(
                string_to_sign(&cap.method, host, &params),
                cap.sig["string_to_sign"].as_str().unwrap(),
                "{name}"
            );
            verify(&c, &cap.method, host, &params, CAPTURE_SECRET).unwrap_or_else(|e| panic!("{name}: {e:?}"));

            let e = verify(&c, &cap.method, host, &params, "not-the-secret").unwrap_err();
            assert_eq!((e.common, e.desc.as_str()), (Common::AuthFailure, "AuthFailure.SignatureFailure"), "{name}");
            // Another host, method or value is another request.
            assert!(verify(&c, &cap.method, "vpc.api.qcloud.com", &params, CAPTURE_SECRET).is_err(), "{name}");
            let other = if cap.method == "GET" { "POST" } else { "GET" };
            assert!(verify(&c, other, host, &params, CAPTURE_SECRET).is_err(), "{name}");
            let mut changed = params.clone();
            changed.iter_mut().find(|(k, _)| k == "vpnGwId").unwrap().1 = "vpngw-other".into();
            assert!(verify(&c, &cap.method, host, &changed, CAPTURE_SECRET).is_err(), "{name}");
        }
        // Both methods with both algorithms were captured.
        assert!(methods.contains(&("GET".into(), SignatureMethod::HmacSha1)));
        assert!(methods.contains(&("POST".into(), SignatureMethod::HmacSha256)));
    }
}
