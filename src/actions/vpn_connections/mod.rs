//! IPsec-VPN connections, reached from two dialects: Alibaba's CreateVpnConnection,
//! ModifyVpnConnectionAttribute, DescribeVpnConnections, DescribeVpnConnection,
//! DownloadVpnConnectionConfig and DeleteVpnConnection (`alibaba`), and Tencent's AddVpnConnEx
//! (`tencent`).
//!
//! Each action is three pieces: the dialect decodes its parameters into a typed input
//! (`NewConnection`, `ConnectionFields`, `ConnectionFilter`), one operation here (`create`,
//! `modify`, `get`, `list`, `tunnel_configs`, `delete`) runs it in the transaction the dialect
//! opens and returns a typed output or a `ConnectionError`, and the dialect renders either
//! (its answer's fields; its code for each error, in one function). So AddVpnConnEx and
//! CreateVpnConnection are one create.
//!
//! A connection has one tunnel (single-tunnel gateways) or two, a `master` and a `slave`, one on
//! each of the gateway's public addresses (gateways created with a disaster-recovery vSwitch).
//! Both kinds are stored alike, as a list of tunnels. Every change puts the gateway in `updating`;
//! the reconciler applies it and records what the data plane reports (`gateway_sync`). The
//! rules that tie a connection to its gateway and the other connections are in `rules`.

pub mod alibaba;
mod rules;
pub mod tencent;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use self::rules::{cgw_ref, check_against_gateway};
use super::customer_gateways::{self, CustomerGateway};
use super::ipsec::{BgpConfig, Defaults, HealthCheckConfig, IkeConfig, IpsecConfig, TunnelSpec};
use super::rules::new_id;
use super::vpc_tasks;
use super::vpn_gateways::{self, GatewayStatus, VpnGateway};
use super::vpn_routes;
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::app::App;
use crate::dataplane::{BgpStatus, HealthStatus, TunnelStatus};
use crate::secret::MasterKey;
use crate::store::{now_ms, ListQuery, Resource, TagBinding, Tx, TxExt};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tunnel {
    pub id: String,
    /// The VPN gateway address this tunnel ends on.
    pub internet_ip: String,
    pub spec: TunnelSpec,
    /// Negotiation status, as the data plane last reported it.
    pub status: TunnelStatus,
    pub bgp_status: BgpStatus,
    /// The data plane's sequence number of `status` (see `dataplane::TunnelReport::seq`).
    #[serde(default)]
    pub status_seq: u64,
    /// A status an operator forced through the control API (simulated data plane only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced: Option<TunnelStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VpnConnection {
    pub id: String,
    pub account_id: i64,
    pub region_id: String,
    pub vpn_gateway_id: String,
    pub name: String,
    pub local_subnet: String,
    pub remote_subnet: String,
    pub effect_immediately: bool,
    pub auto_config_route: bool,
    pub health_check: HealthCheckConfig,
    pub health_status: HealthStatus,
    /// Why the data plane could not run this connection as configured (empty: it could).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dataplane_error: String,
    /// Dual-tunnel connections: whether the tunnels run BGP.
    pub enable_tunnels_bgp: bool,
    pub dual_tunnel: bool,
    /// One tunnel (single-tunnel mode) or master + slave.
    pub tunnels: Vec<Tunnel>,
    pub state: ConnectionState,
    /// Set by a change with EffectImmediately: the next apply renegotiates the tunnels.
    pub renegotiate: bool,
    pub created_ms: i64,
}

crate::wire_enum!(
    /// A connection's control-plane state (`State`): `updating` until the gateway has applied the
    /// last change, then `active`; `deleting` until it is gone.
    ConnectionState {
        #[default]
        Updating = "updating",
        Active = "active",
        Deleting = "deleting",
    }
);

crate::resource!(VpnConnection, "VpnConnection", {
    fn parent_id(&self) -> Option<&str> {
        Some(&self.vpn_gateway_id)
    }
    fn status(&self) -> &str {
        self.state.wire()
    }
    fn name(&self) -> &str {
        &self.name
    }
    /// What the rules across connections look up (see `rules::refs`).
    fn refs(&self) -> Vec<String> {
        rules::refs(self)
    }
});

