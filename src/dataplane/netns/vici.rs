//! What Gatehouse says to a charon over VICI, and reads back.
//!
//! Tunnels between the same two addresses share one VICI connection, `ike-<local>-<remote>`, and
//! so one IKE SA: the API makes connections that share a gateway and a customer gateway agree on
//! IKE, and a customer gateway that initiates several of them is matched by addresses and IDs.
//! Each tunnel is one child of it, named by the tunnel's ID (IKEv2: one child with every subnet;
//! IKEv1, which negotiates one pair of selectors per child: one per pair, `<tunnel>-<n>`). The
//! PSK is a shared secret named like the connection.
//!
//! Lifetimes: the API's lifetime is the hard one. strongSwan adds `over_time` on top of
//! `rekey_time`, so rekeying starts at 90 % and the SA dies at 100 %.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use futures_util::{pin_mut, TryStreamExt};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::dataplane::remote_access::IpsecServerPlan;
use crate::dataplane::{with_tunnel_cidr, ConnectionPlan, DataPlaneError, IkeVersion, TunnelPlan, TunnelStatus};
use crate::secret::Secret;

/// DPD: probe an idle peer this often (IKEv2 declares it dead after the retransmissions set in
/// strongswan.conf, IKEv1 after `DPD_TIMEOUT`).
pub const DPD_DELAY: &str = "5s";
const DPD_TIMEOUT: &str = "15s";
/// How long one blocking VICI command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

fn err(what: &str, e: impl std::fmt::Display) -> DataPlaneError {
    DataPlaneError::new(format!("vici {what}: {e}"))
}

pub async fn connect(socket: &Path) -> Result<rsvici::Client, DataPlaneError> {
    rsvici::unix::connect(socket).await.map_err(|e| err("connect", e))
}

/// The answer of commands that only say whether they worked.
#[derive(Deserialize)]
struct Outcome {
    success: Option<bool>,
    errmsg: Option<String>,
}

/// Sends `cmd` and fails with charon's own message when it says no.
async fn command<T: Serialize>(client: &mut rsvici::Client, cmd: &str, msg: T) -> Result<(), DataPlaneError> {
    let outcome: Outcome = tokio::time::timeout(COMMAND_TIMEOUT, client.request(cmd, msg))
        .await
        .map_err(|_| err(cmd, "timed out"))?
        .map_err(|e| err(cmd, e))?;
    match outcome.success {
        Some(false) => Err(err(cmd, outcome.errmsg.unwrap_or_else(|| "failed".into()))),
        _ => Ok(()),
    }
}

#[derive(Serialize, Clone, PartialEq, Debug)]
struct Auth {
    auth: &'static str,
    id: String,
}

#[derive(Serialize, Clone, PartialEq, Debug)]
pub struct Child {
    /// Fixed, so that a packet kernel-libipsec drops for want of an SA names its child.
    reqid: u32,
    /// The master's policies win over the slave's for the same selectors (lower wins).
    priority: u32,
    local_ts: Vec<String>,
    remote_ts: Vec<String>,
    esp_proposals: Vec<String>,
    rekey_time: String,
    life_time: String,
    rand_time: String,
    /// A volume limit, in bytes, when the API sets one (rekeying starts at 90 %, as for time).
    #[serde(skip_serializing_if = "Option::is_none")]
    rekey_bytes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    life_bytes: Option<String>,
    start_action: &'static str,
    dpd_action: &'static str,
    close_action: &'static str,
}

/// One `load-conn` entry.
#[derive(Serialize, Clone, PartialEq, Debug)]
pub struct Conn {
    version: u8,
    aggressive: bool,
    local_addrs: Vec<String>,
    remote_addrs: Vec<String>,
    proposals: Vec<String>,
    rekey_time: String,
    over_time: String,
    rand_time: String,
    encap: bool,
    mobike: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    dpd_delay: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dpd_timeout: Option<&'static str>,
    keyingtries: u32,
    unique: &'static str,
    #[serde(rename = "local-1")]
    local: Auth,
    #[serde(rename = "remote-1")]
    remote: Auth,
    pub children: BTreeMap<String, Child>,
    /// Address pools clients' virtual IPs come from (the IPsec server's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pools: Vec<&'static str>,
    /// A digest of the PSK and its owners: not sent (the secret goes by `load-shared`), but part
    /// of what makes two configurations the same, so a new PSK reloads and renegotiates.
    #[serde(skip)]
    secret: [u8; 32],
}

