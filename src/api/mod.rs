//! The wire. Only this module knows parameter encodings, signatures, envelopes and HTTP
//! statuses. A request flows: bytes → params → (version, action) → authenticated account →
//! rate limit → injected fault (the control API's) → action → rendered answer. Beside the
//! cloud API at `/`: the control API at `/_gatehouse/<operation>` and `/metrics` (`control`).

pub mod auth;
pub mod control;
pub mod error;
pub mod params;
pub mod render;
pub mod server;
pub mod signer;
pub mod tencent;
#[cfg(test)]
mod test_captures;
pub mod tls;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::any;
use axum::Router;

use crate::actions::{self, Dialect};
use crate::app::{App, Body, Ctx};
use crate::secret::Secret;
use crate::store::{now_ms, Nonce, NonceSpend};
use error::{ApiError, ApiResult};
use params::Params;
use render::Format;

/// How long a nonce is remembered: the timestamp window on either side of now.
const NONCE_TTL_MS: i64 = 2 * 15 * 60 * 1000;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", any(handle))
        .route(tencent::sign::PATH, any(tencent::handle))
        .route("/_gatehouse/{operation}", any(control::handle))
        .route("/metrics", axum::routing::get(control::metrics))
        .with_state(app)
}

/// A new request's ID, as the cloud writes them (an upper-case UUID).
fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

async fn handle(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let request_id = new_request_id();
    let incoming = match Incoming::read(&app.config.connections, &uri, &headers, body).await {
        Ok(incoming) => incoming,
        Err(e) => {
            tracing::debug!(request_id, code = e.code, "request body refused");
            let query = uri.query().map(|q| auth::decode_form(q.as_bytes())).unwrap_or_default();
            let format = Format::from_param(Params::merged(&query, &[]).get("Format"));
            let mut response = render::error(format, &request_id, &e);
            // What is left of the body is not worth reading: the connection goes.
            response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
            return response;
        }
    };
    let parts = incoming.signed_parts(&method, &uri, &headers);
    let params = incoming.params.clone();
    let format = Format::from_param(params.get("Format"));
    let action = header_or_param(&params, &headers, "Action", "x-acs-action");
    let started = std::time::Instant::now();
    let mut account = None;
    let outcome = serve(app, &parts, params, action.clone(), request_id.clone(), &mut account).await;
    let (code, status) = match &outcome {
        Ok(_) => ("Success", 200),
        Err(e) => (e.code.as_str(), e.status),
    };
    let action_name = action.as_deref().unwrap_or("");
    log_request(&request_id, account, action_name, code, status, started);
    match outcome {
        Ok(out) => render::success(format, action_name, &request_id, out),
        Err(e) => render::error(format, &request_id, &e),
    }
}

/// A request as received: its parameters (query and form body) and what signing reads.
struct Incoming {
    query: Vec<(String, String)>,
    body: Bytes,
    body_params: Vec<(String, String)>,
    params: Params,
}

impl Incoming {
    async fn read(
        limits: &crate::config::ConnectionLimits,
        uri: &Uri,
        headers: &HeaderMap,
        body: axum::body::Body,
    ) -> ApiResult<Self> {
        let query = uri.query().map(|q| auth::decode_form(q.as_bytes())).unwrap_or_default();
        let body = read_body(limits, headers, body).await?;
        let body_params = if is_form(headers, &body) { auth::decode_form(&body) } else { Vec::new() };
        let params = Params::merged(&query, &body_params);
        Ok(Incoming { query, body, body_params, params })
    }

    fn signed_parts<'a>(&'a self, method: &'a Method, uri: &'a Uri, headers: &'a HeaderMap) -> auth::SignedParts<'a> {
        auth::SignedParts {
            method: method.as_str(),
            path: uri.path(),
            query: &self.query,
            body_params: &self.body_params,
            headers,
            body: &self.body,
        }
    }
}

/// One line per request, in both dialects: who asked what, and how it ended; never a
/// parameter's value.
fn log_request(
    request_id: &str,
    account: Option<i64>,
    action: &str,
    code: &str,
    status: u16,
    started: std::time::Instant,
) {
    crate::metrics::request(action, code, started.elapsed());
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::error!(request_id, account, action, code, status, latency_ms, "request");
    } else {
        tracing::info!(request_id, account, action, code, status, latency_ms, "request");
    }
}

