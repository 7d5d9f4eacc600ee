//! The running service's shared state, and the context each action runs in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Map, Value};
use tokio::sync::Notify;

use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::config::{Config, Region};
use crate::secret::MasterKey;
use crate::store::{now_ms, IdempotentAnswer, Store, Tx};

pub struct App {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub master_key: MasterKey,
    /// The AccessKeys this node has seen (see `accounts::KeyCache`).
    pub keys: crate::accounts::KeyCache,
    pub limiter: RateLimiter,
    /// Poked whenever a task is queued, so the reconciler need not poll (on a shared store it
    /// also polls, for the tasks other nodes queue).
    pub tasks_queued: Notify,
    /// This process's name in task leases: unique per start.
    pub node: String,
    /// Faults and held transitions (the control API).
    pub control: crate::control::ControlState,
}

/// An action's answer: the fields beside `RequestId`.
pub type Body = Map<String, Value>;

/// One authenticated request, as an action sees it.
pub struct Ctx {
    pub app: Arc<App>,
    pub account_id: i64,
    pub action: String,
    pub request_id: String,
    pub params: Params,
}

/// ClientToken answers are kept this long (the real service keeps them for a day at least).
pub const CLIENT_TOKEN_TTL_MS: i64 = 48 * 3600 * 1000;

impl Ctx {
    pub fn store(&self) -> &dyn Store {
        &*self.app.store
    }

    /// The `RegionId` parameter, which must name a configured region.
    pub fn region(&self) -> ApiResult<Region> {
        let id = self.params.required("RegionId")?;
        self.app.config.region(&id).cloned().ok_or_else(|| {
            ApiError::not_found("InvalidRegionId.NotFound", format!("The specified RegionId \"{id}\" does not exist."))
        })
    }

    /// Runs `f` as one durable write, honouring `ClientToken`: a repeat of the same request
    /// returns the first answer and changes nothing; the same token with other parameters is
    /// refused with `IdempotentParameterMismatch`.
    pub async fn write_once(
        &self,
        mut f: impl FnMut(&mut dyn Tx) -> ApiResult<Body> + Send + 'static,
    ) -> ApiResult<Body> {
        let token = self.params.str("ClientToken");
        if let Some(t) = &token {
            if t.len() > 64 || !t.is_ascii() {
                return Err(ApiError::invalid_parameter("ClientToken", "at most 64 ASCII characters"));
            }
        }
        // Tokens are scoped per account, region and action, as the real service scopes them.
        let scope = format!("{}/{}", self.params.get("RegionId").unwrap_or_default(), self.action);
        let (account, action, hash) = (self.account_id, scope, self.params.fingerprint());
        let body = self
            .store()
            .write(move |tx| {
                let Some(token) = &token else { return f(tx) };
                if let Some(prev) = tx.idempotent_answer(account, &action, token)? {
                    if prev.params_hash != hash {
                        return Err(ApiError::bad_request(
                            "IdempotentParameterMismatch",
                            "The request uses the same client token as a previous, but non-identical request.",
                        ));
                    }
                    return serde_json::from_str(&prev.response).map_err(ApiError::internal);
                }
                let body = f(tx)?;
                let response = serde_json::to_string(&body).map_err(ApiError::internal)?;
                tx.remember_answer(
                    account,
                    &action,
                    token,
                    &IdempotentAnswer { params_hash: hash.clone(), response },
                    now_ms(),
                )?;
                Ok(body)
            })
            .await?;
        self.app.tasks_queued.notify_one();
        Ok(body)
    }
}

impl Ctx {
    /// Runs `f` as one durable write whose error is a family's own (typed) error: the error rolls
    /// the write back and comes out as it went in; a failure of the store itself comes out
    /// through `E::from`. No ClientToken (the dialects that use this have none).
    pub async fn write_typed<T, E>(
        &self,
        mut f: impl FnMut(&mut dyn Tx) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<ApiError> + Send + 'static,
    {
        let failure = Arc::new(Mutex::new(None));
        let slot = failure.clone();
        let written = self
            .store()
            .write(move |tx| {
                f(tx).map_err(|e| {
                    *slot.lock().expect("failure slot") = Some(e);
                    // Only rolls back: the typed error is what the caller gets.
                    ApiError::new(500, "InternalError", "rolled back")
                })
            })
            .await;
        self.app.tasks_queued.notify_one();
        written.map_err(|e| failure.lock().expect("failure slot").take().unwrap_or_else(|| E::from(e)))
    }
}

/// Per-account token buckets: `rate` requests per second with a burst of one second's worth.
pub struct RateLimiter {
    rate: u32,
    buckets: Mutex<HashMap<i64, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(rate: u32) -> Self {
        RateLimiter { rate, buckets: Mutex::new(HashMap::new()) }
    }

    pub fn check(&self, account_id: i64) -> ApiResult<()> {
        if self.rate == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let rate = self.rate as f64;
        let mut buckets = self.buckets.lock().expect("rate limiter");
        let (tokens, last) = buckets.entry(account_id).or_insert((rate, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(rate);
        *last = now;
        if *tokens < 1.0 {
            return Err(ApiError::throttled());
        }
        *tokens -= 1.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_allows_a_burst_then_throttles() {
        let l = RateLimiter::new(3);
        for _ in 0..3 {
            l.check(1).unwrap();
        }
        assert_eq!(l.check(1).unwrap_err().code, "Throttling.User");
        l.check(2).unwrap();
        assert!(RateLimiter::new(0).check(1).is_ok());
    }
}
