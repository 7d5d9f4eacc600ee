//! Request signatures, pure functions only (no I/O, no credential store).
//!
//! Two Alibaba schemes share the same `/` endpoint:
//!
//! * **RPC signature v1** (`Signature`, `SignatureMethod=HMAC-SHA1`, `SignatureVersion=1.0` among the
//!   parameters): the classic Python SDK, Node pop-core and the Tea SDKs with `signature_algorithm='v2'`.
//!   It signs the decoded query ∪ the decoded form body (body wins on a name clash), minus `Signature`.
//! * **ACS3-HMAC-SHA256** (`Authorization: ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…`):
//!   the default of both Tea SDKs. It signs the decoded query only, the listed headers and the body hash
//!   from `x-acs-content-sha256` (which must match the body).
//!
//! The flow for a server is: [`claim`] (who says they signed, which key) → look up the secret →
//! [`check_timestamp`] → [`verify`] → nonce bookkeeping (not here).

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::format_description::well_known::Rfc3339;

use crate::api::error::ApiError;

type HmacSha1 = Hmac<Sha1>;
type HmacSha256 = Hmac<Sha256>;

/// The algorithm name that opens an ACS3 `Authorization` header and its StringToSign.
const ACS3_ALGORITHM: &str = "ACS3-HMAC-SHA256";
/// Allowed clock skew, both directions.
const MAX_SKEW: time::Duration = time::Duration::minutes(15);
const SIGNATURE_MISMATCH_PREFIX: &str =
    "Specified signature is not matched with our calculation. server string to sign is:";
/// Headers an ACS3 request must sign when it carries them: without them a captured request could be
/// replayed with a fresh date/nonce, or re-routed to another action.
const ACS3_MUST_SIGN: [&str; 4] = ["x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce"];

// ---------------------------------------------------------------------------------------------------
// Encoding helpers
// ---------------------------------------------------------------------------------------------------

/// RFC 3986 percent-encoding as Alibaba signs it (unreserved A-Z a-z 0-9 - _ . ~ kept, rest %XX upper-case).
pub fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() + s.len() / 2);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0x0f) as usize] as char);
        }
    }
    out
}

/// Decodes an application/x-www-form-urlencoded / query string into ordered pairs ('+' = space), keeping empty values.
///
/// Invalid UTF-8 after percent-decoding is replaced lossily (U+FFFD); a pair without `=` has an empty value.
pub fn decode_form(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// The RPC-v1 parameter set of a request: the query pairs, then the form-body pairs, one entry per name.
/// A body value replaces a query value of the same name (in the query's position); within one source the
/// last occurrence wins. This is exactly the set [`verify`] signs (plus `Signature`), so a handler that
/// reads its parameters from this list acts on precisely what was signed.
pub fn merge_params(query: &[(String, String)], body_params: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(query.len() + body_params.len());
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (k, v) in query.iter().chain(body_params.iter()) {
        match index.get(k.as_str()) {
            Some(&i) => out[i].1 = v.clone(),
            None => {
                index.insert(k, out.len());
                out.push((k.clone(), v.clone()));
            }
        }
    }
    out
}

/// Last value of `name` in the merged (query, then body) parameter set, without allocating.
fn lookup<'a>(parts: &SignedParts<'a>, name: &str) -> Option<&'a str> {
    let last = |pairs: &'a [(String, String)]| pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    last(parts.body_params).or_else(|| last(parts.query))
}

/// `pct(k)=pct(v)` pairs sorted by encoded name (then encoded value, for a stable order of duplicates).
fn canonical_pairs<'p>(pairs: impl Iterator<Item = (&'p str, &'p str)>) -> String {
    let mut enc: Vec<(String, String)> = pairs.map(|(k, v)| (percent_encode(k), percent_encode(v))).collect();
    enc.sort();
    let mut out = String::new();
    for (i, (k, v)) in enc.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

// ---------------------------------------------------------------------------------------------------
// Claim
// ---------------------------------------------------------------------------------------------------

