//! Gateway mode: every VPN gateway runs in a network namespace of its own (`links`), with its own
//! strongSwan charon (`charon`) driven over VICI (`vici`), and, while it has BGP tunnels or an
//! SSL-VPN server, its own BIRD (`bird`) and openvpn (`openvpn`); all of them are `daemon`s.
//! Namespaces keep tenants apart: two accounts may use the same subnets at once.
//!
//! Each gateway has a supervisor task. It starts charon (or adopts the one an earlier Gatehouse
//! left running), subscribes to its events, and after every event reads charon's SAs and
//! reports the tunnels whose status changed. When charon dies, the supervisor reports its
//! tunnels down, starts a new charon and loads the gateway's whole plan again.
//!
//! `apply` loads what changed (a tunnel whose VICI configuration is the same is left alone, so
//! SAs that are still right survive a Gatehouse restart), unloads what is gone, and starts
//! negotiating the tunnels that take effect immediately.

mod bird;
mod charon;
mod daemon;
mod health;
mod links;
mod openvpn;
mod routes;
mod vici;

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::{select_all, StreamExt};
use serde::de::IgnoredAny;
use tokio::sync::{mpsc::UnboundedSender, watch};

pub use charon::{detect_backend, EspBackend};

use ipnet::Ipv4Net;

use super::remote_access::{IpsecServerReport, SslVpnPlan, SslVpnReport};
use super::{
    next_seq, BgpReport, ConnectionReport, DataPlane, DataPlaneError, Event, GatewayPlan, GatewayReport, HealthStatus,
    RunningGateway, TunnelPlan, TunnelStatus,
};

/// What an operator sets for gateway mode.
#[derive(Clone, Debug)]
pub struct NetnsConfig {
    /// Gateways' files: `<dir>/<gateway id>/`.
    pub dir: PathBuf,
    /// Namespaces are named `<prefix><gateway id>`.
    pub prefix: String,
    pub uplink_bridge: String,
    pub uplink_gateway: Option<Ipv4Addr>,
    /// VPC ID → its host bridge.
    pub vpc_bridges: BTreeMap<String, String>,
    pub public_prefix_len: u8,
    pub private_prefix_len: u8,
    pub backend: EspBackend,
}

/// How long charon may take to start answering.
const CHARON_START: Duration = Duration::from_secs(10);
/// How long `apply` waits for a tunnel it starts negotiating before it reports.
const INITIATE_WAIT: Duration = Duration::from_millis(1500);
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(5);

pub struct Netns {
    config: NetnsConfig,
    events: UnboundedSender<Event>,
    gateways: Mutex<HashMap<String, Arc<Gateway>>>,
}

/// One gateway's runtime state.
struct Gateway {
    id: String,
    account_id: i64,
    ns: String,
    /// Where routes into the tunnels lead: `ipsec0` (kernel-libipsec) or the uplink (kernel ESP).
    esp_dev: &'static str,
    charon: charon::Charon,
    /// The last plan applied: what a restarted charon is loaded with.
    plan: Mutex<Option<GatewayPlan>>,
    /// What charon has loaded, per tunnel: the configuration it was given.
    loaded: Mutex<HashMap<String, vici::Conn>>,
    /// The status last reported per tunnel.
    reported: Mutex<HashMap<String, TunnelStatus>>,
    /// Bumped each time a charon is up and subscribed; 0 until the first.
    ready: watch::Sender<u64>,
    /// Serializes applies and reloads of this gateway.
    apply_lock: tokio::sync::Mutex<()>,
    stop: watch::Sender<bool>,
    /// The supervisor task, awaited when the gateway goes (so it cannot start a charon after).
    supervisor: Mutex<Option<tokio::task::JoinHandle<()>>>,
    health: health::Prober,
    /// The BGP speaker, and what its sessions last reported per connection.
    bird: bird::Bird,
    bgp_seen: Mutex<HashMap<String, BgpReport>>,
    /// The SSL-VPN server, and what of it was last reported.
    openvpn: openvpn::OpenVpn,
    ssl_seen: Mutex<SslSeen>,
    /// The IPsec server's clients last reported.
    server_clients: Mutex<Option<u32>>,
}

