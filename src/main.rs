//! The `gatehouse` command: `serve`, and the account/key administration that works beside a
//! running server (it opens the same data directory).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use gatehouse::accounts;
use gatehouse::actions::gateway_hosts;
use gatehouse::app::{App, RateLimiter};
use gatehouse::config::{Config, Region};
use gatehouse::dataplane::netns::{EspBackend, Netns, NetnsConfig};
use gatehouse::dataplane::{simulated::Simulated, DataPlane};
use gatehouse::secret::MasterKey;
use gatehouse::store::Store;
use gatehouse::{api, reconciler};

// Many small short-lived allocations per request (JSON trees): mimalloc handles them far better.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Self-hostable VPN gateway service with Alibaba Cloud's VPN Gateway API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines are written (to stderr): `text`, or `json` (one object per line).
    #[arg(long, env = "GATEHOUSE_LOG_FORMAT", value_enum, default_value = "text", global = true)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Clone)]
struct DataDir {
    /// Where the master key and other files live, and the embedded database unless
    /// --database-url names another.
    #[arg(long, env = "GATEHOUSE_DATA_DIR", default_value = "./gatehouse-data", global = true)]
    data_dir: PathBuf,
    /// A PostgreSQL database to keep everything in, shared by every node given the same one
    /// (`postgres://user:password@host/db` or `host=/run/postgresql user=gatehouse dbname=gatehouse`).
    /// Nodes sharing it must share GATEHOUSE_MASTER_KEY.
    #[arg(long, env = "GATEHOUSE_DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server.
    Serve(Box<ServeArgs>),
    /// Manage accounts.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
        #[command(flatten)]
        data: DataDir,
    },
    /// Print the customer side's strongSwan configuration (swanctl.conf) for an IPsec connection,
    /// or with --bgp its BGP configuration.
    PeerConfig {
        /// The connection (vco-...).
        id: String,
        /// The account that owns it.
        #[arg(long, default_value = accounts::ROOT_ACCOUNT)]
        account: String,
        /// Print the BGP side instead, for this daemon: FRR's bgpd.conf or BIRD 2's bird.conf.
        #[arg(long, value_enum)]
        bgp: Option<gatehouse::peer_config::BgpDaemon>,
        /// A network the customer announces over BGP (repeatable; by default the connection's
        /// RemoteSubnet other than 0.0.0.0/0).
        #[arg(long, requires = "bgp")]
        announce: Vec<ipnet::Ipv4Net>,
        #[command(flatten)]
        data: DataDir,
    },
    /// Print an SSL-VPN server's own OpenVPN configuration (its certificate, key and CRL inline):
    /// what an OpenVPN server answering the server's ClientConfig profiles runs.
    SslServerConfig {
        /// The SSL-VPN server (vss-...).
        id: String,
        /// The account that owns it.
        #[arg(long, default_value = accounts::ROOT_ACCOUNT)]
        account: String,
        #[command(flatten)]
        data: DataDir,
    },
    /// Register certificates for national-standard gateways (AssociateVpnGatewayWithCertificate
    /// takes their ids as CertificateId).
    Certificates {
        #[command(subcommand)]
        command: CertificatesCommand,
        #[command(flatten)]
        data: DataDir,
    },
    /// Manage AccessKeys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
        #[command(flatten)]
        data: DataDir,
    },
    /// Gateway hosts (gateway mode): which node runs which gateway; move a gateway to another.
    Hosts {
        #[command(subcommand)]
        command: HostsCommand,
        /// How long a host's heartbeat counts (ms): as the nodes' --host-lease-ms.
        #[arg(long, env = "GATEHOUSE_HOST_LEASE_MS", default_value_t = 10_000)]
        host_lease_ms: u64,
        #[command(flatten)]
        data: DataDir,
    },
    /// Talk to a running server's control API: reset, faults, tunnel status, lifecycle.
    Ctl(gatehouse::control::cli::CtlArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "GATEHOUSE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    data: DataDir,
    /// How long a lifecycle transition takes, in milliseconds (0 = as fast as possible).
    #[arg(long, env = "GATEHOUSE_TRANSITION_DELAY_MS", default_value_t = 1000)]
    transition_delay_ms: u64,
    /// VPN gateways per account and region.
    #[arg(long, env = "GATEHOUSE_QUOTA_VPN_GATEWAYS", default_value_t = 100)]
    quota_vpn_gateways: u64,
    /// Gateway mode: the name this node runs gateways under (the machine's hostname by default).
    /// Nodes sharing a database need names of their own.
    #[arg(long, env = "GATEHOUSE_HOST_NAME")]
    host_name: Option<String>,
    /// Gateway mode: how long a host's heartbeat counts (ms); a host silent for longer is down
    /// and its gateways' connections are shown down.
    #[arg(long, env = "GATEHOUSE_HOST_LEASE_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(500..))]
    host_lease_ms: u64,
    /// How long a node's claim on a lifecycle task's step lasts (ms): on a shared database,
    /// another node takes the task over when its node died and the lease ran out.
    #[arg(long, env = "GATEHOUSE_TASK_LEASE_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..))]
    task_lease_ms: u64,
    /// Customer gateways per account and region.
    #[arg(long, env = "GATEHOUSE_QUOTA_CUSTOMER_GATEWAYS", default_value_t = 100)]
    quota_customer_gateways: u64,
    /// IPsec connections per VPN gateway.
    #[arg(long, env = "GATEHOUSE_QUOTA_VPN_CONNECTIONS", default_value_t = 10)]
    quota_vpn_connections: u64,
    /// Destination-based routes per VPN gateway.
    #[arg(long, env = "GATEHOUSE_QUOTA_DESTINATION_ROUTES", default_value_t = 100)]
    quota_destination_routes: u64,
    /// Policy-based routes per VPN gateway.
    #[arg(long, env = "GATEHOUSE_QUOTA_POLICY_ROUTES", default_value_t = 100)]
    quota_policy_routes: u64,
    /// Requests per second per account (0 = unlimited).
    #[arg(long, env = "GATEHOUSE_RATE_LIMIT", default_value_t = 0)]
    rate_limit: u32,
    /// Regions to serve, comma-separated (default: Alibaba Cloud's public regions).
    #[arg(long, env = "GATEHOUSE_REGIONS", value_delimiter = ',')]
    regions: Vec<String>,
    /// Pool that gateways' public addresses come from.
    #[arg(long, env = "GATEHOUSE_PUBLIC_POOL", default_value = "198.18.0.0/15")]
    public_pool: ipnet::Ipv4Net,
    /// Pool that gateways' private addresses come from.
    #[arg(long, env = "GATEHOUSE_PRIVATE_POOL", default_value = "172.16.0.0/12")]
    private_pool: ipnet::Ipv4Net,
    /// What runs the tunnels: `simulated` (the emulator) or `netns` (gateway mode: a network
    /// namespace and a strongSwan charon per VPN gateway; needs root).
    #[arg(long, env = "GATEHOUSE_DATAPLANE", value_enum, default_value = "simulated")]
    dataplane: DataPlaneKind,
    /// Gateway mode: the host bridge that carries public traffic (each gateway's InternetIp).
    #[arg(long, env = "GATEHOUSE_UPLINK_BRIDGE")]
    uplink_bridge: Option<String>,
    /// Gateway mode: the default route of every gateway namespace.
    #[arg(long, env = "GATEHOUSE_UPLINK_GATEWAY")]
    uplink_gateway: Option<std::net::Ipv4Addr>,
    /// Gateway mode: VPC_ID=BRIDGE, the host bridge of a VPC (repeatable). Gateways of other VPCs
    /// are refused.
    #[arg(long = "vpc-bridge", env = "GATEHOUSE_VPC_BRIDGES", value_delimiter = ',', value_parser = parse_vpc_bridge)]
    vpc_bridges: Vec<(String, String)>,
    /// Gateway mode: gateway namespaces are named PREFIX + the gateway's ID.
    #[arg(long, env = "GATEHOUSE_NETNS_PREFIX", default_value = "gh-")]
    netns_prefix: String,
    /// Keep everything in a throwaway data directory, removed at exit (for tests that want a
    /// clean start; --data-dir is ignored).
    #[arg(long, env = "GATEHOUSE_EPHEMERAL")]
    ephemeral: bool,
    /// Also serve HTTPS on this address (port 0 picks a free port; the address is printed).
    #[arg(long, env = "GATEHOUSE_TLS_LISTEN")]
    tls_listen: Option<SocketAddr>,
    /// The HTTPS certificate chain (PEM); without it and --tls-key, a self-signed one is made
    /// once into <data-dir>/tls/ (its path and fingerprint are printed).
    #[arg(long, env = "GATEHOUSE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The HTTPS private key (PEM), with --tls-cert.
    #[arg(long, env = "GATEHOUSE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Connections open at once; beyond, new ones are closed at once (default: the descriptor
    /// limit, raised to its hard limit at start, less 128 kept for the store and data plane).
    #[arg(long, env = "GATEHOUSE_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// How long a request's head may take from its first byte (ms).
    #[arg(long, env = "GATEHOUSE_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// How long a kept-alive connection may wait for its next request (ms).
    #[arg(long, env = "GATEHOUSE_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    idle_timeout_ms: u64,
    /// How long a request's body may take to arrive after its head (ms).
    #[arg(long, env = "GATEHOUSE_BODY_TIMEOUT_MS", default_value_t = 30_000)]
    body_timeout_ms: u64,
    /// The largest request body taken; a larger declared Content-Length gets 413 at once.
    #[arg(long, env = "GATEHOUSE_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Gateway mode: the ESP implementation (default: the kernel's where it has ESP, else
    /// strongSwan's userspace kernel-libipsec).
    #[arg(long, env = "GATEHOUSE_ESP_BACKEND", value_enum)]
    esp_backend: Option<EspBackend>,
    /// Who may call the control API (/_gatehouse/…): `signed` (root-account AccessKeys) or
    /// `open` (anyone who reaches the listener: local test rigs only).
    #[arg(long, env = "GATEHOUSE_CONTROL_API", value_enum, default_value = "signed")]
    control_api: gatehouse::control::ControlAccess,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DataPlaneKind {
    Simulated,
    Netns,
}

fn parse_vpc_bridge(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((vpc, bridge)) if !vpc.is_empty() && !bridge.is_empty() && bridge.len() <= 15 => {
            Ok((vpc.to_string(), bridge.to_string()))
        }
        _ => Err(format!("{s:?}: expected VPC_ID=BRIDGE (a bridge name has at most 15 characters)")),
    }
}