impl VpnConnection {
    /// The single tunnel of a single-tunnel connection, the master of a dual-tunnel one.
    pub fn main_tunnel(&self) -> &Tunnel {
        &self.tunnels[0]
    }

    pub fn customer_gateway_ids(&self) -> impl Iterator<Item = &str> {
        self.tunnels.iter().map(|t| t.spec.customer_gateway_id.as_str())
    }

    pub fn bgp_enabled(&self) -> bool {
        self.tunnels.iter().any(|t| t.spec.bgp.enable_bgp)
    }

    pub fn local_subnets(&self) -> Vec<Ipv4Net> {
        self.local_subnet.split(',').filter_map(|s| s.parse().ok()).collect()
    }

    pub fn remote_subnets(&self) -> Vec<Ipv4Net> {
        self.remote_subnet.split(',').filter_map(|s| s.parse().ok()).collect()
    }
}

/// How a request to this family went wrong, whatever the dialect. Each dialect's renderer gives
/// every variant its code in one place (`alibaba::error`, `tencent::error`).
#[derive(Debug)]
pub enum ConnectionError {
    /// The named VPC holds none of the account's gateways in the region (VPCs are not modelled
    /// apart from their gateways).
    VpcNotFound,
    GatewayNotFound,
    CustomerGatewayNotFound,
    ConnectionNotFound,
    /// The gateway is not `active`: another change, its creation or its deletion is under way.
    GatewayConfiguring,
    IpsecDisabled,
    QuotaFull,
    /// A single-tunnel connection names no customer gateway.
    MissingCustomerGateway,
    /// A single-tunnel setting (named) for a gateway or connection with two tunnels.
    TakesDualTunnel(&'static str),
    /// Tunnel options for a gateway that takes single-tunnel connections.
    TakesSingleTunnel,
    /// The customer gateway's address is one of the gateway's.
    CustomerGatewayIsGateway,
    /// A national-standard gateway's tunnel without the peer's CA certificate.
    MissingPeerCertificate,
    /// A peer CA certificate for a gateway that is not national-standard.
    PeerCertificateNotTaken,
    /// BGP with a customer gateway that has no ASN.
    CustomerGatewayWithoutAsn,
    /// The BGP tunnel CIDR (named) is another tunnel's on this gateway.
    TunnelCidrTaken(String),
    /// Connections between one gateway and one customer gateway share one IKE configuration.
    DifferentIkeConfigs,
    /// Connections between one gateway and one customer gateway keep their selectors apart.
    SelectorsOverlap,
    /// DryRun: every check passed, nothing was changed.
    DryRunPassed,
    /// A rule of another family, already in the service's codes: the IKE, IPsec, BGP and
    /// health-check settings, the IPsec server, certificates, SSL-VPN and routes, the store.
    Rule(ApiError),
}

impl From<ApiError> for ConnectionError {
    fn from(e: ApiError) -> Self {
        ConnectionError::Rule(e)
    }
}

pub type ConnectionResult<T> = Result<T, ConnectionError>;

/// The phase-1 and phase-2 settings of a single-tunnel connection, as a dialect hands them over.
/// (No `Debug`: the text holds the PSK in clear.)
pub enum Negotiation {
    /// JSON text (`IkeConfig`, `IpsecConfig`), read against the gateway: the defaults and the
    /// algorithms allowed depend on it (national-standard or not) and on the peer's address.
    Text { ike: Option<String>, ipsec: Option<String> },
    /// Settled by the dialect with its own defaults. An empty `local_id`/`remote_id` takes the
    /// gateway's/the customer gateway's address.
    Settled { ike: Box<IkeConfig>, ipsec: IpsecConfig },
}

/// A connection's own settings as a create or modify request gives them (absent: the default on
/// create, unchanged on modify). No `Debug`, for the PSK's sake.
pub struct ConnectionFields {
    pub name: Option<String>,
    /// Validated, normalized (`10.0.0.0/24,10.1.0.0/24`).
    pub local_subnet: Option<String>,
    pub remote_subnet: Option<String>,
    pub effect_immediately: Option<bool>,
    pub auto_config_route: Option<bool>,
    pub enable_dpd: Option<bool>,
    pub enable_nat_traversal: Option<bool>,
    pub remote_ca_certificate: Option<String>,
    pub customer_gateway_id: Option<String>,
    pub negotiation: Negotiation,
    pub bgp: Option<String>,
    pub health_check: Option<String>,
    /// `TunnelOptionsSpecification.N.*`: the two tunnels of a dual-tunnel connection, read against
    /// the gateway's two addresses.
    pub tunnel_options: Params,
}

impl ConnectionFields {
    /// The first single-tunnel setting given, if any (a dual-tunnel connection takes none).
    fn single_tunnel_only(&self) -> Option<&'static str> {
        let (ike, ipsec) = match &self.negotiation {
            Negotiation::Text { ike, ipsec } => (ike.is_some(), ipsec.is_some()),
            Negotiation::Settled { .. } => (true, true),
        };
        [
            ("CustomerGatewayId", self.customer_gateway_id.is_some()),
            ("EnableDpd", self.enable_dpd.is_some()),
            ("EnableNatTraversal", self.enable_nat_traversal.is_some()),
            ("IkeConfig", ike),
            ("IpsecConfig", ipsec),
            ("BgpConfig", self.bgp.is_some()),
            ("HealthCheckConfig", self.health_check.is_some()),
            ("RemoteCaCertificate", self.remote_ca_certificate.is_some()),
        ]
        .into_iter()
        .find(|(_, given)| *given)
        .map(|(name, _)| name)
    }
}

