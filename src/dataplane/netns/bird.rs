//! The gateway's BGP speaker: one BIRD 2 per gateway namespace, running while some tunnel of the
//! gateway runs BGP. Its files are in `<gateway dir>/bird/`: `bird.conf` (written from the plan;
//! it holds AuthKeys, and like every file of ours it is 0600), `bird.pid` (written by
//! Gatehouse), `bird.log`, and the control socket `bird.ctl`.
//!
//! Each BGP tunnel is one `bgp` protocol named after the tunnel (`t_<id>`), from the tunnel's
//! LocalBgpIp and the connection's LocalAsn to the customer's address in the TunnelCidr and the
//! customer gateway's ASN (with its AuthKey as the TCP MD5 password). It takes whatever the
//! customer announces — the `kernel` protocol installs it into the namespace's main table, so
//! forwarding follows it — and announces the gateway's VPC side: the subnet of `vpc0` and the
//! connections' LocalSubnet other than 0.0.0.0/0.
//!
//! A session that goes down withdraws its routes at once (graceful restart is off): a dead
//! tunnel is no path, and the API must not show one.
//!
//! A changed configuration is applied with `configure` over the control socket: BIRD restarts
//! only the protocols that changed, so the other sessions stay established. Sessions and learned
//! routes are read over the same socket, in BIRD's control protocol (numbered reply lines).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::daemon::{self, alive, Daemon};
use crate::dataplane::{ConnectionPlan, DataPlaneError, GatewayPlan, TunnelPlan};

/// How long one exchange over the control socket may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long BIRD may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// BGP timers: a keepalive every 10 s, a silent peer is down after 30 s; a new session tries to
/// connect after 1 s (BIRD's default is 5) and again every 5 s.
const KEEPALIVE_S: u32 = 10;
const HOLD_S: u32 = 30;
const CONNECT_DELAY_S: u32 = 1;
const CONNECT_RETRY_S: u32 = 5;

pub struct Bird {
    dir: PathBuf,
    socket: PathBuf,
    daemon: Daemon,
}

fn err(what: &str, e: impl std::fmt::Display) -> DataPlaneError {
    DataPlaneError::new(format!("bird {what}: {e}"))
}

/// The BIRD protocol of a tunnel (names take letters, digits and `_`).
pub fn protocol(t: &TunnelPlan) -> String {
    let id: String = t.id.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("t_{id}")
}

/// The configuration for `plan`, and the connections whose BGP cannot be configured (with why).
/// None when no tunnel of the plan runs BGP.
pub fn config(plan: &GatewayPlan, log: &Path) -> Option<(String, BTreeMap<String, String>)> {
    let bgp_tunnels: Vec<(&ConnectionPlan, &TunnelPlan)> = plan
        .connections
        .iter()
        .flat_map(|c| c.tunnels.iter().map(move |t| (c, t)))
        .filter(|(_, t)| t.bgp.is_some())
        .collect();
    if bgp_tunnels.is_empty() {
        return None;
    }
    let router_id = plan.public_ips.first().copied().unwrap_or(plan.intranet_ip);
    let mut out = String::new();
    let mut errors = BTreeMap::new();
    let _ = writeln!(out, "# Written by Gatehouse for gateway {}; rewritten at every change.", plan.gateway_id);
    let _ = writeln!(out, "log \"{}\" all;", log.display());
    let _ = writeln!(out, "router id {router_id};");
    let _ = writeln!(out, "protocol device {{ scan time 5; }}");
    // The VPC side: vpc0's subnet, and what the connections name as theirs.
    let _ = writeln!(out, "protocol direct vpc {{ ipv4; interface \"vpc0\"; }}");
    let local: BTreeSet<Ipv4Net> = bgp_tunnels
        .iter()
        .flat_map(|(c, _)| c.local_subnets.iter().map(|n| n.trunc()))
        .filter(|n| n.prefix_len() > 0)
        .collect();
    if !local.is_empty() {
        let _ = writeln!(out, "protocol static local_subnets {{");
        let _ = writeln!(out, "  ipv4;");
        for n in &local {
            let _ = writeln!(out, "  route {n} via \"vpc0\";");
        }
        let _ = writeln!(out, "}}");
    }
    // Learned routes go into the namespace's main table; nothing else does.
    let _ = writeln!(out, "protocol kernel {{ ipv4 {{ import none; export where source = RTS_BGP; }}; }}");
    for (c, t) in bgp_tunnels {
        let b = t.bgp.as_ref().expect("filtered on BGP");
        let Some(peer_asn) = b.peer_asn else {
            errors.insert(c.id.clone(), "the customer gateway has no ASN: BGP cannot run".into());
            continue;
        };
        // BIRD's strings have no escapes.
        if b.auth_key.as_ref().is_some_and(|k| k.expose().contains('"')) {
            errors.insert(c.id.clone(), "BIRD cannot take an AuthKey with a double quote".into());
            continue;
        }
        let _ = writeln!(out, "protocol bgp {} {{", protocol(t));
        let _ = writeln!(out, "  description \"{} {}\";", c.id, t.id);
        let _ = writeln!(out, "  local {} as {};", b.local_ip, b.local_asn);
        let _ = writeln!(out, "  neighbor {} as {peer_asn};", b.peer_ip);
        if let Some(key) = &b.auth_key {
            let _ = writeln!(out, "  password \"{}\";", key.expose());
        }
        let _ = writeln!(
            out,
            "  hold time {HOLD_S}; keepalive time {KEEPALIVE_S}; connect delay time {CONNECT_DELAY_S}; connect retry time {CONNECT_RETRY_S};"
        );
        // A session that is down withdraws what it taught at once (no stale routes kept for a
        // peer's graceful restart): the path through the tunnel is gone with it.
        let _ = writeln!(out, "  graceful restart off;");
        let _ = writeln!(
            out,
            "  ipv4 {{ import all; export where source = RTS_DEVICE || source = RTS_STATIC; next hop self; }};"
        );
        let _ = writeln!(out, "}}");
    }
    Some((out, errors))
}

