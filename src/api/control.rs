//! The wire of the control API (`/_gatehouse/<operation>`, operations in `control`) and of
//! `/metrics`.
//!
//! A control request is signed like a cloud API request (RPC v1 or ACS3, with the same
//! timestamp window and nonce) by an AccessKey of the root account, and names its operation as
//! its `Action` (RPC v1 does not sign the path, so the operation must be among what is signed).
//! With `--control-api open` no signature is asked for. `health` and `version` answer anyone.
//! Answers are JSON: `{"RequestId": …, fields}`, errors in the cloud API's error envelope.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ApiResult};
use super::render::{self, Format};
use super::{authenticate, header_or_param, Incoming};
use crate::accounts::ROOT_ACCOUNT;
use crate::app::App;
use crate::control::{self, ControlAccess, Operation};

pub async fn handle(
    State(app): State<Arc<App>>,
    Path(operation): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let request_id = super::new_request_id();
    let started = std::time::Instant::now();
    let op = Operation::from_wire(&operation);
    if op == Some(Operation::Health) {
        return health(&app);
    }
    let outcome = async {
        let op = op.ok_or_else(|| {
            ApiError::not_found("InvalidAction.NotFound", format!("There is no control operation {operation:?}."))
        })?;
        let incoming = Incoming::read(&app.config.connections, &uri, &headers, body).await?;
        let params = &incoming.params;
        if !op.open() && app.config.control_access == ControlAccess::Signed {
            let action = header_or_param(params, &headers, "Action", "x-acs-action");
            if action.as_deref() != Some(op.wire()) {
                return Err(ApiError::bad_request(
                    "InvalidAction.Mismatch",
                    format!("A control request names its operation as its signed Action: Action={}.", op.wire()),
                ));
            }
            require_root(&app, authenticate(&app, &incoming.signed_parts(&method, &uri, &headers)).await?)?;
        }
        control::run(&app, op, params).await
    }
    .await;
    let (code, status) = match &outcome {
        Ok(_) => ("Success", 200),
        Err(e) => (e.code.as_str(), e.status),
    };
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(request_id, operation, code, status, latency_ms, "control request");
    match outcome {
        Ok(out) => render::success(Format::Json, &operation, &request_id, out),
        Err(e) => render::error(Format::Json, &request_id, &e),
    }
}

fn require_root(app: &App, account_id: i64) -> ApiResult<()> {
    let root = app.store.read(|tx| tx.account_by_name(ROOT_ACCOUNT))?;
    if root.is_some_and(|r| r.id == account_id) {
        return Ok(());
    }
    Err(ApiError::new(403, "Forbidden.NotRootAccount", "The control API takes only AccessKeys of the root account."))
}

/// Health without an envelope (what probes expect): 200 while the store answers, else 503.
fn health(app: &App) -> Response {
    let (healthy, body) = control::health(app);
    json(if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, body)
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=utf-8"));
    response
}

/// `GET /metrics`: the Prometheus text exposition (OpenMetrics flavour).
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    match crate::metrics::render(&*app.store, app.control.paused()) {
        Ok(text) => {
            let mut response = text.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            );
            response
        }
        Err(e) => render::error(Format::Json, "metrics", &e),
    }
}