fn seconds(s: u64) -> String {
    format!("{s}s")
}

/// The hard lifetime `l` as (rekey, over, rand) times: rekey at 90 %, die at 100 %.
fn lifetimes(l: u32) -> (String, String, String) {
    let l = u64::from(l.max(60));
    let rekey = l * 9 / 10;
    (seconds(rekey), seconds(l - rekey), seconds((l - rekey) / 2))
}

/// The child names of a tunnel, each with its (local, remote) selectors (a BGP tunnel's also
/// carry its TunnelCidr).
pub fn children(conn: &ConnectionPlan, t: &TunnelPlan) -> Vec<(String, Vec<String>, Vec<String>)> {
    let cidr = t.bgp.as_ref().map(|b| b.tunnel_cidr);
    let strings =
        |v: &[ipnet::Ipv4Net]| with_tunnel_cidr(v, cidr).iter().map(|n| n.trunc().to_string()).collect::<Vec<_>>();
    let (local, remote) = (strings(&conn.local_subnets), strings(&conn.remote_subnets));
    match t.ike_version {
        IkeVersion::V2 => vec![(t.id.clone(), local, remote)],
        IkeVersion::V1 => local
            .iter()
            .flat_map(|l| remote.iter().map(move |r| (l.clone(), r.clone())))
            .enumerate()
            .map(|(i, (l, r))| (format!("{}-{}", t.id, i + 1), vec![l], vec![r]))
            .collect(),
    }
}

/// The VICI connection a tunnel belongs to.
pub fn ike_name(t: &TunnelPlan) -> String {
    format!("ike-{}-{}", t.local_ip, t.remote_ip)
}

/// A child's fixed reqid: a stable hash of its name (tunnel IDs are random, so collisions are
/// as unlikely as for any 31-bit hash), above the range charon hands out itself.
pub fn reqid(child: &str) -> u32 {
    let hash = child.bytes().fold(0x811c9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x01000193));
    (hash & 0x3fff_ffff) | 0x4000_0000
}

/// Policy priorities of a tunnel's children: the standby tunnel's lose to the active one's.
fn priority(t: &TunnelPlan) -> u32 {
    if t.role == "slave" {
        2000
    } else {
        1000
    }
}

fn child(conn: &ConnectionPlan, t: &TunnelPlan, name: &str, local_ts: Vec<String>, remote_ts: Vec<String>) -> Child {
    let (rekey, _, rand) = lifetimes(t.ipsec_lifetime_s);
    let life_bytes = u64::from(t.ipsec_lifetime_kb) * 1024;
    let bytes = |b: u64| (life_bytes > 0).then(|| b.to_string());
    // Negotiate now (and again after a dead peer), or when traffic first matches (trap).
    let (start_action, dpd_action, close_action) =
        if conn.effect_immediately { ("none", "restart", "none") } else { ("trap", "trap", "trap") };
    Child {
        reqid: reqid(name),
        priority: priority(t),
        local_ts,
        remote_ts,
        esp_proposals: vec![t.esp.strongswan()],
        rekey_time: rekey,
        life_time: seconds(u64::from(t.ipsec_lifetime_s.max(60))),
        rand_time: rand,
        rekey_bytes: bytes(life_bytes * 9 / 10),
        life_bytes: bytes(life_bytes),
        start_action,
        dpd_action,
        close_action,
    }
}

