//! The client side of RPC v1 signing, as the SDKs do it: what `gatehouse ctl` and the
//! benchmark send. (The server side is `auth`.)

use super::auth::{percent_encode, rpc_v1_signature, rpc_v1_string_to_sign};

/// `k=v&…&Signature=…`, RFC 3986-encoded, signed for `method`.
pub fn sign_and_encode(method: &str, params: &[(String, String)], secret: &str) -> String {
    let signature = rpc_v1_signature(&rpc_v1_string_to_sign(method, params), secret);
    let mut out = String::with_capacity(512);
    for (k, v) in params {
        out.push_str(&percent_encode(k));
        out.push('=');
        out.push_str(&percent_encode(v));
        out.push('&');
    }
    out.push_str("Signature=");
    out.push_str(&percent_encode(&signature));
    out
}

/// Now, as RPC v1's `Timestamp` is written.
pub fn timestamp_now() -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc().format(&fmt).expect("UTC timestamps always format")
}