/// What a request claims about its signer, read before the secret is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    RpcV1,
    Acs3,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub scheme: Scheme,
    pub access_key_id: String,
    /// `SignatureNonce` (RPC v1) or `x-acs-signature-nonce` (ACS3).
    pub nonce: String,
    /// `Timestamp` (RPC v1) or `x-acs-date` (ACS3), as sent ("2026-11-22T01:46:34Z").
    pub timestamp: String,
    /// As sent (base64 for RPC v1, hex for ACS3).
    pub signature: String,
    /// ACS3 only: the `SignedHeaders` list, in the client's order. Empty for RPC v1.
    signed_headers: Vec<String>,
}

/// Everything verification needs from the HTTP request, already de-chunked.
pub struct SignedParts<'a> {
    /// "GET" / "POST"
    pub method: &'a str,
    /// The request path: `/` for the cloud API (ACS3 signs it as the canonical URI; RPC v1
    /// does not sign it).
    pub path: &'a str,
    /// Decoded query pairs, in order.
    pub query: &'a [(String, String)],
    /// Decoded form-body pairs (empty if the body is not a form).
    pub body_params: &'a [(String, String)],
    pub headers: &'a HeaderMap,
    /// Raw body bytes (for x-acs-content-sha256).
    pub body: &'a [u8],
}

fn incomplete_signature() -> ApiError {
    ApiError::bad_request("IncompleteSignature", "The request signature does not conform to Aliyun standards.")
}

/// First value of a header as text (lossy for non-UTF-8 bytes).
fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// Finds the auth scheme: `Authorization: ACS3-HMAC-SHA256 ...` header => Acs3; else `Signature` param => RpcV1.
///
/// All errors are HTTP 400: `MissingAccessKeyId`, `MissingSignature`, `MissingSignatureNonce`,
/// `MissingTimestamp`, `InvalidSignatureMethod`, `InvalidSignatureVersion`, `IncompleteSignature`.
pub fn claim(parts: &SignedParts) -> Result<Claim, ApiError> {
    if let Some(auth) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let auth = String::from_utf8_lossy(auth.as_bytes());
        let auth = auth.trim();
        if auth.starts_with("ACS3-") {
            return claim_acs3(parts, auth);
        }
        // Any other Authorization scheme is not ours: fall through to the parameters.
    }
    claim_rpc_v1(parts)
}

fn claim_rpc_v1(parts: &SignedParts) -> Result<Claim, ApiError> {
    let non_empty = |name: &str| lookup(parts, name).filter(|v| !v.is_empty());
    let access_key_id = non_empty("AccessKeyId").ok_or_else(|| ApiError::missing_parameter("AccessKeyId"))?;
    let signature = non_empty("Signature").ok_or_else(|| ApiError::missing_parameter("Signature"))?;
    if let Some(m) = lookup(parts, "SignatureMethod") {
        if m != "HMAC-SHA1" {
            return Err(ApiError::bad_request(
                "InvalidSignatureMethod",
                format!("Specified signature method \"{m}\" is not supported; use HMAC-SHA1."),
            ));
        }
    }
    if let Some(v) = lookup(parts, "SignatureVersion") {
        if v != "1.0" {
            return Err(ApiError::bad_request(
                "InvalidSignatureVersion",
                format!("Specified signature version \"{v}\" is not supported; use 1.0."),
            ));
        }
    }
    let nonce = non_empty("SignatureNonce").ok_or_else(|| ApiError::missing_parameter("SignatureNonce"))?;
    let timestamp = non_empty("Timestamp").ok_or_else(|| ApiError::missing_parameter("Timestamp"))?;
    Ok(Claim {
        scheme: Scheme::RpcV1,
        access_key_id: access_key_id.to_owned(),
        nonce: nonce.to_owned(),
        timestamp: timestamp.to_owned(),
        signature: signature.to_owned(),
        signed_headers: Vec::new(),
    })
}