/// The VICI connections of a gateway: per pair of addresses, the IKE side of its first tunnel
/// (the others agree) and a child per tunnel. `force_encap`: the ESP backend carries only
/// UDP-encapsulated ESP (kernel-libipsec), so NAT-T is always on.
pub fn conns(connections: &[ConnectionPlan], force_encap: bool) -> BTreeMap<String, (Conn, &TunnelPlan)> {
    let mut out: BTreeMap<String, (Conn, &TunnelPlan)> = BTreeMap::new();
    for c in connections {
        for t in &c.tunnels {
            let (conn, _) = out.entry(ike_name(t)).or_insert_with(|| (ike(t, force_encap), t));
            for (name, l, r) in children(c, t) {
                let config = child(c, t, &name, l, r);
                conn.children.insert(name, config);
            }
            // One tunnel that must stay up keeps the shared IKE SA trying.
            if c.effect_immediately {
                conn.keyingtries = 0;
            }
        }
    }
    out
}

/// The IKE side of a tunnel's connection, without children.
fn ike(t: &TunnelPlan, force_encap: bool) -> Conn {
    let (rekey, over, rand) = lifetimes(t.ike_lifetime_s);
    Conn {
        version: if t.ike_version == IkeVersion::V1 { 1 } else { 2 },
        aggressive: t.ike_version == IkeVersion::V1 && t.aggressive,
        local_addrs: vec![t.local_ip.to_string()],
        remote_addrs: vec![t.remote_ip.to_string()],
        proposals: vec![t.ike.strongswan()],
        rekey_time: rekey,
        over_time: over,
        rand_time: rand,
        encap: t.nat_traversal || force_encap,
        mobike: false,
        dpd_delay: t.dpd.then_some(DPD_DELAY),
        dpd_timeout: (t.dpd && t.ike_version == IkeVersion::V1).then_some(DPD_TIMEOUT),
        keyingtries: 1,
        unique: "replace",
        local: Auth { auth: "psk", id: t.local_id.clone() },
        remote: Auth { auth: "psk", id: t.remote_id.clone() },
        children: BTreeMap::new(),
        pools: Vec::new(),
        secret: secret_digest(&t.psk, &t.local_id, &t.remote_id),
    }
}

fn secret_digest(psk: &Secret, local_id: &str, remote_id: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [psk.expose(), local_id, remote_id] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

impl Conn {
    /// Whether the IKE side (all but the children) is the same: then its IKE SA can stay.
    pub fn same_ike(&self, other: &Conn) -> bool {
        let bare = |c: &Conn| Conn { children: BTreeMap::new(), ..c.clone() };
        bare(self) == bare(other)
    }
}

#[derive(Serialize)]
struct Shared<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    data: &'a str,
    owners: Vec<&'a str>,
}

/// Loads a connection: its PSK (from `t`, its first tunnel), then the connection.
pub async fn load(client: &mut rsvici::Client, name: &str, t: &TunnelPlan, c: &Conn) -> Result<(), DataPlaneError> {
    let owners = vec![t.local_id.as_str(), t.remote_id.as_str()];
    command(client, "load-shared", Shared { id: name, kind: "IKE", data: t.psk.expose(), owners }).await?;
    command(client, "load-conn", BTreeMap::from([(name.to_string(), c.clone())])).await
}

// ---------------------------------------------------------------------------------------------
// The IPsec server: remote access.

/// The IPsec server's connection (and child) name.
pub const SERVER: &str = "ipsec-server";
/// The pool its clients' virtual IPs come from.
const SERVER_POOL: &str = "ipsec-server-pool";