#[derive(Subcommand)]
enum CertificatesCommand {
    /// Register a PEM certificate file; prints its CertificateId.
    Add {
        file: PathBuf,
        /// The region whose gateways may use it.
        #[arg(long)]
        region: String,
        /// A name for it.
        #[arg(long, default_value = "")]
        name: String,
        /// The account it belongs to.
        #[arg(long, default_value = accounts::ROOT_ACCOUNT)]
        account: String,
    },
    /// List an account's registered certificates.
    List {
        #[arg(long, default_value = accounts::ROOT_ACCOUNT)]
        account: String,
    },
}

#[derive(Subcommand)]
enum HostsCommand {
    /// Every host: its name, live or down, how many gateways it runs, its last heartbeat's age.
    List,
    /// Every gateway with its host and status.
    Gateways,
    /// Assign a gateway to another (live) host: the former host, if live, lets go of it first.
    Move {
        /// The gateway (vpn-...).
        gateway: String,
        /// The host that runs it from now on.
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// Create an account.
    Create { name: String },
    /// List accounts.
    List,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an AccessKey for an account and print it (the secret is shown only here).
    Create {
        #[arg(long)]
        account: String,
        #[arg(long)]
        json: bool,
    },
    /// List AccessKeys (never their secrets).
    List,
    /// Disable an AccessKey: requests signed with it are refused from now on.
    Disable { id: String },
    /// Enable a disabled AccessKey again.
    Enable { id: String },
}

fn main() -> anyhow::Result<()> {
    // Whatever Gatehouse writes (the store, keys, gateway-mode configuration and logs) is the
    // operator's alone, whatever umask it was started with.
    // SAFETY: umask only swaps the process's file-mode mask; no memory is involved.
    unsafe { libc::umask(0o077) };
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        // Colour only for a person at a terminal, never into a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "gatehouse=info".into()),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(*args).await,
            Command::Accounts { command, data } => accounts_command(command, data).await,
            Command::Keys { command, data } => keys_command(command, data).await,
            Command::PeerConfig { id, account, bgp, announce, data } => peer_config(id, account, bgp, announce, data),
            Command::SslServerConfig { id, account, data } => ssl_server_config(id, account, data),
            Command::Certificates { command, data } => certificates_command(command, data).await,
            Command::Hosts { command, host_lease_ms, data } => {
                hosts_command(command, Duration::from_millis(host_lease_ms), data).await
            }
            Command::Ctl(args) => gatehouse::control::cli::run(args).await,
        }
    })
}