/// How far the SSL-VPN server's log has been reported, and its clients then.
#[derive(Default)]
struct SslSeen {
    log_offset: u64,
    connections: u32,
}

impl Netns {
    pub fn new(config: NetnsConfig, events: UnboundedSender<Event>) -> Result<Self, DataPlaneError> {
        charon::check_installed()?;
        std::fs::create_dir_all(&config.dir)
            .map_err(|e| DataPlaneError::new(format!("{}: {e}", config.dir.display())))?;
        Ok(Netns { config, events, gateways: Mutex::new(HashMap::new()) })
    }

    fn ns(&self, gateway_id: &str) -> String {
        format!("{}{gateway_id}", self.config.prefix)
    }

    /// The gateway's runtime, started (namespace, links, supervised charon) on first use.
    async fn gateway(&self, plan: &GatewayPlan) -> Result<Arc<Gateway>, DataPlaneError> {
        if let Some(gw) = self.gateways.lock().expect("gateways").get(&plan.gateway_id) {
            return Ok(gw.clone());
        }
        let c = &self.config;
        let vpc_bridge = c.vpc_bridges.get(&plan.vpc_id).ok_or_else(|| {
            DataPlaneError::new(format!("VPC {} has no bridge on this host (--vpc-bridge)", plan.vpc_id))
        })?;
        let ns = self.ns(&plan.gateway_id);
        links::ensure_namespace(&ns).await?;
        for (i, ip) in plan.public_ips.iter().enumerate() {
            let name = format!("pub{i}");
            let link =
                links::Link { name: &name, bridge: &c.uplink_bridge, addr: *ip, prefix_len: c.public_prefix_len };
            links::ensure_link(&ns, &format!("u{i}"), &link).await?;
            if i > 0 {
                links::ensure_source_route(&ns, i, &link, c.uplink_gateway).await?;
            }
        }
        let vpc =
            links::Link { name: "vpc0", bridge: vpc_bridge, addr: plan.intranet_ip, prefix_len: c.private_prefix_len };
        links::ensure_link(&ns, "v", &vpc).await?;
        if let Some(via) = c.uplink_gateway {
            links::ensure_default_route(&ns, via).await?;
        }
        let gw = Arc::new(Gateway {
            id: plan.gateway_id.clone(),
            account_id: plan.account_id,
            charon: charon::Charon::new(c.dir.join(&plan.gateway_id), ns.clone()),
            ns: ns.clone(),
            esp_dev: if c.backend == EspBackend::Libipsec { "ipsec0" } else { "pub0" },
            plan: Mutex::new(None),
            loaded: Mutex::new(HashMap::new()),
            reported: Mutex::new(HashMap::new()),
            ready: watch::channel(0).0,
            apply_lock: tokio::sync::Mutex::new(()),
            stop: watch::channel(false).0,
            supervisor: Mutex::new(None),
            health: health::Prober::new(ns.clone(), plan.account_id, plan.gateway_id.clone(), self.events.clone()),
            bird: bird::Bird::new(&c.dir.join(&plan.gateway_id), ns.clone()),
            bgp_seen: Mutex::new(HashMap::new()),
            openvpn: openvpn::OpenVpn::new(&c.dir.join(&plan.gateway_id), ns),
            ssl_seen: Mutex::new(SslSeen::default()),
            server_clients: Mutex::new(None),
        });
        let mut gateways = self.gateways.lock().expect("gateways");
        // Another apply may have won the race: keep the first.
        if let Some(existing) = gateways.get(&plan.gateway_id) {
            return Ok(existing.clone());
        }
        gateways.insert(plan.gateway_id.clone(), gw.clone());
        tokio::spawn(watch_daemons(gw.clone(), self.events.clone()));
        let task = tokio::spawn(supervise(gw.clone(), c.backend, self.events.clone()));
        *gw.supervisor.lock().expect("supervisor") = Some(task);
        Ok(gw)
    }
}