/// The IPsec server's connection: clients from any address, authenticated by the PSK (with
/// RemoteId, when set), each given a virtual IP from ClientIpPool and reaching LocalSubnet.
/// It only responds: clients initiate.
pub fn server_conn(s: &IpsecServerPlan, local_ip: std::net::Ipv4Addr, force_encap: bool) -> Conn {
    let (rekey, over, rand) = lifetimes(s.ike_lifetime_s);
    let (child_rekey, _, child_rand) = lifetimes(s.ipsec_lifetime_s);
    let v1 = s.ike_version == IkeVersion::V1;
    let child = Child {
        // Each client's CHILD_SA needs a reqid of its own (kernel-libipsec picks the outbound SA
        // by reqid): 0 lets charon allocate one per SA. Nothing traps on it: clients initiate.
        reqid: 0,
        priority: 1500,
        local_ts: s.local_subnets.iter().map(|n| n.trunc().to_string()).collect(),
        remote_ts: vec!["dynamic".into()],
        esp_proposals: vec![s.esp.strongswan()],
        rekey_time: child_rekey,
        life_time: seconds(u64::from(s.ipsec_lifetime_s.max(60))),
        rand_time: child_rand,
        rekey_bytes: None,
        life_bytes: None,
        start_action: "none",
        dpd_action: "clear",
        close_action: "none",
    };
    let remote_id = if s.remote_id.is_empty() { "%any".to_string() } else { s.remote_id.clone() };
    Conn {
        version: if v1 { 1 } else { 2 },
        aggressive: v1 && s.aggressive,
        local_addrs: vec![local_ip.to_string()],
        remote_addrs: vec!["%any".into()],
        proposals: vec![s.ike.strongswan()],
        rekey_time: rekey,
        over_time: over,
        rand_time: rand,
        encap: force_encap,
        mobike: false,
        dpd_delay: Some(DPD_DELAY),
        dpd_timeout: v1.then_some(DPD_TIMEOUT),
        keyingtries: 1,
        // Many clients may share the PSK and the identity.
        unique: "never",
        local: Auth { auth: "psk", id: s.local_id.clone() },
        remote: Auth { auth: "psk", id: remote_id },
        children: BTreeMap::from([(SERVER.to_string(), child)]),
        pools: vec![SERVER_POOL],
        secret: secret_digest(&s.psk, &s.local_id, &s.remote_id),
    }
}

#[derive(Serialize)]
struct Pool {
    addrs: String,
}

/// Loads the IPsec server: its pool, its PSK (for the server's identity and any client's, or
/// RemoteId's), its connection.
pub async fn load_server(client: &mut rsvici::Client, s: &IpsecServerPlan, c: &Conn) -> Result<(), DataPlaneError> {
    let pool = Pool { addrs: s.client_ip_pool.trunc().to_string() };
    command(client, "load-pool", BTreeMap::from([(SERVER_POOL, pool)])).await?;
    let mut owners = vec![s.local_id.as_str()];
    if !s.remote_id.is_empty() {
        owners.push(s.remote_id.as_str());
    }
    command(client, "load-shared", Shared { id: SERVER, kind: "IKE", data: s.psk.expose(), owners }).await?;
    command(client, "load-conn", BTreeMap::from([(SERVER.to_string(), c.clone())])).await
}

/// Unloads the IPsec server (its clients' SAs go) and its pool.
pub async fn unload_server(client: &mut rsvici::Client) -> Result<(), DataPlaneError> {
    unload(client, SERVER).await?;
    let _ = command(client, "unload-pool", Name { name: SERVER_POOL }).await;
    Ok(())
}

#[derive(Serialize)]
struct Name<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct Id<'a> {
    id: &'a str,
}

/// Unloads a connection and tears down its SAs (unloading alone keeps established SAs up).
pub async fn unload(client: &mut rsvici::Client, name: &str) -> Result<(), DataPlaneError> {
    let _ = command(client, "unload-conn", Name { name }).await;
    let _ = command(client, "unload-shared", Id { id: name }).await;
    terminate(client, name).await
}

#[derive(Serialize)]
struct Terminate<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ike: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    child: Option<&'a str>,
    force: bool,
    timeout: i32,
}

/// Tears down every IKE SA of the connection (and their children).
pub async fn terminate(client: &mut rsvici::Client, name: &str) -> Result<(), DataPlaneError> {
    terminating(client, Terminate { ike: Some(name), child: None, force: true, timeout: 2000 }).await
}

/// Tears down the CHILD_SAs of one child configuration.
pub async fn terminate_child(client: &mut rsvici::Client, child: &str) -> Result<(), DataPlaneError> {
    terminating(client, Terminate { ike: None, child: Some(child), force: true, timeout: 2000 }).await
}