/// What BIRD says about its sessions: those established, and the prefixes each protocol learned.
#[derive(Debug, Default, PartialEq)]
pub struct Sessions {
    established: BTreeSet<String>,
    learned: BTreeMap<String, BTreeSet<Ipv4Net>>,
}

impl Sessions {
    pub fn up(&self, t: &TunnelPlan) -> bool {
        self.established.contains(&protocol(t))
    }

    /// What the connection's tunnels learned, each prefix once.
    pub fn learned(&self, c: &ConnectionPlan) -> Vec<Ipv4Net> {
        let mut out: BTreeSet<Ipv4Net> = BTreeSet::new();
        for t in c.tunnels.iter().filter(|t| t.bgp.is_some()) {
            out.extend(self.learned.get(&protocol(t)).into_iter().flatten());
        }
        out.into_iter().collect()
    }
}

impl Bird {
    pub fn new(gateway_dir: &Path, ns: String) -> Self {
        let dir = gateway_dir.join("bird");
        let socket = daemon::socket_path(&dir, "bird.ctl");
        Bird { daemon: Daemon::new(ns, dir.join("bird.pid")), socket, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub async fn running_pid(&self) -> Option<u32> {
        self.daemon.running_pid().await
    }

    /// Brings BIRD to `plan`: stopped when no tunnel runs BGP, otherwise started, or reconfigured
    /// when its configuration changed. Returns the connections whose BGP cannot be configured.
    pub async fn apply(&self, plan: &GatewayPlan) -> Result<BTreeMap<String, String>, DataPlaneError> {
        let Some((conf, errors)) = config(plan, &self.path("bird.log")) else {
            self.stop().await;
            return Ok(BTreeMap::new());
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| err("directory", e))?;
        let same = std::fs::read_to_string(self.path("bird.conf")).ok().as_deref() == Some(conf.as_str());
        if !same {
            std::fs::write(self.path("bird.conf"), &conf).map_err(|e| err("writing bird.conf", e))?;
        }
        match self.running_pid().await {
            None => self.start().await?,
            Some(_) if !same => {
                self.command("configure").await?;
            }
            Some(_) => {}
        }
        Ok(errors)
    }

    async fn start(&self) -> Result<(), DataPlaneError> {
        let _ = std::fs::remove_file(&self.socket);
        let (conf, socket) = (self.path("bird.conf"), self.socket.clone());
        let args = [OsArg::from("-f"), "-c".into(), conf.into(), "-s".into(), socket.into()];
        let pid = self.daemon.start("bird", args, |_| {})?;
        let start = std::time::Instant::now();
        while start.elapsed() < START_TIMEOUT {
            if !alive(pid) {
                let log = std::fs::read_to_string(self.path("bird.log")).unwrap_or_default();
                let tail = log.lines().rev().take(3).collect::<Vec<_>>().join(" / ");
                return Err(err("exited at start", tail));
            }
            if self.command("show status").await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(err("start", "the control socket did not answer in time"))
    }

    /// Stops BIRD (its sessions close with a Cease) and forgets its files.
    pub async fn stop(&self) {
        self.daemon.stop().await;
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Reads the sessions and what they learned.
    pub async fn sessions(&self) -> Result<Sessions, DataPlaneError> {
        let protocols = self.command("show protocols").await?;
        let routes = self.command("show route").await?;
        Ok(Sessions { established: established(&protocols), learned: learned(&routes) })
    }

    /// One command over the control socket: the text of its reply lines. A reply coded 8000 or
    /// above is BIRD refusing the command.
    async fn command(&self, command: &str) -> Result<Vec<String>, DataPlaneError> {
        let exchange = async {
            let stream = UnixStream::connect(&self.socket).await.map_err(|e| err("control", e))?;
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            // The greeting: `0001 BIRD 2.0.12 ready.`
            lines.next_line().await.map_err(|e| err("control", e))?;
            write.write_all(format!("{command}\n").as_bytes()).await.map_err(|e| err("control", e))?;
            let mut out = Vec::new();
            while let Some(line) = lines.next_line().await.map_err(|e| err("control", e))? {
                let (code, last, text) = reply_line(&line);
                if code >= 8000 {
                    return Err(err(command, text));
                }
                out.push(text.to_string());
                if last {
                    return Ok(out);
                }
            }
            Err(err(command, "the control socket closed"))
        };
        tokio::time::timeout(CONTROL_TIMEOUT, exchange).await.map_err(|_| err(command, "timed out"))?
    }
}

/// A path or a word as an argument.
type OsArg = std::ffi::OsString;

/// One reply line: `1002-text` (code, more follow), `0000 text` (code, the last) or ` text`
/// (more of the previous code: code 0).
fn reply_line(line: &str) -> (u16, bool, &str) {
    let b = line.as_bytes();
    if b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && (b[4] == b'-' || b[4] == b' ') {
        let code = line[..4].parse().unwrap_or(0);
        (code, b[4] == b' ', &line[5..])
    } else {
        (0, false, line.strip_prefix(' ').unwrap_or(line))
    }
}

/// The BGP protocols in state `up` and `Established`, from `show protocols`.
fn established(lines: &[String]) -> BTreeSet<String> {
    lines
        .iter()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let up = words.get(1) == Some(&"BGP") && words.get(3) == Some(&"up") && words.contains(&"Established");
            up.then(|| words[0].to_string())
        })
        .collect()
}

/// The prefixes each protocol brought into the table, from `show route`: a route line starts with
/// its prefix (or, for another route to the same prefix, with blanks) and names its protocol in
/// brackets (`10.2.0.0/24  unicast [t_x 10:30:02.456] * (100) [AS65001i]`).
fn learned(lines: &[String]) -> BTreeMap<String, BTreeSet<Ipv4Net>> {
    let mut out: BTreeMap<String, BTreeSet<Ipv4Net>> = BTreeMap::new();
    let mut prefix: Option<Ipv4Net> = None;
    for line in lines {
        if line.starts_with('\t') {
            continue; // `via …`, attributes
        }
        let mut words = line.split_whitespace().peekable();
        if let Some(net) = words.peek().and_then(|w| w.parse::<Ipv4Net>().ok()) {
            prefix = Some(net);
            words.next();
        } else if !line.starts_with(' ') {
            prefix = None; // `Table master4:` and the like
        }
        let proto = words.find_map(|w| w.strip_prefix('[')).filter(|p| !p.is_empty());
        if let (Some(net), Some(proto)) = (prefix, proto) {
            out.entry(proto.to_string()).or_default().insert(net);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::simulated::tests::{self, connection, tunnel};
    use crate::dataplane::BgpPlan;
    use crate::secret::Secret;

    fn bgp(peer_asn: Option<u32>, key: Option<&str>) -> Option<BgpPlan> {
        let b = tests::bgp(peer_asn)?;
        Some(BgpPlan { auth_key: key.map(Secret::new), ..b })
    }

    fn plan(connections: Vec<ConnectionPlan>) -> GatewayPlan {
        GatewayPlan {
            gateway_id: "vpn-1".into(),
            account_id: 1,
            vpc_id: "vpc-1".into(),
            generation: 1,
            public_ips: vec!["198.18.0.1".parse().unwrap()],
            intranet_ip: "10.1.0.1".parse().unwrap(),
            connections,
            routes: vec![],
            ssl_vpn: None,
            ipsec_server: None,
        }
    }

    #[test]
    fn one_bgp_protocol_per_bgp_tunnel_announcing_the_vpc_side() {
        let mut c = connection(bgp(Some(65001), Some("s3cret")));
        c.local_subnets = vec!["10.1.0.0/16".parse().unwrap(), "0.0.0.0/0".parse().unwrap()];
        let (conf, errors) = config(&plan(vec![c, connection(None)]), Path::new("/d/bird.log")).unwrap();
        assert!(errors.is_empty());
        for line in [
            "router id 198.18.0.1;",
            "protocol direct vpc { ipv4; interface \"vpc0\"; }",
            "  route 10.1.0.0/16 via \"vpc0\";",
            "protocol bgp t_tun_1 {",
            "  local 169.254.10.1 as 45104;",
            "  neighbor 169.254.10.2 as 65001;",
            "  password \"s3cret\";",
        ] {
            assert!(conf.lines().any(|l| l == line), "{line:?} missing from:\n{conf}");
        }
        assert!(!conf.contains("0.0.0.0/0"), "the default route is never announced");
        assert_eq!(conf.matches("protocol bgp").count(), 1);
    }

    #[test]
    fn no_bird_without_bgp_and_no_session_without_a_peer_asn() {
        assert!(config(&plan(vec![connection(None)]), Path::new("/l")).is_none());
        let (conf, errors) = config(&plan(vec![connection(bgp(None, None))]), Path::new("/l")).unwrap();
        assert!(!conf.contains("protocol bgp"));
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["vco-1"]);
        let (conf, errors) = config(&plan(vec![connection(bgp(Some(1), Some("a\"b")))]), Path::new("/l")).unwrap();
        assert!(!conf.contains("a\"b") && errors.contains_key("vco-1"));
    }

    #[test]
    fn reply_lines() {
        assert_eq!(reply_line("0001 BIRD 2.0.12 ready."), (1, true, "BIRD 2.0.12 ready."));
        assert_eq!(reply_line("1002-t_x BGP --- up"), (1002, false, "t_x BGP --- up"));
        assert_eq!(reply_line(" more"), (0, false, "more"));
        assert_eq!(reply_line("9001 syntax error"), (9001, true, "syntax error"));
    }

    #[test]
    fn sessions_and_learned_routes_from_birds_replies() {
        let protocols: Vec<String> = [
            "Name       Proto      Table      State  Since         Info",
            "device1    Device     ---        up     10:29:58.123  ",
            "t_tun_1    BGP        ---        up     10:30:01.456  Established   ",
            "t_tun_2    BGP        ---        start  10:30:01.456  Connect       ",
        ]
        .map(String::from)
        .into();
        assert_eq!(established(&protocols), BTreeSet::from(["t_tun_1".to_string()]));
        let routes: Vec<String> = [
            "Table master4:",
            "10.2.0.0/24          unicast [t_tun_1 10:30:02.456] * (100) [AS65001i]",
            "\tvia 169.254.10.2 on ipsec0",
            "                     unicast [t_tun_2 10:30:03.456] (100) [AS65001i]",
            "\tvia 169.254.20.2 on ipsec0",
            "10.1.0.0/24          unicast [vpc 10:29:58.123] * (240)",
            "\tdev vpc0",
            "10.3.0.0/24          unicast [t_tun_1 10:30:02.456] * (100) [AS65001i]",
        ]
        .map(String::from)
        .into();
        let learned = learned(&routes);
        let nets = |v: &[&str]| v.iter().map(|n| n.parse().unwrap()).collect::<BTreeSet<Ipv4Net>>();
        assert_eq!(learned["t_tun_1"], nets(&["10.2.0.0/24", "10.3.0.0/24"]));
        assert_eq!(learned["t_tun_2"], nets(&["10.2.0.0/24"]));
        let sessions = Sessions { established: established(&protocols), learned };
        let mut c = connection(bgp(Some(65001), None));
        c.tunnels = vec![tunnel("tun-1", bgp(Some(1), None)), tunnel("tun-2", bgp(Some(1), None))];
        assert!(sessions.up(&c.tunnels[0]) && !sessions.up(&c.tunnels[1]));
        assert_eq!(sessions.learned(&c), nets(&["10.2.0.0/24", "10.3.0.0/24"]).into_iter().collect::<Vec<_>>());
    }
}
