//! Connection health checks in gateway mode: real probes (ICMP echo) from the check's source
//! address to its destination, through the tunnel, at its interval. `retry` probes lost in a
//! row make the check `failed`; one answered probe makes it `success` again. Each change is
//! reported as an event. The source address sits on the namespace's loopback (see `links`),
//! inside the connection's local subnet, so the probe matches the tunnel's traffic selectors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use crate::dataplane::{Event, GatewayPlan, HealthProbe, HealthStatus};

pub struct Prober {
    ns: String,
    account_id: i64,
    gateway_id: String,
    events: UnboundedSender<Event>,
    /// Per connection: its probe, the task running it, and the last status.
    checks: Mutex<HashMap<String, (HealthProbe, JoinHandle<()>)>>,
    statuses: Arc<Mutex<HashMap<String, HealthStatus>>>,
}

impl Prober {
    pub fn new(ns: String, account_id: i64, gateway_id: String, events: UnboundedSender<Event>) -> Self {
        Prober { ns, account_id, gateway_id, events, checks: Mutex::default(), statuses: Arc::default() }
    }

    /// Runs exactly the plan's health checks (a changed check restarts).
    pub fn set(&self, plan: &GatewayPlan) {
        let wanted: HashMap<&str, &HealthProbe> =
            plan.connections.iter().filter_map(|c| Some((c.id.as_str(), c.health_check.as_ref()?))).collect();
        let mut checks = self.checks.lock().expect("checks");
        checks.retain(|id, (probe, task)| {
            let keep = wanted.get(id.as_str()) == Some(&&*probe);
            if !keep {
                task.abort();
                self.statuses.lock().expect("statuses").remove(id);
            }
            keep
        });
        for (id, probe) in wanted {
            if checks.contains_key(id) {
                continue;
            }
            let task = tokio::spawn(run(
                self.ns.clone(),
                probe.clone(),
                self.statuses.clone(),
                Event::Health {
                    account_id: self.account_id,
                    gateway_id: self.gateway_id.clone(),
                    connection_id: id.to_string(),
                    status: HealthStatus::Unknown,
                },
                self.events.clone(),
            ));
            checks.insert(id.to_string(), (probe.clone(), task));
        }
    }

    /// The check's status so far (`Unknown` before its first verdict).
    pub fn status(&self, connection_id: &str) -> HealthStatus {
        self.statuses.lock().expect("statuses").get(connection_id).copied().unwrap_or_default()
    }

    pub fn stop(&self) {
        for (_, (_, task)) in self.checks.lock().expect("checks").drain() {
            task.abort();
        }
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Probes forever; reports each change of verdict.
async fn run(
    ns: String,
    probe: HealthProbe,
    statuses: Arc<Mutex<HashMap<String, HealthStatus>>>,
    template: Event,
    events: UnboundedSender<Event>,
) {
    let Event::Health { connection_id, .. } = &template else { return };
    let connection_id = connection_id.clone();
    let mut interval = tokio::time::interval(Duration::from_secs(u64::from(probe.interval_s.max(1))));
    let mut lost = 0u32;
    loop {
        interval.tick().await;
        let answered = ping(&ns, &probe).await;
        lost = if answered { 0 } else { lost + 1 };
        let verdict = if answered {
            HealthStatus::Success
        } else if lost >= probe.retry.max(1) {
            HealthStatus::Failed
        } else {
            continue;
        };
        let previous = statuses.lock().expect("statuses").insert(connection_id.clone(), verdict);
        if previous != Some(verdict) {
            let mut event = template.clone();
            if let Event::Health { status, .. } = &mut event {
                *status = verdict;
            }
            let _ = events.send(event);
        }
    }
}

/// One echo from the probe's source to its destination inside the namespace, waiting up to 1 s.
async fn ping(ns: &str, probe: &HealthProbe) -> bool {
    let (sip, dip) = (probe.sip.to_string(), probe.dip.to_string());
    let args = ["netns", "exec", ns, "ping", "-n", "-q", "-c", "1", "-W", "1", "-I", &sip, &dip];
    super::links::run("ip", &args).await.is_ok()
}