#[async_trait]
impl DataPlane for Netns {
    async fn apply(&self, plan: GatewayPlan) -> Result<GatewayReport, DataPlaneError> {
        let gw = self.gateway(&plan).await?;
        // Wait for the supervisor to have a charon up.
        let mut ready = gw.ready.subscribe();
        tokio::time::timeout(CHARON_START, ready.wait_for(|n| *n > 0))
            .await
            .map_err(|_| DataPlaneError::new(format!("charon of {} did not come up", gw.id)))?
            .map_err(|_| DataPlaneError::new("the gateway's supervisor stopped"))?;
        let _serial = gw.apply_lock.lock().await;
        *gw.plan.lock().expect("plan") = Some(plan.clone());
        let errors = load(&gw, &plan, self.config.backend).await?;
        let sas = vici::sas(&gw.charon.socket).await?;
        program_routing(&gw, &plan, |t| sas.status(t) == TunnelStatus::IpsecSaEstablished).await?;
        let sources: Vec<Ipv4Net> =
            plan.connections.iter().filter_map(|c| c.health_check.as_ref().map(|h| h.sip.into())).collect();
        links::ensure_addresses(&gw.ns, "lo", "probe", &sources).await?;
        gw.health.set(&plan);
        let (sessions, bgp_errors) = apply_bgp(&gw, &plan).await;
        let report = plan
            .connections
            .iter()
            .map(|c| {
                let health = if c.health_check.is_some() { gw.health.status(&c.id) } else { HealthStatus::Success };
                let error = errors.get(&c.id).or(bgp_errors.get(&c.id)).cloned();
                ConnectionReport::new(c, |t| sas.status(t), |t| sessions.up(t), sessions.learned(c), health, error)
            })
            .collect();
        let ssl_vpn = match &plan.ssl_vpn {
            Some(s) => {
                let local = plan.public_ips.first().copied().unwrap_or(plan.intranet_ip);
                let error = gw.openvpn.apply(s, local).await.err().map(|e| e.to_string());
                Some(SslVpnReport { error, ..ssl_vpn_news(&gw, s, true).await.unwrap_or_default() })
            }
            None => {
                gw.openvpn.stop().await;
                *gw.ssl_seen.lock().expect("ssl") = SslSeen::default();
                None
            }
        };
        let ipsec_server = plan.ipsec_server.as_ref().map(|s| {
            let online_clients = sas.established(vici::SERVER);
            *gw.server_clients.lock().expect("clients") = Some(online_clients);
            IpsecServerReport { id: s.id.clone(), online_clients, error: None }
        });
        Ok(GatewayReport { connections: report, ssl_vpn, ipsec_server })
    }