async fn terminating(client: &mut rsvici::Client, msg: Terminate<'_>) -> Result<(), DataPlaneError> {
    match command(client, "terminate", msg).await {
        // Nothing to terminate is fine.
        Err(e) if e.0.contains("no matching") => Ok(()),
        other => other,
    }
}

#[derive(Serialize)]
struct Initiate<'a> {
    child: &'a str,
    ike: &'a str,
    timeout: i32,
    #[serde(rename = "init-limits")]
    init_limits: bool,
}

/// Starts negotiating one child; returns once it is up or `wait` has passed (negotiation goes
/// on in the background either way; events report the outcome).
pub async fn initiate(socket: &Path, ike: &str, child: &str, wait: Duration) -> Result<(), DataPlaneError> {
    let mut client = connect(socket).await?;
    let msg = Initiate { child, ike, timeout: wait.as_millis() as i32, init_limits: false };
    let stream = client.stream_request::<_, IgnoredAny>("initiate", "control-log", msg);
    pin_mut!(stream);
    let drained = async {
        while stream.try_next().await?.is_some() {}
        Ok::<_, rsvici::Error>(())
    };
    match tokio::time::timeout(wait + Duration::from_millis(500), drained).await {
        Ok(Err(e)) => Err(err("initiate", e)),
        _ => Ok(()),
    }
}

/// The names of the connections charon has loaded.
pub async fn loaded_conns(client: &mut rsvici::Client) -> Result<Vec<String>, DataPlaneError> {
    let stream = client.stream_request::<_, BTreeMap<String, IgnoredAny>>("list-conns", "list-conn", ());
    pin_mut!(stream);
    let mut names = Vec::new();
    let listed = async {
        while let Some(conn) = stream.try_next().await? {
            names.extend(conn.into_keys());
        }
        Ok::<_, rsvici::Error>(())
    };
    tokio::time::timeout(COMMAND_TIMEOUT, listed)
        .await
        .map_err(|_| err("list-conns", "timed out"))?
        .map_err(|e| err("list-conns", e))?;
    Ok(names)
}

#[derive(Deserialize)]
struct ChildSa {
    name: Option<String>,
    state: Option<String>,
}

#[derive(Deserialize)]
struct IkeSa {
    state: Option<String>,
    #[serde(rename = "child-sas")]
    child_sas: Option<BTreeMap<String, ChildSa>>,
}

/// charon's SAs, as far as statuses go: per IKE SA, its connection's name, whether it is
/// established and the names of its installed children.
#[derive(Debug, Default)]
pub struct Sas(Vec<(String, bool, Vec<String>)>);

impl Sas {
    /// How many IKE SAs of connection `name` are established (the IPsec server's clients).
    pub fn established(&self, name: &str) -> u32 {
        self.0.iter().filter(|(n, up, _)| n == name && *up).count() as u32
    }

    /// A tunnel's status: its connection's IKE SA established, its child installed.
    pub fn status(&self, t: &TunnelPlan) -> TunnelStatus {
        let ike = ike_name(t);
        let mine =
            |child: &String| child == &t.id || child.strip_prefix(t.id.as_str()).is_some_and(|r| r.starts_with('-'));
        self.0.iter().filter(|(name, up, _)| *name == ike && *up).fold(
            TunnelStatus::IkeSaNotEstablished,
            |best, (_, _, children)| {
                if children.iter().any(mine) {
                    TunnelStatus::IpsecSaEstablished
                } else if best == TunnelStatus::IkeSaNotEstablished {
                    TunnelStatus::IkeSaEstablished
                } else {
                    best
                }
            },
        )
    }
}

/// Reads charon's SAs.
pub async fn sas(socket: &Path) -> Result<Sas, DataPlaneError> {
    let mut client = connect(socket).await?;
    let stream = client.stream_request::<_, BTreeMap<String, IkeSa>>("list-sas", "list-sa", ());
    pin_mut!(stream);
    let mut out = Vec::new();
    let listed = async {
        while let Some(sas) = stream.try_next().await? {
            for (name, sa) in sas {
                let installed = sa
                    .child_sas
                    .into_iter()
                    .flatten()
                    .filter(|(_, c)| c.state.as_deref() == Some("INSTALLED"))
                    .filter_map(|(_, c)| c.name)
                    .collect();
                out.push((name, sa.state.as_deref() == Some("ESTABLISHED"), installed));
            }
        }
        Ok::<_, rsvici::Error>(())
    };
    tokio::time::timeout(COMMAND_TIMEOUT, listed)
        .await
        .map_err(|_| err("list-sas", "timed out"))?
        .map_err(|e| err("list-sas", e))?;
    Ok(Sas(out))
}