/// The store and master key of existing data: the admin commands refuse a directory (or
/// database) that holds no Gatehouse data instead of starting an empty one there.
fn open(data: &DataDir) -> anyhow::Result<(Arc<dyn Store>, MasterKey)> {
    open_store(data, false)
}

/// The store and master key `data` names; `create` makes them on first use.
fn open_store(data: &DataDir, create: bool) -> anyhow::Result<(Arc<dyn Store>, MasterKey)> {
    if create {
        gatehouse::config::private_data_dir(&data.data_dir)
            .with_context(|| format!("making {}", data.data_dir.display()))?;
    }
    let store = gatehouse::store::open(data.database_url.as_deref(), &data.data_dir, create)?;
    let master = MasterKey::load_or_create(&data.data_dir)?;
    accounts::check_master_key(&*store, &master, &data.data_dir)?;
    Ok((store, master))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::new(args.listen, args.data.data_dir.clone());
    config.transition_delay = Duration::from_millis(args.transition_delay_ms);
    config.task_lease = Duration::from_millis(args.task_lease_ms);
    config.host_lease = Duration::from_millis(args.host_lease_ms);
    config.quotas.vpn_gateways = args.quota_vpn_gateways;
    config.quotas.customer_gateways = args.quota_customer_gateways;
    config.quotas.vpn_connections = args.quota_vpn_connections;
    config.quotas.destination_routes = args.quota_destination_routes;
    config.quotas.policy_routes = args.quota_policy_routes;
    config.rate_limit = args.rate_limit;
    config.control_access = args.control_api;
    if args.control_api == gatehouse::control::ControlAccess::Open {
        tracing::warn!("the control API is open: whoever reaches the listener may reset and inject faults");
    }
    let descriptors = api::server::raise_descriptor_limit();
    config.connections = gatehouse::config::ConnectionLimits {
        max_connections: args.max_connections.unwrap_or_else(|| api::server::default_max_connections(descriptors)),
        header: Duration::from_millis(args.header_timeout_ms),
        idle: Duration::from_millis(args.idle_timeout_ms),
        body: Duration::from_millis(args.body_timeout_ms),
        max_body: args.max_body_bytes,
    };
    config.public_pool = args.public_pool;
    config.private_pool = args.private_pool;
    if !args.regions.is_empty() {
        config.regions = args.regions.iter().map(|id| Region { id: id.clone(), local_name: id.clone() }).collect();
    }
    // An ephemeral store lives in a directory of its own, removed when serving ends.
    if args.ephemeral && args.data.database_url.is_some() {
        anyhow::bail!(
            "--ephemeral keeps the embedded store in a throwaway directory: it cannot be used with --database-url"
        );
    }
    let _ephemeral = if args.ephemeral {
        let dir = std::env::temp_dir().join(format!("gatehouse-ephemeral-{}", uuid::Uuid::new_v4()));
        println!("gatehouse ephemeral store {} (removed at exit)", dir.display());
        config.data_dir = dir.clone();
        Some(RemoveOnDrop(dir))
    } else {
        None
    };
    let data_dir = config.data_dir.clone();
    let data = DataDir { data_dir: data_dir.clone(), ..args.data.clone() };
    let (store, master_key) = open_store(&data, true)?;
    println!("gatehouse store: {}", store.describe());
    gatehouse::actions::reindex(&*store).await?;
    let root = accounts::ensure_root(&*store, &master_key).await?;
    // Another node may have made the root key at the same moment, with another master key.
    accounts::check_master_key(&*store, &master_key, &data_dir)?;
    match root {
        Some((id, secret)) => {
            println!("Created the root account's AccessKey (shown once):");
            println!("  AccessKeyId:     {id}");
            println!("  AccessKeySecret: {}", secret.expose());
        }
        // A pair fixed in the environment is the operator's own: nothing to say.
        None if std::env::var_os(accounts::ROOT_KEY_ID_ENV).is_some_and(|v| !v.is_empty()) => {}
        None => println!(
            "The root account's AccessKey was shown when {} was first used; \
             `gatehouse keys create --account root --data-dir {0}` makes another.",
            data_dir.display()
        ),
    }
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let plane: Arc<dyn DataPlane> = match args.dataplane {
        DataPlaneKind::Simulated => Arc::new(Simulated::new(events_tx)),
        DataPlaneKind::Netns => {
            config.host_id = gatehouse::config::host_id(&data_dir)?;
            let host = register_host(&*store, &config.host_id, args.host_name.clone(), config.host_lease).await?;
            println!("gatehouse gateway host: {host}");
            config.host = Some(host);
            let uplink_bridge =
                args.uplink_bridge.clone().context("--dataplane netns needs --uplink-bridge (see README)")?;
            let backend = match args.esp_backend {
                Some(b) => b,
                None => gatehouse::dataplane::netns::detect_backend().await,
            };
            tracing::info!(?backend, "gateway mode: ESP backend");
            config.vpcs = Some(args.vpc_bridges.iter().map(|(vpc, _)| vpc.clone()).collect());
            config.national_standard = false;
            config.simulated_dataplane = false;
            let netns = NetnsConfig {
                dir: data_dir.join("dataplane"),
                prefix: args.netns_prefix.clone(),
                uplink_bridge,
                uplink_gateway: args.uplink_gateway,
                vpc_bridges: args.vpc_bridges.iter().cloned().collect(),
                public_prefix_len: config.public_pool.prefix_len(),
                private_prefix_len: config.private_pool.prefix_len(),
                backend,
            };
            Arc::new(Netns::new(netns, events_tx)?)
        }
    };
    let listener =
        tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let mut listeners = vec![api::server::Listener { tcp: listener, tls: None }];
    let mut tls_banner = None;
    if let Some(tls_addr) = args.tls_listen {
        let identity = api::tls::identity(args.tls_cert.as_deref(), args.tls_key.as_deref(), &data_dir, tls_addr.ip())?;
        let tcp = tokio::net::TcpListener::bind(tls_addr).await.with_context(|| format!("binding {tls_addr}"))?;
        let tls_addr = tcp.local_addr()?;
        tls_banner = Some(format!(
            "gatehouse listening on https://{tls_addr}\ngatehouse TLS certificate {} (SHA-256 {})",
            identity.cert_path.display(),
            identity.fingerprint
        ));
        listeners.push(api::server::Listener { tcp, tls: Some(identity.acceptor) });
    }
    let app = Arc::new(App {
        limiter: RateLimiter::new(config.rate_limit),
        config,
        store,
        master_key,
        keys: Default::default(),
        tasks_queued: Default::default(),
        node: uuid::Uuid::new_v4().to_string(),
        control: Default::default(),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let reconciler = Arc::new(reconciler::Reconciler { app: app.clone(), plane: plane.clone() });
    let workers = tokio::spawn(reconciler.run(events_rx, stop_rx));
    println!("gatehouse listening on http://{addr}");
    if let Some(banner) = tls_banner {
        println!("{banner}");
    }
    tracing::info!(%addr, "serving");
    let limits = app.config.connections;
    tracing::info!(max_connections = limits.max_connections, descriptors, "connection limits");
    api::server::serve(listeners, api::router(app), limits, shutdown()).await;
    // Daemons keep running: a restarted Gatehouse adopts them.
    let _ = stop_tx.send(true);
    plane.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), workers).await;
    Ok(())
}