    async fn remove(&self, gateway_id: &str) -> Result<(), DataPlaneError> {
        let gw = self.gateways.lock().expect("gateways").remove(gateway_id);
        if let Some(gw) = &gw {
            let _ = gw.stop.send(true);
            gw.health.stop();
            let task = gw.supervisor.lock().expect("supervisor").take();
            if let Some(task) = task {
                let _ = tokio::time::timeout(CHARON_START, task).await;
            }
        }
        let ns = self.ns(gateway_id);
        let dir = self.config.dir.join(gateway_id);
        let charon = charon::Charon::new(dir.clone(), ns.clone());
        charon.stop().await;
        openvpn::OpenVpn::new(&dir, ns.clone()).stop().await;
        bird::Bird::new(&dir, ns.clone()).stop().await;
        links::remove_namespace(&ns).await?;
        let _ = std::fs::remove_file(&charon.socket);
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    async fn running(&self) -> Result<Vec<RunningGateway>, DataPlaneError> {
        let mut ids: Vec<String> = links::namespaces(&self.config.prefix)
            .into_iter()
            .map(|ns| ns[self.config.prefix.len()..].to_string())
            .collect();
        // A directory whose namespace is gone still holds a charon's files.
        if let Ok(dir) = std::fs::read_dir(&self.config.dir) {
            ids.extend(dir.filter_map(|e| e.ok()?.file_name().into_string().ok()));
        }
        // Only names Gatehouse gives: other namespaces that share the prefix are not ours.
        ids.retain(|id| is_gateway_id(id));
        ids.sort();
        ids.dedup();
        Ok(ids.into_iter().map(|gateway_id| RunningGateway { gateway_id }).collect())
    }

    async fn shutdown(&self) {
        for gw in self.gateways.lock().expect("gateways").values() {
            let _ = gw.stop.send(true);
            gw.health.stop();
        }
    }

    fn stateful(&self) -> bool {
        true
    }
}

/// Whether `s` has the shape of a VPN gateway ID (`vpn-` and lowercase letters and digits).
fn is_gateway_id(s: &str) -> bool {
    s.strip_prefix("vpn-")
        .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

/// Loads the plan into the gateway's charon: connections that changed are (re)loaded (a changed
/// IKE side renegotiates its IKE SA, a changed or removed child its CHILD_SAs), what is gone is
/// unloaded, tunnels that take effect now are negotiated. Returns per-connection errors.
async fn load(
    gw: &Gateway,
    plan: &GatewayPlan,
    backend: EspBackend,
) -> Result<HashMap<String, String>, DataPlaneError> {
    let socket = gw.charon.socket.clone();
    let mut client = vici::connect(&socket).await?;
    let mut errors = HashMap::new();
    let wanted = vici::conns(&plan.connections, backend == EspBackend::Libipsec);
    let mut reloaded_children = Vec::new();
    for (name, (conn, first)) in &wanted {
        let old = gw.loaded.lock().expect("loaded").get(name).cloned();
        if old.as_ref() == Some(conn) {
            continue;
        }
        if let Err(e) = vici::load(&mut client, name, first, conn).await {
            for c in plan.connections.iter().filter(|c| c.tunnels.iter().any(|t| &vici::ike_name(t) == name)) {
                errors.insert(c.id.clone(), e.to_string());
            }
            continue;
        }
        match &old {
            // SAs negotiated under the old IKE configuration (a new PSK, new algorithms) go.
            Some(old) if !old.same_ike(conn) => vici::terminate(&mut client, name).await?,
            Some(old) => {
                for (child, config) in old.children.iter() {
                    if conn.children.get(child) != Some(config) {
                        vici::terminate_child(&mut client, child).await?;
                    }
                }
            }
            None => {}
        }
        reloaded_children.extend(
            conn.children
                .iter()
                .filter(|(child, config)| {
                    old.as_ref().is_none_or(|o| !o.same_ike(conn) || o.children.get(*child) != Some(*config))
                })
                .map(|(child, _)| child.clone()),
        );
        gw.loaded.lock().expect("loaded").insert(name.clone(), conn.clone());
    }
    // The IPsec server: (re)loaded when it changed; with EffectImmediately its clients' SAs are
    // torn down to negotiate again with the new settings.
    if let (Some(s), Some(local)) = (&plan.ipsec_server, plan.public_ips.first()) {
        let conn = vici::server_conn(s, *local, backend == EspBackend::Libipsec);
        let old = gw.loaded.lock().expect("loaded").get(vici::SERVER).cloned();
        if old.as_ref() != Some(&conn) {
            vici::load_server(&mut client, s, &conn).await?;
            if old.is_some() && s.effect_immediately {
                vici::terminate(&mut client, vici::SERVER).await?;
            }
            gw.loaded.lock().expect("loaded").insert(vici::SERVER.to_string(), conn);
        }
    }
    // Whatever charon runs that the plan does not hold goes (also connections left from before).
    let mut gone: Vec<String> = vici::loaded_conns(&mut client).await?;
    gone.extend(gw.loaded.lock().expect("loaded").keys().cloned());
    gone.sort();
    gone.dedup();
    let keep = |n: &String| wanted.contains_key(n) || (n == vici::SERVER && plan.ipsec_server.is_some());
    for name in gone.into_iter().filter(|n| !keep(n)) {
        if name == vici::SERVER {
            vici::unload_server(&mut client).await?;
        } else {
            vici::unload(&mut client, &name).await?;
        }
        gw.loaded.lock().expect("loaded").remove(&name);
    }
    // Negotiate what takes effect now and was (re)loaded or asked to renegotiate, unless it is up
    // already (that would only add a duplicate SA).
    let sas = vici::sas(&socket).await?;
    let mut negotiate = Vec::new();
    for c in plan.connections.iter().filter(|c| c.effect_immediately) {
        for t in &c.tunnels {
            for (child, _, _) in vici::children(c, t) {
                let fresh = reloaded_children.contains(&child);
                if (fresh || c.renegotiate) && sas.status(t) != TunnelStatus::IpsecSaEstablished {
                    negotiate.push((vici::ike_name(t), child));
                }
            }
        }
    }
    let initiations = negotiate.into_iter().map(|(ike, child)| {
        let socket = socket.clone();
        async move { vici::initiate(&socket, &ike, &child, INITIATE_WAIT).await }
    });
    for outcome in futures_util::future::join_all(initiations).await {
        if let Err(e) = outcome {
            tracing::debug!(gateway = gw.id, error = %e, "initiate");
        }
    }
    Ok(errors)
}

/// Reads charon's SAs and reports every tunnel of the plan whose status changed.
async fn refresh(gw: &Gateway, events: &UnboundedSender<Event>, cause: &str) {
    let sas = match vici::sas(&gw.charon.socket).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(gateway = gw.id, error = %e, "reading SAs");
            return;
        }
    };
    report_server_clients(gw, events, sas.established(vici::SERVER));
    if report_changes(gw, events, cause, |t| sas.status(t)) {
        // Routes follow their tunnels (a standby takes over while the active one is down).
        let _serial = gw.apply_lock.lock().await;
        let Some(plan) = gw.plan.lock().expect("plan").clone() else { return };
        if let Err(e) = program_routing(gw, &plan, |t| sas.status(t) == TunnelStatus::IpsecSaEstablished).await {
            tracing::warn!(gateway = gw.id, error = %e, "reprogramming routes failed");
        }
    }
}

