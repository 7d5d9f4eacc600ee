//! The Tencent Cloud API 2.0 dialect: `/v2/index.php`, GET (query) or POST (form body).
//!
//! A request flows as on the Alibaba side — bytes → params → action known? → signature
//! (`sign`), five-minute timestamp window, nonce spent → rate limit → action — and ends in this
//! dialect's envelope, always HTTP 200 (the legacy client treats any other status as a network
//! failure): `{"code":0,"message":"","codeDesc":"Success","data":{…}}` on success,
//! `{"code":<non-zero>,"message":…,"codeDesc":<error code>}` on failure. `code` is one of the v2
//! common codes (`Common`); `codeDesc` names the error.
//!
//! Accounts and keys are the Alibaba side's: `SecretId` is an AccessKeyId, `SecretKey` its
//! secret. Parameter names are read with `_` as `.` (the client signs them so).

pub mod sign;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::auth::{decode_form, merge_params};
use super::error::ApiError;
use super::params::Params;
use crate::actions::{self, Dialect};
use crate::app::{App, Body, Ctx};
use crate::config::Region;

/// The version the action table lists this dialect's actions under (the path's `v2`).
pub const VERSION: &str = "v2";
/// How long a nonce is remembered: the timestamp window on either side of now.
const NONCE_TTL_MS: i64 = 2 * sign::MAX_SKEW_S * 1000;

/// The v2 common error codes (the `code` field): what kind of failure it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Common {
    InvalidParameter = 4000,
    AuthFailure = 4100,
    RequestExpired = 4200,
    QuotaExceeded = 4400,
    ReplayAttack = 4500,
    ResourceNotFound = 5000,
    InternalError = 6000,
}

/// How a request ends in this dialect when it fails: the common code, `codeDesc` and `message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TencentError {
    pub common: Common,
    pub desc: String,
    pub message: String,
}

impl TencentError {
    pub fn new(common: Common, desc: impl Into<String>, message: impl Into<String>) -> Self {
        TencentError { common, desc: desc.into(), message: message.into() }
    }
    pub fn missing_parameter(name: &str) -> Self {
        Self::new(Common::InvalidParameter, "MissingParameter", format!("The parameter {name} is required."))
    }
    pub fn invalid_parameter(name: &str, why: impl std::fmt::Display) -> Self {
        Self::new(Common::InvalidParameter, "InvalidParameter", format!("The parameter {name} is not valid: {why}"))
    }
    pub fn expired() -> Self {
        Self::new(
            Common::RequestExpired,
            "AuthFailure.SignatureExpire",
            "The request has expired: Timestamp is more than 5 minutes away from the server's time.",
        )
    }
    pub fn signature_mismatch(string_to_sign: &str) -> Self {
        Self::new(
            Common::AuthFailure,
            "AuthFailure.SignatureFailure",
            format!("The signature does not match. The server's string to sign is: {string_to_sign}"),
        )
    }
    fn unknown_key() -> Self {
        Self::new(Common::AuthFailure, "AuthFailure.SecretIdNotFound", "The SecretId does not exist.")
    }
    fn disabled_key() -> Self {
        Self::new(Common::AuthFailure, "AuthFailure.SecretIdNotFound", "The SecretId is disabled.")
    }
    fn replayed() -> Self {
        Self::new(Common::ReplayAttack, "ReplayAttack", "The Nonce of this SecretId was used already.")
    }

    /// The `code` field.
    pub fn code(&self) -> u32 {
        self.common as u32
    }
}

/// The service's own errors (body limits, throttling, store failures, rules shared with the
/// Alibaba side) in this dialect's terms: `codeDesc` keeps their code, `code` says its kind.
impl From<ApiError> for TencentError {
    fn from(e: ApiError) -> Self {
        let common = match (e.status, e.code.as_str()) {
            (500.., _) => Common::InternalError,
            (_, "Throttling.User") => Common::QuotaExceeded,
            (404, _) => Common::ResourceNotFound,
            _ => Common::InvalidParameter,
        };
        TencentError::new(common, e.code, e.message)
    }
}