/// Registers this node, whose data directory's host id is `id`, as gateway host `name` (the
/// machine's hostname by default); fails while another live node holds the name.
async fn register_host(store: &dyn Store, id: &str, name: Option<String>, lease: Duration) -> anyhow::Result<String> {
    let name = match name {
        Some(n) => n,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname").context("reading the hostname")?.trim().into(),
    };
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        anyhow::bail!("--host-name {name:?}: 1-64 letters, digits, '-', '_' or '.'");
    }
    let (host, id, now) = (name.clone(), id.to_string(), gatehouse::store::now_ms());
    let stale = gateway_hosts::stale_before(now, lease);
    match store.write(move |tx| tx.host_heartbeat(&host, &id, now, stale)).await? {
        gatehouse::store::Heartbeat::Taken => {
            anyhow::bail!("another live node runs as gateway host {name:?}: give this one another --host-name")
        }
        _ => Ok(name),
    }
}

/// A directory removed when this goes out of scope (the ephemeral store's).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn account_id(tx: &dyn gatehouse::store::Tx, name: &str) -> gatehouse::api::error::ApiResult<i64> {
    let acct = tx.account_by_name(name)?.ok_or_else(|| {
        gatehouse::api::error::ApiError::not_found("Account.NotFound", format!("account {name} does not exist"))
    })?;
    Ok(acct.id)
}