/// Puts the BGP tunnels' LocalBgpIp on the ESP device (a restarted charon makes a new one) and
/// programs the routes that can carry traffic (`up`: the tunnels established).
async fn program_routing(
    gw: &Gateway,
    plan: &GatewayPlan,
    up: impl Fn(&TunnelPlan) -> bool,
) -> Result<(), DataPlaneError> {
    let tunnel_ips: Vec<Ipv4Net> = plan
        .connections
        .iter()
        .flat_map(|c| c.tunnels.iter().filter_map(|t| t.bgp.as_ref()))
        .filter_map(|b| Ipv4Net::new(b.local_ip, b.tunnel_cidr.prefix_len()).ok())
        .collect();
    links::ensure_addresses(&gw.ns, gw.esp_dev, "bgp", &tunnel_ips).await?;
    routes::program(&gw.ns, gw.esp_dev, &routes::usable(plan, up), routes::main_first(plan)).await
}

/// Brings BIRD to the plan; its sessions now (none when it does not run), and the connections
/// whose BGP could not be configured, with why.
async fn apply_bgp(gw: &Gateway, plan: &GatewayPlan) -> (bird::Sessions, BTreeMap<String, String>) {
    let bgp_connections = plan.connections.iter().filter(|c| c.runs_bgp());
    let errors = match gw.bird.apply(plan).await {
        Ok(errors) => errors,
        Err(e) => bgp_connections.map(|c| (c.id.clone(), e.to_string())).collect(),
    };
    let sessions = match gw.bird.running_pid().await {
        Some(_) => gw.bird.sessions().await.unwrap_or_default(),
        None => bird::Sessions::default(),
    };
    let mut seen = gw.bgp_seen.lock().expect("bgp");
    *seen = plan
        .connections
        .iter()
        .filter_map(|c| bgp_report(c, &sessions))
        .map(|r| (r.connection_id.clone(), r))
        .collect();
    drop(seen);
    (sessions, errors)
}