pub async fn handle(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let request_id = super::new_request_id();
    let started = std::time::Instant::now();
    let (mut account, mut action, mut close) = (None, None, false);
    let outcome = match super::read_body(&app.config.connections, &headers, body).await {
        Ok(body) => {
            let request = Request::of(&method, &uri, &headers, &body);
            action = request.value("Action").map(str::to_string);
            serve(app, request, action.clone(), request_id.clone(), &mut account).await
        }
        // What is left of the body is not worth reading: the connection goes.
        Err(e) => {
            close = true;
            Err(e.into())
        }
    };
    let code = match &outcome {
        Ok(_) => "Success",
        Err(e) => e.desc.as_str(),
    };
    // Always 200 on the wire; an internal error was logged as such where it arose.
    super::log_request(&request_id, account, action.as_deref().unwrap_or(""), code, 200, started);
    let mut response = match outcome {
        Ok(data) => envelope(json!({"code": 0, "message": "", "codeDesc": "Success", "data": data})),
        Err(e) => envelope(json!({"code": e.code(), "message": e.message, "codeDesc": e.desc})),
    };
    if close {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// What a v2 request says, decoded.
struct Request {
    method: String,
    /// The Host header verbatim: it is signed.
    host: String,
    /// Query ∪ form body, the body winning on a clash; a POST's `@` values left out (they are
    /// not signed).
    params: Vec<(String, String)>,
}

impl Request {
    fn of(method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Self {
        let query = uri.query().map(|q| decode_form(q.as_bytes())).unwrap_or_default();
        let body_params = if super::is_form(headers, body) { decode_form(body) } else { Vec::new() };
        let method = method.as_str().to_string();
        let params = merge_params(&query, &body_params).into_iter().filter(|p| sign::signable(&method, p)).collect();
        let host = headers
            .get(header::HOST)
            .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
            .or_else(|| uri.authority().map(|a| a.to_string()))
            .unwrap_or_default();
        Request { method, host, params }
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }
}

async fn serve(
    app: Arc<App>,
    request: Request,
    action: Option<String>,
    request_id: String,
    account: &mut Option<i64>,
) -> Result<Body, TencentError> {
    if request.method != "GET" && request.method != "POST" {
        return Err(TencentError::new(
            Common::InvalidParameter,
            "UnsupportedOperation",
            format!("The HTTP method {} is not supported: use GET or POST.", request.method),
        ));
    }
    let action = action.ok_or_else(|| TencentError::missing_parameter("Action"))?;
    if !actions::exists(Dialect::Tencent, VERSION, &action) {
        return Err(TencentError::new(
            Common::InvalidParameter,
            "InvalidAction",
            format!("The action {action} is not supported."),
        ));
    }
    let claim = sign::claim(&request.params)?;
    sign::check_timestamp(&claim, time::OffsetDateTime::now_utc().unix_timestamp())?;
    let key_error = |e: ApiError| match e.code.as_str() {
        "InvalidAccessKeyId.NotFound" => TencentError::unknown_key(),
        "InvalidAccessKeyId.Inactive" => TencentError::disabled_key(),
        _ => e.into(),
    };
    let (account_id, secret) = super::key_secret(&app, &claim.secret_id).await.map_err(key_error)?;
    sign::verify(&claim, &request.method, &request.host, &request.params, secret.expose())?;
    // A namespace of their own: an Alibaba SignatureNonce of the same key never collides.
    let nonce = format!("tc2:{}", claim.nonce);
    if !super::spend_nonce(&app, &claim.secret_id, &nonce, NONCE_TTL_MS).await.map_err(key_error)? {
        return Err(TencentError::replayed());
    }
    *account = Some(account_id);
    app.limiter.check(account_id)?;
    let params = Params::from_pairs(request.params.into_iter().map(|(k, v)| (k.replace('_', "."), v)));
    actions::run_tencent(Ctx { app, account_id, action, request_id, params }).await
}

/// The common `Region` parameter: a served region, by its id (`cn-hangzhou`), so that both
/// dialects name the same regions.
pub fn region(ctx: &Ctx) -> Result<Region, TencentError> {
    let id = ctx.params.str("Region").ok_or_else(|| TencentError::missing_parameter("Region"))?;
    ctx.app.config.region(&id).cloned().ok_or_else(|| {
        TencentError::new(Common::InvalidParameter, "InvalidRegion", format!("The region {id:?} is not served."))
    })
}

fn envelope(body: Value) -> Response {
    let mut r = (StatusCode::OK, serde_json::to_vec(&body).expect("json")).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=utf-8"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_services_own_errors_keep_their_code_under_a_common_one() {
        let kind = |status, code: &str| TencentError::from(ApiError::new(status, code, "m"));
        assert_eq!(kind(400, "VpnGateway.Configuring").common, Common::InvalidParameter);
        assert_eq!(kind(400, "VpnGateway.Configuring").desc, "VpnGateway.Configuring");
        assert_eq!(kind(400, "Throttling.User").common, Common::QuotaExceeded);
        assert_eq!(kind(404, "InvalidVpnConnectionInstanceId.NotFound").common, Common::ResourceNotFound);
        assert_eq!(kind(413, "RequestEntityTooLarge").common, Common::InvalidParameter);
        assert_eq!(kind(500, "InternalError").common, Common::InternalError);
        assert_eq!(kind(500, "InternalError").code(), 6000);
    }

    #[test]
    fn a_post_drops_at_values_and_the_host_is_taken_verbatim() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8443"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        let uri: Uri = "/v2/index.php?Action=A&f=%40q".parse().unwrap();
        let body = Bytes::from_static(b"b_c=1&file=%40%2Fetc%2Fpasswd&Action=B");
        let post = Request::of(&Method::POST, &uri, &headers, &body);
        assert_eq!(post.host, "127.0.0.1:8443");
        assert_eq!(post.value("Action"), Some("B"), "the body wins");
        assert_eq!((post.value("file"), post.value("f")), (None, None));
        assert_eq!(post.value("b_c"), Some("1"));
        let get = Request::of(&Method::GET, &uri, &HeaderMap::new(), &Bytes::new());
        assert_eq!((get.value("f"), get.host.as_str()), (Some("@q"), ""));
    }
}
