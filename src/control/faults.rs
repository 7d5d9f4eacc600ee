//! Injected faults: "the next N calls of action X (optionally only those naming resource Y) by
//! account A fail with Code C, or are delayed". Kept in memory (a test rig's setting, gone at
//! restart), consumed exactly `remaining` times, in the order they were added.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::api::error::ApiError;
use crate::api::params::Params;

/// The most faults one account may hold, and the most calls one fault may cover.
pub const MAX_FAULTS: usize = 1000;
pub const MAX_COUNT: u32 = 10_000;
/// The longest injected latency.
pub const MAX_LATENCY_MS: u64 = 60_000;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Fault {
    pub id: u64,
    #[serde(skip)]
    pub account_id: i64,
    pub account: String,
    /// The API action it applies to.
    pub action: String,
    /// Only calls with a parameter of this value (a resource ID), when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// The documented Code the calls fail with, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Added before the call runs (or fails).
    pub latency_ms: u64,
    /// Calls it still applies to.
    pub remaining: u32,
}

/// What a call meets: a delay, then perhaps an error.
#[derive(Debug, PartialEq)]
pub struct Hit {
    pub latency: Duration,
    pub error: Option<ApiError>,
}

#[derive(Default)]
pub struct Faults {
    inner: Mutex<(u64, Vec<Fault>)>,
}

impl Faults {
    /// Adds a fault (its `id` is assigned here) and returns it.
    pub fn add(&self, mut fault: Fault) -> Result<Fault, ApiError> {
        let mut inner = self.inner.lock().expect("faults");
        if inner.1.iter().filter(|f| f.account_id == fault.account_id).count() >= MAX_FAULTS {
            return Err(ApiError::bad_request(
                "QuotaExceeded.Fault",
                format!("An account holds at most {MAX_FAULTS} faults; clear some first."),
            ));
        }
        inner.0 += 1;
        fault.id = inner.0;
        inner.1.push(fault.clone());
        Ok(fault)
    }

    /// The faults of one account, or of all.
    pub fn list(&self, account_id: Option<i64>) -> Vec<Fault> {
        let inner = self.inner.lock().expect("faults");
        inner.1.iter().filter(|f| account_id.is_none_or(|a| f.account_id == a)).cloned().collect()
    }

    /// Drops the faults of one account, or of all; returns how many went.
    pub fn clear(&self, account_id: Option<i64>) -> usize {
        let mut inner = self.inner.lock().expect("faults");
        let before = inner.1.len();
        inner.1.retain(|f| account_id.is_some_and(|a| f.account_id != a));
        before - inner.1.len()
    }

    /// Consumes one call of the first fault matching this call, if any.
    pub fn take(&self, account_id: i64, action: &str, params: &Params) -> Option<Hit> {
        let mut inner = self.inner.lock().expect("faults");
        let faults = &mut inner.1;
        let i = faults.iter().position(|f| {
            f.account_id == account_id
                && f.action == action
                && f.resource_id.as_deref().is_none_or(|id| params.has_value(id))
        })?;
        let f = &mut faults[i];
        f.remaining -= 1;
        let hit = Hit {
            latency: Duration::from_millis(f.latency_ms),
            // Codes were checked when the fault was added.
            error: f.code.as_deref().and_then(ApiError::documented),
        };
        if f.remaining == 0 {
            faults.remove(i);
        }
        Some(hit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(account_id: i64, action: &str, resource_id: Option<&str>, code: Option<&str>, n: u32) -> Fault {
        Fault {
            id: 0,
            account_id,
            account: format!("a{account_id}"),
            action: action.into(),
            resource_id: resource_id.map(str::to_string),
            code: code.map(str::to_string),
            latency_ms: 0,
            remaining: n,
        }
    }

    #[test]
    fn a_fault_is_consumed_exactly_n_times_by_its_account_and_action() {
        let faults = Faults::default();
        faults.add(fault(1, "DescribeVpnGateways", None, Some("Throttling.User"), 2)).unwrap();
        let p = Params::from_pairs([("RegionId", "cn-hangzhou")]);
        assert!(faults.take(2, "DescribeVpnGateways", &p).is_none(), "another account");
        assert!(faults.take(1, "DescribeVpnGateway", &p).is_none(), "another action");
        for _ in 0..2 {
            let hit = faults.take(1, "DescribeVpnGateways", &p).unwrap();
            assert_eq!(hit.error.unwrap().code, "Throttling.User");
        }
        assert!(faults.take(1, "DescribeVpnGateways", &p).is_none());
        assert!(faults.list(None).is_empty());
    }

    #[test]
    fn a_resource_fault_meets_only_calls_naming_the_resource() {
        let faults = Faults::default();
        faults.add(fault(1, "DeleteVpnGateway", Some("vpn-b"), Some("VpnGateway.Configuring"), 1)).unwrap();
        let other = Params::from_pairs([("VpnGatewayId", "vpn-a")]);
        let named = Params::from_pairs([("VpnGatewayId", "vpn-b")]);
        assert!(faults.take(1, "DeleteVpnGateway", &other).is_none());
        assert!(faults.take(1, "DeleteVpnGateway", &named).is_some());
        assert!(faults.take(1, "DeleteVpnGateway", &named).is_none());
    }

    #[test]
    fn clearing_one_account_keeps_the_others() {
        let faults = Faults::default();
        faults.add(fault(1, "X", None, None, 1)).unwrap();
        faults.add(fault(2, "X", None, None, 1)).unwrap();
        assert_eq!(faults.clear(Some(1)), 1);
        assert_eq!(faults.list(None).len(), 1);
        assert_eq!(faults.clear(None), 1);
    }
}