/// What a connection's BGP sessions say; None for a connection without BGP.
fn bgp_report(c: &super::ConnectionPlan, sessions: &bird::Sessions) -> Option<BgpReport> {
    let tunnels: Vec<(String, super::BgpStatus)> = c
        .tunnels
        .iter()
        .filter(|t| t.bgp.is_some())
        .map(|t| (t.id.clone(), t.bgp_status(|t| sessions.up(t))))
        .collect();
    (!tunnels.is_empty()).then(|| BgpReport {
        connection_id: c.id.clone(),
        tunnels,
        learned_routes: sessions.learned(c),
    })
}

/// Reports the IPsec server's clients when their number changed.
fn report_server_clients(gw: &Gateway, events: &UnboundedSender<Event>, clients: u32) {
    let Some(id) = gw.plan.lock().expect("plan").as_ref().and_then(|p| p.ipsec_server.as_ref().map(|s| s.id.clone()))
    else {
        return;
    };
    if gw.server_clients.lock().expect("clients").replace(clients) == Some(clients) {
        return;
    }
    let report = IpsecServerReport { id, online_clients: clients, error: None };
    let _ = events.send(Event::IpsecServer { account_id: gw.account_id, gateway_id: gw.id.clone(), report });
}

fn report_changes(
    gw: &Gateway,
    events: &UnboundedSender<Event>,
    cause: &str,
    status_of: impl Fn(&TunnelPlan) -> TunnelStatus,
) -> bool {
    let Some(plan) = gw.plan.lock().expect("plan").clone() else { return false };
    let mut reported = gw.reported.lock().expect("reported");
    let mut changed = false;
    for c in &plan.connections {
        for t in &c.tunnels {
            let status = status_of(t);
            if reported.insert(t.id.clone(), status) == Some(status) {
                continue;
            }
            changed = true;
            let _ = events.send(Event::Tunnel {
                account_id: gw.account_id,
                gateway_id: gw.id.clone(),
                connection_id: c.id.clone(),
                tunnel_id: t.id.clone(),
                seq: next_seq(),
                status,
                cause: cause.to_string(),
            });
        }
    }
    changed
}