fn claim_acs3(parts: &SignedParts, auth: &str) -> Result<Claim, ApiError> {
    let (algorithm, rest) = auth.split_once(|c: char| c.is_ascii_whitespace()).unwrap_or((auth, ""));
    if algorithm != ACS3_ALGORITHM {
        return Err(ApiError::bad_request(
            "InvalidSignatureMethod",
            format!("Specified signature method \"{algorithm}\" is not supported; use {ACS3_ALGORITHM}."),
        ));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for item in rest.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (key, value) = item.split_once('=').ok_or_else(incomplete_signature)?;
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return Err(incomplete_signature()),
        };
        if slot.is_some() {
            return Err(incomplete_signature());
        }
        *slot = Some(value.trim());
    }
    let credential = credential.filter(|v| !v.is_empty());
    let signature = signature.filter(|v| !v.is_empty()).ok_or_else(incomplete_signature)?;
    let signed_headers = signed_headers.filter(|v| !v.is_empty()).ok_or_else(incomplete_signature)?;
    let signed_headers: Vec<String> = signed_headers.split(';').map(|h| h.trim().to_owned()).collect();
    if signed_headers.iter().any(|h| h.is_empty() || axum::http::HeaderName::from_bytes(h.as_bytes()).is_err()) {
        return Err(incomplete_signature());
    }
    for must in ACS3_MUST_SIGN {
        let present = parts.headers.contains_key(must);
        let signed = signed_headers.iter().any(|h| h.eq_ignore_ascii_case(must));
        if present && !signed {
            return Err(ApiError::bad_request(
                "IncompleteSignature",
                format!(
                    "The request signature does not conform to Aliyun standards: header \"{must}\" must be signed."
                ),
            ));
        }
    }
    let access_key_id = credential.ok_or_else(|| ApiError::missing_parameter("AccessKeyId"))?;
    let nonce = header_str(parts.headers, "x-acs-signature-nonce")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ApiError::missing_parameter("SignatureNonce"))?;
    let timestamp = header_str(parts.headers, "x-acs-date")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ApiError::missing_parameter("Timestamp"))?;
    Ok(Claim {
        scheme: Scheme::Acs3,
        access_key_id: access_key_id.to_owned(),
        nonce: nonce.trim().to_owned(),
        timestamp: timestamp.trim().to_owned(),
        signature: signature.to_owned(),
        signed_headers,
    })
}

// ---------------------------------------------------------------------------------------------------
// Timestamp
// ---------------------------------------------------------------------------------------------------