/// One line of charon's log (the `log` event).
#[derive(Deserialize)]
pub struct LogLine {
    pub msg: String,
}

/// The reqid in kernel-libipsec's "could not find an outbound IPsec SA for reqid {N}, dropping
/// packet".
pub fn dropped_reqid(msg: &str) -> Option<u32> {
    let rest = msg.strip_prefix("could not find an outbound IPsec SA for reqid {")?;
    rest.split_once('}')?.0.parse().ok()
}

/// The events after which tunnel statuses may have changed.
pub const EVENTS: &[&str] = &["ike-updown", "child-updown", "ike-rekey", "child-rekey"];

#[cfg(test)]
mod tests {
    #[test]
    fn every_ipsec_server_client_gets_a_reqid_of_its_own() {
        use crate::dataplane::remote_access::IpsecServerPlan;
        use crate::dataplane::Proposal;
        let p = |e: &str| Proposal { enc: e.into(), auth: "sha1".into(), dh: "group2".into() };
        let plan = IpsecServerPlan {
            id: "iss-1".into(),
            client_ip_pool: "10.250.0.0/24".parse().unwrap(),
            local_subnets: vec!["10.1.0.0/16".parse().unwrap()],
            effect_immediately: false,
            ike_version: IkeVersion::V2,
            aggressive: false,
            ike: p("aes"),
            ike_lifetime_s: 86400,
            esp: p("aes"),
            ipsec_lifetime_s: 3600,
            local_id: "198.18.0.1".into(),
            remote_id: String::new(),
            psk: Secret::new("k"),
        };
        let conn = server_conn(&plan, "198.18.0.1".parse().unwrap(), true);
        let child = &conn.children[SERVER];
        assert_eq!(child.reqid, 0);
        assert_eq!(
            (child.remote_ts.as_slice(), child.local_ts.as_slice()),
            (&["dynamic".to_string()][..], &["10.1.0.0/16".to_string()][..])
        );
        assert_eq!(
            (conn.remote_addrs.as_slice(), conn.remote.id.as_str(), conn.unique),
            (&["%any".to_string()][..], "%any", "never")
        );
        assert_eq!(conn.pools, [SERVER_POOL]);
    }

    use super::*;
    use crate::dataplane::simulated::tests::connection;

    #[test]
    fn lifetimes_end_at_the_apis_hard_lifetime() {
        assert_eq!(lifetimes(86400), ("77760s".into(), "8640s".into(), "4320s".into()));
        assert_eq!(lifetimes(0).0, "54s", "a lifetime below a minute is taken as one minute");
    }

    #[test]
    fn a_volume_limit_becomes_life_bytes_with_rekeying_at_ninety_percent() {
        let mut c = connection(None);
        let t = c.tunnels[0].clone();
        let plain = child(&c, &t, "a", vec![], vec![]);
        assert_eq!((plain.life_bytes, plain.rekey_bytes), (None, None));
        c.tunnels[0].ipsec_lifetime_kb = 10240;
        let t = c.tunnels[0].clone();
        let limited = child(&c, &t, "a", vec![], vec![]);
        assert_eq!(limited.life_bytes.as_deref(), Some("10485760"));
        assert_eq!(limited.rekey_bytes.as_deref(), Some("9437184"));
    }