/// Keeps the gateway's charon running: starts or adopts it, follows its events, and when it
/// dies reports the tunnels down, restarts it and loads the last plan again.
async fn supervise(gw: Arc<Gateway>, backend: EspBackend, events: UnboundedSender<Event>) {
    let mut stop = gw.stop.subscribe();
    let mut backoff = Duration::from_millis(100);
    let mut generation = 0u64;
    while !*stop.borrow() {
        let pid = match gw.charon.running_pid().await {
            Some(pid) => {
                tracing::info!(gateway = gw.id, pid, "adopting the running charon");
                pid
            }
            None => match gw.charon.start(backend).await {
                Ok(pid) => {
                    tracing::info!(gateway = gw.id, pid, "started charon");
                    pid
                }
                Err(e) => {
                    tracing::error!(gateway = gw.id, error = %e, "starting charon failed");
                    wait(&mut stop, &mut backoff).await;
                    continue;
                }
            },
        };
        if let Err(e) = gw.charon.wait_ready(pid, CHARON_START).await {
            tracing::error!(gateway = gw.id, error = %e, "charon did not come up");
            wait(&mut stop, &mut backoff).await;
            continue;
        }
        let mut client = match vici::connect(&gw.charon.socket).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(gateway = gw.id, error = %e, "subscribing to charon's events failed");
                wait(&mut stop, &mut backoff).await;
                continue;
            }
        };
        let changes: Vec<_> = vici::EVENTS
            .iter()
            .map(|name| client.subscribe::<IgnoredAny>(name).map(move |r| r.map(|_| Signal::Changed(name))).boxed())
            .collect();
        // kernel-libipsec raises no acquire for a trap policy: the packet it drops for want of an
        // SA, which it logs with the child's reqid, starts the negotiation instead.
        let drops = (backend == EspBackend::Libipsec).then(|| {
            client
                .subscribe::<vici::LogLine>("log")
                .map(|r| r.map(|line| vici::dropped_reqid(&line.msg).map_or(Signal::Other, Signal::Dropped)))
                .boxed()
        });
        let mut stream = select_all(changes.into_iter().chain(drops));
        // A new charon knows nothing: give it the last plan (an adopted one is checked by the
        // next apply, which loads only what differs).
        if generation > 0 {
            gw.loaded.lock().expect("loaded").clear();
            let plan = gw.plan.lock().expect("plan").clone();
            if let Some(plan) = plan {
                let _serial = gw.apply_lock.lock().await;
                let mut plan = plan;
                for c in &mut plan.connections {
                    c.renegotiate = c.effect_immediately;
                }
                if let Err(e) = load(&gw, &plan, backend).await {
                    tracing::error!(gateway = gw.id, error = %e, "reloading the restarted charon failed");
                }
            }
        }
        generation += 1;
        gw.ready.send_replace(generation);
        refresh(&gw, &events, "charon started").await;
        let mut liveness = tokio::time::interval(Duration::from_secs(1));
        let mut triggers = Triggers::default();
        loop {
            tokio::select! {
                event = stream.next() => match event {
                    Some(Ok(Signal::Changed(name))) => {
                        backoff = Duration::from_millis(100);
                        refresh(&gw, &events, name).await;
                    }
                    Some(Ok(Signal::Dropped(reqid))) => triggers.fire(&gw, reqid),
                    Some(Ok(Signal::Other)) => {}
                    _ => break,
                },
                _ = liveness.tick() => if !daemon::alive(pid) { break },
                _ = stop.changed() => return,
            }
        }
        tracing::warn!(gateway = gw.id, pid, "charon exited; restarting it");
        let _ = report_changes(&gw, &events, "charon exited", |_| TunnelStatus::IkeSaNotEstablished);
        wait(&mut stop, &mut backoff).await;
    }
}

/// What the SSL-VPN server has to say since it was last asked: its new log lines and its clients.
/// None when nothing changed (unless `always`).
async fn ssl_vpn_news(gw: &Gateway, plan: &SslVpnPlan, always: bool) -> Option<SslVpnReport> {
    let (id, connections) = (&plan.id, gw.openvpn.connections(plan));
    let offset = gw.ssl_seen.lock().expect("ssl").log_offset;
    let (log, offset) = gw.openvpn.log_since(offset);
    let mut seen = gw.ssl_seen.lock().expect("ssl");
    let changed = !log.is_empty() || seen.connections != connections;
    *seen = SslSeen { log_offset: offset, connections };
    (changed || always).then(|| SslVpnReport { id: id.to_string(), connections, log, error: None })
}

/// How often the SSL-VPN server and the BGP sessions are looked at between applies.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Keeps the gateway's openvpn and BIRD running (a dead one is started again with the last plan)
/// and reports the SSL-VPN server's clients and log, and the BGP sessions, as they change.
async fn watch_daemons(gw: Arc<Gateway>, events: UnboundedSender<Event>) {
    let mut stop = gw.stop.subscribe();
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let Some(plan) = gw.plan.lock().expect("plan").clone() else { continue };
        watch_ssl_vpn(&gw, &plan, &events).await;
        watch_bgp(&gw, &plan, &events).await;
    }
}