/// A new connection, as either dialect asks for it.
pub struct NewConnection {
    pub region: String,
    pub vpn_gateway_id: String,
    /// The VPC the gateway must be in, when the dialect names one.
    pub vpc_id: Option<String>,
    pub fields: ConnectionFields,
    pub tags: Vec<(String, String)>,
    pub enable_tunnels_bgp: bool,
    pub dry_run: bool,
}

/// What a create did: the connection, and the task that applies it (`vpc_tasks`).
#[derive(Debug)]
pub struct Created {
    pub connection: VpnConnection,
    pub task_id: u64,
}

/// A connection with what its views show beside it: its customer gateways and its tags.
#[derive(Debug)]
pub struct ConnectionView {
    pub connection: VpnConnection,
    pub customer_gateways: Vec<CustomerGateway>,
    pub tags: Vec<(String, String)>,
}

/// A page of connections, with what their views need.
#[derive(Debug)]
pub struct ConnectionPage {
    pub total: u64,
    pub connections: Vec<VpnConnection>,
    pub customer_gateways: Vec<CustomerGateway>,
    pub tags: crate::store::TagMap,
}

/// The filters of a list.
#[derive(Debug)]
pub struct ConnectionFilter {
    pub region: String,
    pub ids: Vec<String>,
    pub vpn_gateway_id: Option<String>,
    pub customer_gateway_id: Option<String>,
    pub tags: Vec<(String, Option<String>)>,
    pub offset: u64,
    pub limit: u64,
}

/// One tunnel as the gateway runs it (DownloadVpnConnectionConfig): its ends and its peer.
#[derive(Debug)]
pub struct TunnelConfig<'a> {
    pub tunnel: &'a Tunnel,
    pub customer_gateway: CustomerGateway,
}

/// The caller's gateway in `region`, active.
fn active_gateway(tx: &dyn Tx, account_id: i64, region: &str, id: &str) -> ConnectionResult<VpnGateway> {
    let gw = tx.get_in::<VpnGateway>(account_id, region, id)?.ok_or(ConnectionError::GatewayNotFound)?;
    if gw.status != GatewayStatus::Active {
        return Err(ConnectionError::GatewayConfiguring);
    }
    Ok(gw)
}

fn connection(tx: &dyn Tx, account_id: i64, region: &str, id: &str) -> ConnectionResult<VpnConnection> {
    tx.get_in::<VpnConnection>(account_id, region, id)?.ok_or(ConnectionError::ConnectionNotFound)
}

