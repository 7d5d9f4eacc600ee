//! What an operator can set: everything `gatehouse serve` takes, with the documented defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::Ipv4Net;

/// Regions served by default: Alibaba Cloud's public regions. `--regions` replaces the list.
pub const DEFAULT_REGIONS: &[(&str, &str)] = &[
    ("cn-qingdao", "华北1（青岛）"),
    ("cn-beijing", "华北2（北京）"),
    ("cn-zhangjiakou", "华北3（张家口）"),
    ("cn-huhehaote", "华北5（呼和浩特）"),
    ("cn-wulanchabu", "华北6（乌兰察布）"),
    ("cn-hangzhou", "华东1（杭州）"),
    ("cn-shanghai", "华东2（上海）"),
    ("cn-nanjing", "华东5（南京）"),
    ("cn-fuzhou", "华东6（福州）"),
    ("cn-shenzhen", "华南1（深圳）"),
    ("cn-heyuan", "华南2（河源）"),
    ("cn-guangzhou", "华南3（广州）"),
    ("cn-chengdu", "西南1（成都）"),
    ("cn-hongkong", "中国香港"),
    ("ap-northeast-1", "日本（东京）"),
    ("ap-northeast-2", "韩国（首尔）"),
    ("ap-southeast-1", "新加坡"),
    ("ap-southeast-3", "马来西亚（吉隆坡）"),
    ("ap-southeast-5", "印度尼西亚（雅加达）"),
    ("ap-southeast-6", "菲律宾（马尼拉）"),
    ("ap-southeast-7", "泰国（曼谷）"),
    ("us-east-1", "美国（弗吉尼亚）"),
    ("us-west-1", "美国（硅谷）"),
    ("eu-west-1", "英国（伦敦）"),
    ("eu-central-1", "德国（法兰克福）"),
    ("me-east-1", "阿联酋（迪拜）"),
];

#[derive(Debug, Clone)]
pub struct Region {
    pub id: String,
    pub local_name: String,
}

#[derive(Debug, Clone)]
pub struct Quotas {
    /// VPN gateways per account and region.
    pub vpn_gateways: u64,
    /// Customer gateways per account and region.
    pub customer_gateways: u64,
    /// User tags per resource (documented: 20).
    pub tags_per_resource: usize,
    /// IPsec connections per VPN gateway.
    pub vpn_connections: u64,
    /// Destination-based routes per VPN gateway.
    pub destination_routes: u64,
    /// Policy-based routes per VPN gateway.
    pub policy_routes: u64,
}

/// What one client connection may take (see `api::server`).
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// From a request's first byte to its complete head.
    pub header: Duration,
    /// Between requests on a kept-alive connection (and before the first).
    pub idle: Duration,
    /// From a request's head to its complete body.
    pub body: Duration,
    /// The largest body taken; a larger declared Content-Length is refused before it is read.
    pub max_body: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1024,
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            body: Duration::from_secs(30),
            max_body: 1 << 20,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// How long a lifecycle transition takes (init → active, deleting → gone); zero = at once.
    pub transition_delay: Duration,
    pub quotas: Quotas,
    /// Requests per second per account; 0 = unlimited.
    pub rate_limit: u32,
    pub regions: Vec<Region>,
    /// Where gateways' public addresses come from.
    pub public_pool: Ipv4Net,
    /// Where gateways' private (VPC-side) addresses come from.
    pub private_pool: Ipv4Net,
    /// In gateway mode, the VPCs the data plane can reach (each has a bridge): a gateway of any
    /// other VPC is refused. None: any VPC (the emulator).
    pub vpcs: Option<std::collections::BTreeSet<String>>,
    /// Whether national-standard (SM4/SM3) gateways can be created: the emulator takes them;
    /// strongSwan, which gateway mode runs, has no SM ciphers.
    pub national_standard: bool,
    pub connections: ConnectionLimits,
    /// Who may call the control API (`/_gatehouse/…`).
    pub control_access: crate::control::ControlAccess,
    /// Whether the data plane is the simulated one (which alone takes forced tunnel statuses).
    pub simulated_dataplane: bool,
    /// How long a node's claim on a task's step lasts: after that, another node may take the
    /// task over (its node presumed dead).
    pub task_lease: Duration,
    /// In gateway mode, the name this node runs gateways under (see `actions::gateway_hosts`);
    /// None in the emulator, whose gateways belong to no host.
    pub host: Option<String>,
    /// Who holds that name: the data directory's `host_id`, so that the same host restarted
    /// (after a crash, its heartbeat still fresh) takes its name back.
    pub host_id: String,
    /// How long a gateway host's heartbeat counts: a host silent for longer is down.
    pub host_lease: Duration,
}

impl Config {
    pub fn region(&self, id: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.id == id)
    }

    /// Defaults for everything but where to listen and keep data.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Config {
            listen,
            data_dir,
            transition_delay: Duration::from_millis(1000),
            quotas: Quotas {
                vpn_gateways: 100,
                customer_gateways: 100,
                tags_per_resource: 20,
                vpn_connections: 10,
                destination_routes: 100,
                policy_routes: 100,
            },
            rate_limit: 0,
            regions: DEFAULT_REGIONS
                .iter()
                .map(|(id, name)| Region { id: id.to_string(), local_name: name.to_string() })
                .collect(),
            public_pool: "198.18.0.0/15".parse().expect("valid"),
            private_pool: "172.16.0.0/12".parse().expect("valid"),
            vpcs: None,
            national_standard: true,
            connections: ConnectionLimits::default(),
            control_access: Default::default(),
            simulated_dataplane: true,
            task_lease: Duration::from_secs(10),
            host: None,
            host_id: String::new(),
            host_lease: Duration::from_secs(10),
        }
    }
}

/// Makes the data directory (0700, with its parents) or tightens an existing one: it holds the
/// master key, the embedded database and gateway-mode state, the operator's alone whatever the
/// umask.
/// The identity of the gateway host whose data directory this is (`<dir>/host-id`, made on
/// first use): another node under the same host name has another directory, so another id.
pub fn host_id(dir: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context;
    let path = dir.join("host-id");
    let kept = match std::fs::read_to_string(&path) {
        Ok(id) => id.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if !kept.is_empty() {
        return Ok(kept);
    }
    let id = uuid::Uuid::new_v4().to_string();
    std::fs::write(&path, format!("{id}\n")).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

pub fn private_data_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}