fn peer_config(
    id: String,
    account: String,
    bgp: Option<gatehouse::peer_config::BgpDaemon>,
    announce: Vec<ipnet::Ipv4Net>,
    data: DataDir,
) -> anyhow::Result<()> {
    let (store, master) = open(&data)?;
    let bgp = bgp.map(|daemon| (daemon, announce.as_slice()));
    let conf = store.read(|tx| {
        gatehouse::actions::vpn_connections::peer_config(tx, &master, account_id(tx, &account)?, &id, bgp)
    })?;
    print!("{conf}");
    Ok(())
}

fn ssl_server_config(id: String, account: String, data: DataDir) -> anyhow::Result<()> {
    let (store, master) = open(&data)?;
    let conf =
        store.read(|tx| gatehouse::actions::ssl_vpn::server_config(tx, &master, account_id(tx, &account)?, &id))?;
    print!("{conf}");
    Ok(())
}

async fn certificates_command(command: CertificatesCommand, data: DataDir) -> anyhow::Result<()> {
    use gatehouse::actions::certificates;
    let (store, _) = open(&data)?;
    match command {
        CertificatesCommand::Add { file, region, name, account } => {
            let pem = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let cert = store
                .write(move |tx| {
                    let id = account_id(tx, &account)?;
                    certificates::register(tx, id, &region, &name, &pem)
                })
                .await?;
            println!("{}", cert.id);
        }
        CertificatesCommand::List { account } => {
            let certs = store.read(|tx| certificates::registered(tx, account_id(tx, &account)?))?;
            for c in certs {
                println!("{}\t{}\t{}", c.id, c.region_id, c.name);
            }
        }
    }
    Ok(())
}