/// The request body within the connection limits: a declared `Content-Length` over `max_body`
/// is refused before any of it is read (413), a body that has not all arrived within `body` is
/// cut off (408).
async fn read_body(
    limits: &crate::config::ConnectionLimits,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Bytes> {
    use http_body_util::BodyExt;
    let too_large = || {
        ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!("The request body is larger than {} bytes.", limits.max_body),
        )
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(limits.body, http_body_util::Limited::new(body, limits.max_body).collect()).await {
        Err(_) => Err(ApiError::new(408, "RequestTimeout", "The request body did not arrive in time.")),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(e)) => Err(ApiError::bad_request("InvalidRequest", format!("The request body could not be read: {e}"))),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

async fn serve(
    app: Arc<App>,
    parts: &auth::SignedParts<'_>,
    params: Params,
    action: Option<String>,
    request_id: String,
    account: &mut Option<i64>,
) -> ApiResult<Body> {
    let version = header_or_param(&params, parts.headers, "Version", "x-acs-version")
        .ok_or_else(|| ApiError::missing_parameter("Version"))?;
    if !actions::has_version(Dialect::Alibaba, &version) {
        return Err(ApiError::bad_request("InvalidVersion", "Specified parameter Version is not valid."));
    }
    let action = action.ok_or_else(|| ApiError::missing_parameter("Action"))?;
    if !actions::exists(Dialect::Alibaba, &version, &action) {
        return Err(ApiError::not_found(
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        ));
    }
    let account_id = authenticate(&app, parts).await?;
    *account = Some(account_id);
    app.limiter.check(account_id)?;
    if let Some(hit) = app.control.faults.take(account_id, &action, &params) {
        // A test rig asked for this call to be slow: the only wait a request makes on purpose.
        tokio::time::sleep(hit.latency).await;
        if let Some(e) = hit.error {
            return Err(e);
        }
    }
    actions::run(Ctx { app, account_id, action, request_id, params }).await
}

/// Verifies the signature and spends the nonce; returns the signer's account.
async fn authenticate(app: &App, parts: &auth::SignedParts<'_>) -> ApiResult<i64> {
    let claim = auth::claim(parts)?;
    auth::check_timestamp(&claim, time::OffsetDateTime::now_utc())?;
    let (account_id, secret) = key_secret(app, &claim.access_key_id).await?;
    auth::verify(&claim, parts, secret.expose())?;
    if !spend_nonce(app, &claim.access_key_id, &claim.nonce, NONCE_TTL_MS).await? {
        return Err(ApiError::bad_request("SignatureNonceUsed", "Specified signature nonce was used already."));
    }
    Ok(account_id)
}

/// The account and secret of the enabled AccessKey `key_id` (the same keys sign both dialects):
/// from the node's `KeyCache`, else from the store. `spend_nonce` checks that it is still enabled.
async fn key_secret(app: &App, key_id: &str) -> ApiResult<(i64, Secret)> {
    if let Some(known) = app.keys.get(key_id) {
        return Ok(known);
    }
    let key = app
        .store
        .read(|tx| tx.key(key_id))?
        .ok_or_else(|| ApiError::not_found("InvalidAccessKeyId.NotFound", "Specified access key is not found."))?;
    if !key.enabled {
        return Err(inactive_key());
    }
    let secret = app.master_key.open(&key.sealed_secret).map_err(ApiError::internal)?;
    app.keys.put(key_id, key.account_id, &secret);
    Ok((key.account_id, secret))
}

fn inactive_key() -> ApiError {
    ApiError::bad_request("InvalidAccessKeyId.Inactive", "Specified access key is disabled.")
}

/// Spends `nonce` of key `key_id` for `ttl_ms`; false when it was spent already. A key disabled
/// since it was looked up is refused here (and forgotten).
async fn spend_nonce(app: &App, key_id: &str, nonce: &str, ttl_ms: i64) -> ApiResult<bool> {
    let nonce = Nonce { access_key_id: key_id.to_string(), nonce: nonce.to_string(), expires_ms: now_ms() + ttl_ms };
    // A spent nonce must outlive the process, not the machine: its write skips the fsync.
    let spent = app.store.spend_nonce(nonce).await?;
    match spent {
        NonceSpend::Spent => Ok(true),
        NonceSpend::Replayed => Ok(false),
        NonceSpend::KeyDisabled => {
            app.keys.forget(key_id);
            Err(inactive_key())
        }
    }
}

/// Action and Version: parameters under RPC v1 (which signs parameters, not headers), the signed
/// `x-acs-*` headers under ACS3 (which sends no such parameters).
fn header_or_param(params: &Params, headers: &HeaderMap, param: &str, header_name: &str) -> Option<String> {
    let acs3 = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("ACS3-"));
    if !acs3 {
        return params.str(param);
    }
    headers.get(header_name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()).map(str::to_string)
}

/// Form bodies carry parameters; so does a body sent without a content type.
fn is_form(headers: &HeaderMap, body: &[u8]) -> bool {
    match headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some(ct) => ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"),
        None => !body.is_empty(),
    }
}