    #[test]
    fn ikev1_gets_one_child_per_selector_pair_and_ikev2_one_in_all() {
        let mut c = connection(None);
        c.local_subnets.push("10.1.0.0/16".parse().unwrap());
        let t = c.tunnels[0].clone();
        let v2 = children(&c, &t);
        assert_eq!(v2.len(), 1);
        assert_eq!(v2[0].1, vec!["10.0.0.0/16", "10.1.0.0/16"]);
        let v1 = children(&c, &TunnelPlan { ike_version: IkeVersion::V1, ..t });
        assert_eq!(v1.len(), 4);
        assert_eq!(v1[3], ("tun-1-4".into(), vec!["10.1.0.0/16".into()], vec!["192.168.1.0/24".into()]));
    }

    #[test]
    fn effect_immediately_negotiates_now_otherwise_on_traffic() {
        let mut c = connection(None);
        let trap = &conns(std::slice::from_ref(&c), false)["ike-198.18.0.1-203.0.113.5"].0;
        assert_eq!(trap.children["tun-1"].start_action, "trap");
        assert_eq!(trap.keyingtries, 1);
        c.effect_immediately = true;
        let now = &conns(std::slice::from_ref(&c), true)["ike-198.18.0.1-203.0.113.5"].0;
        assert_eq!((now.children["tun-1"].start_action, now.children["tun-1"].dpd_action), ("none", "restart"));
        assert!(now.encap, "libipsec carries only UDP-encapsulated ESP");
        assert_eq!(now.proposals, vec!["aes128-md5-modp1024"]);
        assert_eq!(now.dpd_delay, Some(DPD_DELAY));
    }

    #[test]
    fn dropped_packets_name_their_child() {
        let child = "tun-abc";
        let line = format!("could not find an outbound IPsec SA for reqid {{{}}}, dropping packet", reqid(child));
        assert_eq!(dropped_reqid(&line), Some(reqid(child)));
        assert_eq!(dropped_reqid("some other line"), None);
        assert!(reqid(child) >= 0x4000_0000 && reqid(child) != reqid("tun-abd"));
    }

    #[test]
    fn a_new_psk_is_a_new_ike_configuration() {
        let c = connection(None);
        let mut changed = c.clone();
        changed.tunnels[0].psk = crate::secret::Secret::new("another");
        let a = &conns(std::slice::from_ref(&c), false)["ike-198.18.0.1-203.0.113.5"].0;
        let b = &conns(std::slice::from_ref(&changed), false)["ike-198.18.0.1-203.0.113.5"].0;
        assert!(!a.same_ike(b));
    }

    #[test]
    fn tunnels_between_the_same_addresses_share_one_ike_connection() {
        let a = connection(None);
        let mut b = connection(None);
        b.id = "vco-2".into();
        b.tunnels[0].id = "tun-2".into();
        b.remote_subnets = vec!["192.168.9.0/24".parse().unwrap()];
        let mut other_peer = connection(None);
        other_peer.tunnels[0].id = "tun-3".into();
        other_peer.tunnels[0].remote_ip = "203.0.113.9".parse().unwrap();
        let plans = [a, b, other_peer];
        let all = conns(&plans, false);
        assert_eq!(all.len(), 2);
        let shared = &all["ike-198.18.0.1-203.0.113.5"].0;
        assert_eq!(shared.children.keys().collect::<Vec<_>>(), ["tun-1", "tun-2"]);
        assert!(shared.same_ike(&Conn { children: BTreeMap::new(), ..shared.clone() }));
        let t = &all["ike-198.18.0.1-203.0.113.5"].1;
        let sas = Sas(vec![("ike-198.18.0.1-203.0.113.5".into(), true, vec!["tun-2".into()])]);
        assert_eq!(sas.status(t), TunnelStatus::IkeSaEstablished, "tun-1 has no child installed");
        let t2 = TunnelPlan { id: "tun-2".into(), ..(*t).clone() };
        assert_eq!(sas.status(&t2), TunnelStatus::IpsecSaEstablished);
        let v1 = TunnelPlan { id: "tun-1".into(), ..(*t).clone() };
        let sas = Sas(vec![("ike-198.18.0.1-203.0.113.5".into(), true, vec!["tun-1-2".into()])]);
        assert_eq!(sas.status(&v1), TunnelStatus::IpsecSaEstablished);
    }
}