async fn watch_ssl_vpn(gw: &Gateway, plan: &GatewayPlan, events: &UnboundedSender<Event>) {
    let (Some(server), Some(local)) = (&plan.ssl_vpn, plan.public_ips.first().copied()) else { return };
    {
        let _serial = gw.apply_lock.lock().await;
        if gw.openvpn.running_pid().await.is_none() {
            tracing::warn!(gateway = gw.id, "openvpn is not running; starting it");
            if let Err(e) = gw.openvpn.apply(server, local).await {
                tracing::error!(gateway = gw.id, error = %e, "starting openvpn failed");
            }
        }
    }
    if let Some(report) = ssl_vpn_news(gw, server, false).await {
        let _ = events.send(Event::SslVpn { account_id: gw.account_id, gateway_id: gw.id.clone(), report });
    }
}

async fn watch_bgp(gw: &Gateway, plan: &GatewayPlan, events: &UnboundedSender<Event>) {
    if !plan.connections.iter().any(super::ConnectionPlan::runs_bgp) {
        return;
    }
    {
        let _serial = gw.apply_lock.lock().await;
        if gw.bird.running_pid().await.is_none() {
            tracing::warn!(gateway = gw.id, "bird is not running; starting it");
            if let Err(e) = gw.bird.apply(plan).await {
                tracing::error!(gateway = gw.id, error = %e, "starting bird failed");
                return;
            }
        }
    }
    let sessions = match gw.bird.sessions().await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(gateway = gw.id, error = %e, "reading BGP sessions");
            return;
        }
    };
    for report in plan.connections.iter().filter_map(|c| bgp_report(c, &sessions)) {
        let seen = gw.bgp_seen.lock().expect("bgp").insert(report.connection_id.clone(), report.clone());
        if seen.as_ref() != Some(&report) {
            let _ = events.send(Event::Bgp { account_id: gw.account_id, gateway_id: gw.id.clone(), report });
        }
    }
}

/// What a charon's event stream says.
enum Signal {
    /// Tunnel statuses may have changed (the event's name).
    Changed(&'static str),
    /// kernel-libipsec dropped an outbound packet for want of an SA of this child (reqid).
    Dropped(u32),
    Other,
}

/// How often traffic may start negotiating one child.
const TRIGGER_INTERVAL: Duration = Duration::from_secs(2);

/// Traffic-triggered negotiation (what trap policies do with kernel ESP).
#[derive(Default)]
struct Triggers(HashMap<u32, std::time::Instant>);

impl Triggers {
    fn fire(&mut self, gw: &Arc<Gateway>, reqid: u32) {
        if self.0.get(&reqid).is_some_and(|t| t.elapsed() < TRIGGER_INTERVAL) {
            return;
        }
        self.0.insert(reqid, std::time::Instant::now());
        let target = gw.loaded.lock().expect("loaded").iter().find_map(|(ike, conn)| {
            conn.children.keys().find(|c| vici::reqid(c) == reqid).map(|c| (ike.clone(), c.clone()))
        });
        let Some((ike, child)) = target else { return };
        let socket = gw.charon.socket.clone();
        tokio::spawn(async move {
            tracing::debug!(ike, child, "traffic starts negotiation");
            let _ = vici::initiate(&socket, &ike, &child, Duration::ZERO).await;
        });
    }
}

/// Sleeps `backoff` (doubling it for next time) unless told to stop.
async fn wait(stop: &mut watch::Receiver<bool>, backoff: &mut Duration) {
    tokio::select! {
        _ = tokio::time::sleep(*backoff) => {}
        _ = stop.changed() => {}
    }
    *backoff = (*backoff * 2).min(RESTART_BACKOFF_MAX);
}