/// The caller's gateway `id` in `region`, looked for in `vpc_id` when the dialect names one: a
/// VPC that holds none of the account's gateways there is not found, nor is a gateway of another.
fn gateway_in(
    tx: &dyn Tx,
    account_id: i64,
    region: &str,
    vpc_id: Option<&str>,
    id: &str,
) -> ConnectionResult<VpnGateway> {
    if let Some(vpc) = vpc_id {
        let q = ListQuery {
            kind: VpnGateway::KIND,
            account_id,
            region_id: Some(region.to_string()),
            parent_id: Some(vpc.to_string()),
            limit: Some(1),
            ..Default::default()
        };
        if tx.count(&q)? == 0 {
            return Err(ConnectionError::VpcNotFound);
        }
    }
    let gw = tx.get_in::<VpnGateway>(account_id, region, id)?.ok_or(ConnectionError::GatewayNotFound)?;
    if vpc_id.is_some_and(|vpc| vpc != gw.vpc_id) {
        return Err(ConnectionError::GatewayNotFound);
    }
    Ok(gw)
}

/// The phase-1/phase-2 configuration of a new single tunnel.
fn negotiated(n: &Negotiation, d: &Defaults) -> ApiResult<(IkeConfig, IpsecConfig)> {
    match n {
        Negotiation::Text { ike, ipsec } => {
            Ok((IkeConfig::parse(ike.as_deref(), d)?, IpsecConfig::parse(ipsec.as_deref(), d)?))
        }
        Negotiation::Settled { ike, ipsec } => {
            let mut ike = (**ike).clone();
            if ike.local_id.is_empty() {
                ike.local_id = d.local_ip.to_string();
            }
            if ike.remote_id.is_empty() {
                ike.remote_id = d.remote_ip.to_string();
            }
            Ok((ike, ipsec.clone()))
        }
    }
}

/// Creates a connection in one transaction: checks, tunnels, routes, tags, the gateway's update
/// and its task.
pub fn create(tx: &mut dyn Tx, app: &App, account_id: i64, new: &NewConnection) -> ConnectionResult<Created> {
    let (key, quotas, f) = (&app.master_key, &app.config.quotas, &new.fields);
    let region = &new.region;
    let mut gw = gateway_in(tx, account_id, region, new.vpc_id.as_deref(), &new.vpn_gateway_id)?;
    if gw.status != GatewayStatus::Active {
        return Err(ConnectionError::GatewayConfiguring);
    }
    if !gw.enable_ipsec {
        return Err(ConnectionError::IpsecDisabled);
    }
    if tx.count(&ListQuery {
        kind: VpnConnection::KIND,
        account_id,
        parent_id: Some(gw.id.clone()),
        ..Default::default()
    })? >= quotas.vpn_connections
    {
        return Err(ConnectionError::QuotaFull);
    }
    let national_standard = gw.vpn_type == "NationalStandard";
    let dual = !gw.disaster_recovery_internet_ip.is_empty();
    let tunnels: Vec<Tunnel> = if dual {
        if let Some(name) = f.single_tunnel_only() {
            return Err(ConnectionError::TakesDualTunnel(name));
        }
        let cgw_ip = |id: &str| customer_gateways::find(tx, account_id, region, id).map(|c| c.ip_address);
        let addresses = (gw.internet_ip.as_str(), gw.disaster_recovery_internet_ip.as_str());
        let specs = TunnelSpec::parse_all(&f.tunnel_options, &cgw_ip, addresses, national_standard, key)?;
        specs
            .into_iter()
            .zip([&gw.internet_ip, &gw.disaster_recovery_internet_ip])
            .map(|(s, ip)| new_tunnel(s, ip))
            .collect()
    } else {
        if f.tunnel_options.get("TunnelOptionsSpecification.1.Role").is_some()
            || f.tunnel_options.get("TunnelOptionsSpecification.1.CustomerGatewayId").is_some()
        {
            return Err(ConnectionError::TakesSingleTunnel);
        }
        let cgw_id = f.customer_gateway_id.clone().ok_or(ConnectionError::MissingCustomerGateway)?;
        let cgw = tx
            .get_in::<CustomerGateway>(account_id, region, &cgw_id)?
            .ok_or(ConnectionError::CustomerGatewayNotFound)?;
        let d = Defaults { local_ip: &gw.internet_ip, remote_ip: &cgw.ip_address, national_standard, master_key: key };
        let (ike, ipsec) = negotiated(&f.negotiation, &d)?;
        let spec = TunnelSpec {
            role: "master".into(),
            customer_gateway_id: cgw_id,
            enable_dpd: f.enable_dpd.unwrap_or(true),
            enable_nat_traversal: f.enable_nat_traversal.unwrap_or(true),
            remote_ca_certificate: f.remote_ca_certificate.clone().unwrap_or_default(),
            ike,
            ipsec,
            bgp: BgpConfig::parse(f.bgp.as_deref())?,
        };
        vec![new_tunnel(spec, &gw.internet_ip)]
    };
    let conn = VpnConnection {
        id: new_id("vco"),
        account_id,
        region_id: region.clone(),
        vpn_gateway_id: gw.id.clone(),
        name: f.name.clone().unwrap_or_default(),
        local_subnet: f.local_subnet.clone().unwrap_or_default(),
        remote_subnet: f.remote_subnet.clone().unwrap_or_default(),
        effect_immediately: f.effect_immediately.unwrap_or(false),
        auto_config_route: f.auto_config_route.unwrap_or(true),
        health_check: HealthCheckConfig::parse(f.health_check.as_deref())?,
        health_status: HealthStatus::Unknown,
        dataplane_error: String::new(),
        enable_tunnels_bgp: new.enable_tunnels_bgp,
        dual_tunnel: dual,
        tunnels,
        state: ConnectionState::Updating,
        renegotiate: f.effect_immediately.unwrap_or(false),
        created_ms: now_ms(),
    };
    check_against_gateway(tx, &gw, &conn, key)?;
    if conn.auto_config_route {
        vpn_routes::add_connection_routes(tx, &conn, quotas)?;
    }
    if new.dry_run {
        return Err(ConnectionError::DryRunPassed);
    }
    tx.insert_as(&conn)?;
    for (k, v) in &new.tags {
        let b = TagBinding {
            kind: VpnConnection::KIND.into(),
            resource_id: conn.id.clone(),
            key: k.clone(),
            value: v.clone(),
        };
        tx.set_tag(&b, account_id)?;
    }
    vpn_gateways::begin_update(tx, &mut gw, app.config.transition_delay)?;
    let task_id = vpc_tasks::record(tx, &gw, &conn.id)?;
    Ok(Created { connection: conn, task_id })
}