async fn accounts_command(command: AccountsCommand, data: DataDir) -> anyhow::Result<()> {
    let (store, _) = open(&data)?;
    match command {
        AccountsCommand::Create { name } => {
            let a = accounts::create_account(&*store, &name).await?;
            println!("created account {} (id {})", a.name, a.id);
        }
        AccountsCommand::List => {
            for a in store.read(|tx| tx.accounts())? {
                println!("{}\t{}", a.id, a.name);
            }
        }
    }
    Ok(())
}

async fn keys_command(command: KeysCommand, data: DataDir) -> anyhow::Result<()> {
    let (store, master) = open(&data)?;
    match command {
        KeysCommand::Create { account, json } => {
            let (id, secret) = accounts::create_key(&*store, &master, &account, None).await?;
            if json {
                let out =
                    serde_json::json!({"AccountName": account, "AccessKeyId": id, "AccessKeySecret": secret.expose()});
                println!("{out}");
            } else {
                println!("AccessKeyId:     {id}\nAccessKeySecret: {}", secret.expose());
            }
        }
        KeysCommand::List => {
            for k in store.read(|tx| tx.keys())? {
                let state = if k.enabled { "enabled" } else { "disabled" };
                println!("{}\t{}\t{state}", k.id, k.account_name);
            }
        }
        KeysCommand::Disable { id } => set_enabled(&*store, id, false).await?,
        KeysCommand::Enable { id } => set_enabled(&*store, id, true).await?,
    }
    Ok(())
}

async fn hosts_command(command: HostsCommand, lease: Duration, data: DataDir) -> anyhow::Result<()> {
    let (store, _) = open(&data)?;
    let now = gatehouse::store::now_ms();
    match command {
        HostsCommand::List => {
            for h in store.read(|tx| gateway_hosts::list(tx, now, lease))? {
                let state = if h.live { "live" } else { "down" };
                println!("{}\t{state}\t{}\t{}", h.row.name, h.gateways, now - h.row.heartbeat_ms);
            }
        }
        HostsCommand::Gateways => {
            for g in store.read(gatehouse::actions::gateway_sync::live_gateways)? {
                println!("{}\t{}\t{}\t{}", g.id, g.account_id, g.host, g.status.wire());
            }
        }
        HostsCommand::Move { gateway, to } => {
            let moved = store.write(move |tx| gateway_hosts::move_gateway(tx, &gateway, &to, now, lease)).await?;
            println!("{}: {} -> {}", moved.gateway_id, moved.from, moved.to);
        }
    }
    Ok(())
}

async fn set_enabled(store: &dyn Store, id: String, enabled: bool) -> anyhow::Result<()> {
    let key = id.clone();
    if !store.write(move |tx| tx.set_key_enabled(&key, enabled)).await? {
        anyhow::bail!("no access key {id}");
    }
    println!("{} {id}", if enabled { "enabled" } else { "disabled" });
    Ok(())
}
