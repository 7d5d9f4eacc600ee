//! Prometheus metrics (`GET /metrics`, text format), with `prometheus-client`. One process-wide
//! registry: counters and histograms move where things happen (the request pipeline, the
//! store's writer, the reconciler); gauges of stored state (resources by kind and status, the
//! task queue) are read from the store at each scrape.

use std::sync::atomic::AtomicU64;
use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::api::error::ApiResult;
use crate::store::{now_ms, Store};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    action: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabel {
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    kind: String,
    status: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histograms<ActionLabel>,
    commit_seconds: Histogram,
    commit_group_size: Histogram,
    task_start_delay_seconds: Histogram,
    tasks_queued: Gauge,
    tasks_due: Gauge,
    oldest_due_task_seconds: Gauge<f64, AtomicU64>,
    lifecycle_paused: Gauge,
    dataplane_events: Family<KindLabel, Counter>,
    resources: Family<ResourceLabels, Gauge>,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 8 s.
    Histogram::new(exponential_buckets(0.00025, 2.0, 16))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("gatehouse");
    let m = Metrics {
        requests: Family::default(),
        request_seconds: Family::new_with_constructor(latency_histogram),
        commit_seconds: latency_histogram(),
        commit_group_size: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
        task_start_delay_seconds: latency_histogram(),
        tasks_queued: Gauge::default(),
        tasks_due: Gauge::default(),
        oldest_due_task_seconds: Gauge::default(),
        lifecycle_paused: Gauge::default(),
        dataplane_events: Family::default(),
        resources: Family::default(),
        registry: Registry::default(),
    };
    registry.register("requests", "API requests by action and Code", m.requests.clone());
    registry.register("request_duration_seconds", "API request latency by action", m.request_seconds.clone());
    registry.register(
        "store_commit_duration_seconds",
        "Store group commits, from begin to durable",
        m.commit_seconds.clone(),
    );
    registry.register("store_commit_group_size", "Writes carried by one group commit", m.commit_group_size.clone());
    registry.register(
        "reconciler_task_start_delay_seconds",
        "How long after falling due a lifecycle task step started",
        m.task_start_delay_seconds.clone(),
    );
    registry.register("reconciler_tasks_queued", "Lifecycle tasks queued", m.tasks_queued.clone());
    registry.register("reconciler_tasks_due", "Lifecycle tasks due now", m.tasks_due.clone());
    registry.register(
        "reconciler_oldest_due_task_age_seconds",
        "How long the longest-waiting due task has been due",
        m.oldest_due_task_seconds.clone(),
    );
    registry.register(
        "lifecycle_paused",
        "1 while the control API holds lifecycle transitions",
        m.lifecycle_paused.clone(),
    );
    registry.register("dataplane_events", "Data-plane events recorded, by kind", m.dataplane_events.clone());
    registry.register("resources", "Stored resources by kind and status", m.resources.clone());
    Metrics { registry, ..m }
});

/// One API request: `action` is one the server serves, or `unknown` (so that made-up names
/// cannot grow the series without bound).
pub fn request(action: &str, code: &str, latency: Duration) {
    let action = if crate::actions::named(action) { action } else { "unknown" };
    let m = &*METRICS;
    m.requests.get_or_create(&RequestLabels { action: action.into(), code: code.into() }).inc();
    m.request_seconds.get_or_create(&ActionLabel { action: action.into() }).observe(latency.as_secs_f64());
}

/// One group commit of `size` writes.
pub fn commit(size: usize, took: Duration) {
    METRICS.commit_seconds.observe(took.as_secs_f64());
    METRICS.commit_group_size.observe(size as f64);
}

/// A lifecycle task step started `late_ms` after it fell due.
pub fn task_started(late_ms: i64) {
    METRICS.task_start_delay_seconds.observe(late_ms.max(0) as f64 / 1000.0);
}

/// A data-plane event of `kind` was recorded.
pub fn dataplane_event(kind: &str) {
    METRICS.dataplane_events.get_or_create(&KindLabel { kind: kind.into() }).inc();
}

/// The text exposition, with the stored state read now.
pub fn render(store: &dyn Store, lifecycle_paused: bool) -> ApiResult<String> {
    let m = &*METRICS;
    let now = now_ms();
    let (stats, statuses) = store.read(|tx| Ok((tx.task_stats(now)?, tx.resource_statuses()?)))?;
    m.tasks_queued.set(stats.queued as i64);
    m.tasks_due.set(stats.due as i64);
    m.oldest_due_task_seconds.set(stats.oldest_due_ms.map_or(0.0, |due| (now - due).max(0) as f64 / 1000.0));
    m.lifecycle_paused.set(lifecycle_paused as i64);
    // Kinds and statuses that are gone drop out of the exposition.
    m.resources.clear();
    for (kind, status, n) in statuses {
        m.resources.get_or_create(&ResourceLabels { kind, status }).set(n as i64);
    }
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &m.registry)
        .map_err(|e| crate::api::error::ApiError::internal(format!("encoding metrics: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_labels_in_the_text_format() {
        request("DescribeVpnGateways", "Success", Duration::from_millis(2));
        request("NoSuchAction", "InvalidAction.NotFound", Duration::from_millis(1));
        dataplane_event("tunnel");
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &METRICS.registry).unwrap();
        assert!(out.contains(r#"gatehouse_requests_total{action="DescribeVpnGateways",code="Success"}"#), "{out}");
        assert!(out.contains(r#"gatehouse_requests_total{action="unknown",code="InvalidAction.NotFound"}"#));
        assert!(out.contains(r#"gatehouse_dataplane_events_total{kind="tunnel"}"#));
        assert!(out.contains("gatehouse_request_duration_seconds_bucket"));
        assert!(out.ends_with("# EOF\n"));
    }
}