fn new_tunnel(spec: TunnelSpec, internet_ip: &str) -> Tunnel {
    Tunnel {
        id: new_id("tun"),
        internet_ip: internet_ip.to_string(),
        spec,
        status: TunnelStatus::IkeSaNotEstablished,
        bgp_status: BgpStatus::None,
        status_seq: 0,
        forced: None,
    }
}

/// `10.0.0.0/24, 10.1.0.0/24` → `10.0.0.0/24,10.1.0.0/24`.
pub fn normalize_subnets(s: &str) -> String {
    s.split(',').map(str::trim).filter(|c| !c.is_empty()).collect::<Vec<_>>().join(",")
}

/// Changes connection `id` in one transaction and puts its gateway in `updating`.
pub fn modify(
    tx: &mut dyn Tx,
    app: &App,
    account_id: i64,
    region: &str,
    id: &str,
    f: &ConnectionFields,
) -> ConnectionResult<ConnectionView> {
    let key = &app.master_key;
    let mut conn = connection(tx, account_id, region, id)?;
    let mut gw = active_gateway(tx, account_id, region, &conn.vpn_gateway_id)?;
    if let Some(n) = &f.name {
        conn.name = n.clone();
    }
    if let Some(s) = &f.local_subnet {
        conn.local_subnet = s.clone();
    }
    if let Some(s) = &f.remote_subnet {
        conn.remote_subnet = s.clone();
    }
    if let Some(e) = f.effect_immediately {
        conn.effect_immediately = e;
    }
    if let Some(a) = f.auto_config_route {
        conn.auto_config_route = a;
    }
    if let Some(h) = &f.health_check {
        conn.health_check = conn.health_check.merge(Some(h))?;
    }
    let national_standard = gw.vpn_type == "NationalStandard";
    if conn.dual_tunnel {
        if let Some(name) = f.single_tunnel_only() {
            return Err(ConnectionError::TakesDualTunnel(name));
        }
        let cgw_ip = |id: &str| customer_gateways::find(tx, account_id, region, id).map(|c| c.ip_address);
        for t in &mut conn.tunnels {
            t.spec = t.spec.merge(&f.tunnel_options, &cgw_ip, &t.internet_ip, national_standard, key)?;
        }
    } else {
        let t = &mut conn.tunnels[0];
        let remote_ip = customer_gateways::find(tx, account_id, region, &t.spec.customer_gateway_id)?.ip_address;
        let d = Defaults { local_ip: &gw.internet_ip, remote_ip: &remote_ip, national_standard, master_key: key };
        let s = &mut t.spec;
        if let Some(v) = f.enable_dpd {
            s.enable_dpd = v;
        }
        if let Some(v) = f.enable_nat_traversal {
            s.enable_nat_traversal = v;
        }
        if let Some(v) = &f.remote_ca_certificate {
            s.remote_ca_certificate = v.clone();
        }
        match &f.negotiation {
            Negotiation::Text { ike, ipsec } => {
                s.ike = s.ike.merge(ike.as_deref(), &d)?;
                s.ipsec = s.ipsec.merge(ipsec.as_deref(), &d)?;
            }
            Negotiation::Settled { .. } => (s.ike, s.ipsec) = negotiated(&f.negotiation, &d)?,
        }
        s.bgp = s.bgp.merge(f.bgp.as_deref())?;
    }
    check_against_gateway(tx, &gw, &conn, key)?;
    vpn_routes::remove_connection_routes(tx, account_id, &conn.id, true)?;
    if conn.auto_config_route {
        vpn_routes::add_connection_routes(tx, &conn, &app.config.quotas)?;
    }
    conn.state = ConnectionState::Updating;
    conn.renegotiate |= conn.effect_immediately;
    tx.update_as(&conn)?;
    vpn_gateways::begin_update(tx, &mut gw, app.config.transition_delay)?;
    Ok(view_of(tx, account_id, conn)?)
}