/// Checks the timestamp against `now` (±15 minutes, inclusive).
/// Unparseable => 400 `IllegalTimestamp`; off by more than 15 min => 400 `InvalidTimeStamp.Expired`.
pub fn check_timestamp(claim: &Claim, now: time::OffsetDateTime) -> Result<(), ApiError> {
    let ts = time::OffsetDateTime::parse(claim.timestamp.trim(), &Rfc3339).map_err(|_| {
        ApiError::bad_request(
            "IllegalTimestamp",
            "The input parameter \"Timestamp\" that is mandatory for processing this request is not supplied.",
        )
    })?;
    if (now - ts).abs() > MAX_SKEW {
        return Err(ApiError::bad_request(
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------------

fn signature_mismatch(string_to_sign: &str) -> ApiError {
    ApiError::bad_request("SignatureDoesNotMatch", format!("{SIGNATURE_MISMATCH_PREFIX}{string_to_sign}"))
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    // Slices of different lengths compare unequal (length is not secret: it is fixed per scheme).
    a.ct_eq(b).into()
}

/// Verifies the signature with the secret (constant-time compare). On mismatch: 400 `SignatureDoesNotMatch`
/// whose message ends with the server's string to sign (the ACS3 StringToSign for ACS3). For ACS3 a body
/// whose SHA-256 differs from `x-acs-content-sha256` is rejected the same way.
pub fn verify(claim: &Claim, parts: &SignedParts, secret: &str) -> Result<(), ApiError> {
    match claim.scheme {
        Scheme::RpcV1 => {
            let string_to_sign = rpc_v1_server_string_to_sign(parts);
            let expected = rpc_v1_signature(&string_to_sign, secret);
            // A raw '+' in an unencoded Signature arrives as a space after form decoding; base64 never
            // contains spaces, so mapping them back is lossless and only helps hand-made requests.
            let sent = claim.signature.trim().replace(' ', "+");
            if ct_eq(expected.as_bytes(), sent.as_bytes()) {
                Ok(())
            } else {
                Err(signature_mismatch(&string_to_sign))
            }
        }
        Scheme::Acs3 => {
            let body_hash = hex::encode(Sha256::digest(parts.body));
            let claimed_hash = header_str(parts.headers, "x-acs-content-sha256").map(|h| h.trim().to_owned());
            // Without the header the body is still covered: sign its real hash.
            let hashed_payload = claimed_hash.clone().unwrap_or_else(|| body_hash.clone());
            let canonical = acs3_canonical_request(parts, &claim.signed_headers, &hashed_payload);
            let string_to_sign = acs3_string_to_sign(&canonical);
            if let Some(h) = &claimed_hash {
                if !ct_eq(h.to_ascii_lowercase().as_bytes(), body_hash.as_bytes()) {
                    return Err(signature_mismatch(&string_to_sign));
                }
            }
            let expected = acs3_signature(&string_to_sign, secret);
            let sent = claim.signature.trim().to_ascii_lowercase();
            if ct_eq(expected.as_bytes(), sent.as_bytes()) {
                Ok(())
            } else {
                Err(signature_mismatch(&string_to_sign))
            }
        }
    }
}

/// The server's RPC v1 string to sign: method + merged query ∪ body (body wins), minus `Signature`.
fn rpc_v1_server_string_to_sign(parts: &SignedParts) -> String {
    let merged = merge_params(parts.query, parts.body_params);
    rpc_v1_string_to_sign(parts.method, &merged)
}

/// Client side, used by the benchmark and tests: RPC v1 string to sign (`Signature` itself is left out).
pub fn rpc_v1_string_to_sign(method: &str, params: &[(String, String)]) -> String {
    let canonical =
        canonical_pairs(params.iter().filter(|(k, _)| k != "Signature").map(|(k, v)| (k.as_str(), v.as_str())));
    format!("{method}&%2F&{}", percent_encode(&canonical))
}

/// base64(HMAC-SHA1(key = secret + "&", string_to_sign)).
pub fn rpc_v1_signature(string_to_sign: &str, secret: &str) -> String {
    use base64::Engine as _;
    let mut key = Vec::with_capacity(secret.len() + 1);
    key.extend_from_slice(secret.as_bytes());
    key.push(b'&');
    let mut mac = HmacSha1::new_from_slice(&key).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// ACS3 canonical request (bytes: header values are signed verbatim, whatever their encoding).
fn acs3_canonical_request(parts: &SignedParts, signed_headers: &[String], hashed_payload: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(parts.method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(if parts.path.is_empty() { b"/" } else { parts.path.as_bytes() });
    out.push(b'\n');
    out.extend_from_slice(canonical_pairs(parts.query.iter().map(|(k, v)| (k.as_str(), v.as_str()))).as_bytes());
    out.push(b'\n');
    for name in signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        // Several values of one header are joined with ','; an absent header signs as empty.
        for (i, value) in parts.headers.get_all(name.as_str()).iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(value.as_bytes().trim_ascii());
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(hashed_payload.as_bytes());
    out
}

fn acs3_string_to_sign(canonical_request: &[u8]) -> String {
    format!("{ACS3_ALGORITHM}\n{}", hex::encode(Sha256::digest(canonical_request)))
}

/// hex(HMAC-SHA256(key = secret, string_to_sign)), no '&' suffix.
fn acs3_signature(string_to_sign: &str, secret: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

// ---------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests;