fn view_of(tx: &dyn Tx, account_id: i64, connection: VpnConnection) -> ApiResult<ConnectionView> {
    let customer_gateways = customer_gateways_of(tx, account_id, std::slice::from_ref(&connection))?;
    let mut tags = tx.tags_of(VpnConnection::KIND, account_id, std::slice::from_ref(&connection.id))?;
    let tags = tags.remove(&connection.id).unwrap_or_default();
    Ok(ConnectionView { connection, customer_gateways, tags })
}

/// Connection `id` with what its view needs.
pub fn get(tx: &dyn Tx, account_id: i64, region: &str, id: &str) -> ConnectionResult<ConnectionView> {
    let conn = connection(tx, account_id, region, id)?;
    Ok(view_of(tx, account_id, conn)?)
}

/// A page of the caller's connections.
pub fn list(tx: &dyn Tx, account_id: i64, filter: &ConnectionFilter) -> ConnectionResult<ConnectionPage> {
    let query = ListQuery {
        kind: VpnConnection::KIND,
        account_id,
        region_id: Some(filter.region.clone()),
        ids: filter.ids.clone(),
        parent_id: filter.vpn_gateway_id.clone(),
        tags: filter.tags.clone(),
        refers_to: filter.customer_gateway_id.as_deref().map(cgw_ref).into_iter().collect(),
        offset: filter.offset,
        limit: Some(filter.limit),
        ..Default::default()
    };
    let (connections, tags, total) = tx.page_as::<VpnConnection>(&query, true)?;
    let customer_gateways = customer_gateways_of(tx, account_id, &connections)?;
    Ok(ConnectionPage { total, connections, customer_gateways, tags })
}

/// Each tunnel of `conn` with its customer gateway.
pub fn tunnel_configs<'a>(tx: &dyn Tx, conn: &'a VpnConnection) -> ConnectionResult<Vec<TunnelConfig<'a>>> {
    conn.tunnels
        .iter()
        .map(|t| {
            let customer_gateway =
                customer_gateways::find(tx, conn.account_id, &conn.region_id, &t.spec.customer_gateway_id)?;
            Ok(TunnelConfig { tunnel: t, customer_gateway })
        })
        .collect()
}

/// Starts deleting connection `id`: its routes go, the gateway applies the removal.
pub fn delete(tx: &mut dyn Tx, app: &App, account_id: i64, region: &str, id: &str) -> ConnectionResult<()> {
    let mut conn = connection(tx, account_id, region, id)?;
    let mut gw =
        tx.get_in::<VpnGateway>(account_id, region, &conn.vpn_gateway_id)?.ok_or(ConnectionError::GatewayNotFound)?;
    if gw.status != GatewayStatus::Active {
        return Err(ConnectionError::GatewayConfiguring);
    }
    vpn_gateways::begin_update(tx, &mut gw, app.config.transition_delay)?;
    vpn_routes::remove_connection_routes(tx, account_id, &conn.id, false)?;
    conn.state = ConnectionState::Deleting;
    tx.update_as(&conn)?;
    Ok(())
}

/// The connections of one gateway.
pub fn of_gateway(tx: &dyn Tx, gw: &VpnGateway) -> ApiResult<Vec<VpnConnection>> {
    tx.list_as(&ListQuery {
        kind: VpnConnection::KIND,
        account_id: gw.account_id,
        parent_id: Some(gw.id.clone()),
        ..Default::default()
    })
}

/// The caller's connections in `region` that use the customer gateway `cgw_id`.
pub fn using_customer_gateway(
    tx: &dyn Tx,
    account_id: i64,
    region: &str,
    cgw_id: &str,
) -> ApiResult<Vec<VpnConnection>> {
    tx.list_as(&ListQuery {
        kind: VpnConnection::KIND,
        account_id,
        region_id: Some(region.to_string()),
        refers_to: vec![cgw_ref(cgw_id)],
        ..Default::default()
    })
}

/// Customer gateways the connections name, for their views.
pub fn customer_gateways_of(tx: &dyn Tx, account_id: i64, conns: &[VpnConnection]) -> ApiResult<Vec<CustomerGateway>> {
    let mut ids: Vec<String> = conns.iter().flat_map(|c| c.customer_gateway_ids().map(str::to_string)).collect();
    ids.sort();
    ids.dedup();
    tx.list_as(&ListQuery { kind: CustomerGateway::KIND, account_id, ids, ..Default::default() })
}

/// The customer side's configuration for connection `id` of `account_id`: its strongSwan
/// swanctl.conf, or with `bgp` its BGP daemon's (announcing `announce`; the connection's
/// RemoteSubnet by default).
pub fn peer_config(
    tx: &dyn Tx,
    key: &MasterKey,
    account_id: i64,
    id: &str,
    bgp: Option<(crate::peer_config::BgpDaemon, &[ipnet::Ipv4Net])>,
) -> ApiResult<String> {
    let conn = tx
        .get_as::<VpnConnection>(account_id, id)?
        .ok_or_else(|| alibaba::error(ConnectionError::ConnectionNotFound))?;
    let mut peers = Vec::new();
    for t in &conn.tunnels {
        let cgw = customer_gateways::find(tx, account_id, &conn.region_id, &t.spec.customer_gateway_id)?;
        let auth_key = cgw.auth_key.as_ref().map(|k| k.open(key)).transpose()?;
        peers.push((t, cgw.ip_address, cgw.asn, auth_key, t.spec.ike.psk.open(key)?));
    }
    let tunnels = peers
        .iter()
        .map(|(t, customer_ip, asn, auth_key, psk)| {
            let mut p = crate::peer_config::PeerTunnel::of(&t.spec, &t.internet_ip, customer_ip, psk);
            if !conn.dual_tunnel {
                p.label = "";
            }
            (p.customer_asn, p.auth_key) = (*asn, auth_key.as_ref());
            p
        })
        .collect();
    let view = crate::peer_config::PeerView {
        name: &conn.id,
        local_subnet: &conn.local_subnet,
        remote_subnet: &conn.remote_subnet,
        tunnels,
    };
    match bgp {
        None => Ok(crate::peer_config::swanctl_conf(&view)),
        Some((daemon, announce)) => crate::peer_config::bgp_conf(&view, daemon, announce).ok_or_else(|| {
            ApiError::bad_request("OperationFailed.BgpNotEnabled", format!("Connection {id} runs no BGP."))
        }),
    }
}
