//! IPsec-VPN connections: CreateVpnConnection, ModifyVpnConnectionAttribute,
//! DescribeVpnConnections, DescribeVpnConnection, DownloadVpnConnectionConfig,
//! DeleteVpnConnection.
//!
//! A connection has one tunnel (single-tunnel gateways) or two, a `master` and a `slave`, one on
//! each of the gateway's public addresses (gateways created with a disaster-recovery vSwitch).
//! Both kinds are stored alike, as a list of tunnels. Every change puts the gateway in `updating`;
//! the reconciler applies it and records what the data plane reports (`gateway_sync`). The
//! rules that tie a connection to its gateway and the other connections are in `rules`.

mod rules;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use self::rules::{cgw_ref, check_against_gateway, check_connection_name};
use super::customer_gateways::{self, CustomerGateway};
use super::ipsec::{self, BgpConfig, Defaults, HealthCheckConfig, IkeConfig, IpsecConfig, TunnelSpec};
use super::rules::{new_id, page_body, tags_json};
use super::tags::check_tag;
use super::vpn_gateways::{self, VpnGateway};
use super::vpn_routes;
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::app::{Body, Ctx};
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

    /// The fields every view of a connection shares. `cgws` resolves customer gateways (for the
    /// peer ASN and BGP key); tags are the user's.
    fn describe(
        &self,
        key: &MasterKey,
        cgws: &[CustomerGateway],
        tags: Option<&Vec<(String, String)>>,
    ) -> ApiResult<Body> {
        let main = self.main_tunnel();
        let cgw_of = |id: &str| cgws.iter().find(|c| c.id == id);
        let peer = |t: &Tunnel| cgw_of(&t.spec.customer_gateway_id);
        let mut b = Body::new();
        b.insert("VpnConnectionId".into(), json!(self.id));
        b.insert("VpnGatewayId".into(), json!(self.vpn_gateway_id));
        b.insert("Name".into(), json!(self.name));
        b.insert("LocalSubnet".into(), json!(self.local_subnet));
        b.insert("RemoteSubnet".into(), json!(self.remote_subnet));
        b.insert("CreateTime".into(), json!(self.created_ms));
        b.insert("EffectImmediately".into(), json!(self.effect_immediately));
        b.insert("State".into(), json!(self.state.wire()));
        b.insert("Status".into(), json!(main.status.wire()));
        b.insert("VcoHealthCheck".into(), self.health_check.wire(self.health_status.wire()));
        b.insert("Tags".into(), tags_json(tags));
        b.insert("EnableTunnelsBgp".into(), json!(self.enable_tunnels_bgp));
        if self.dual_tunnel {
            let tunnels = self
                .tunnels
                .iter()
                .enumerate()
                .map(|(i, t)| tunnel_view(t, i, self.state.wire(), key, peer(t)))
                .collect::<ApiResult<Vec<_>>>()?;
            b.insert("TunnelOptionsSpecification".into(), json!({ "TunnelOptions": tunnels }));
        } else {
            let s = &main.spec;
            let (peer_asn, auth_key) = bgp_peer(peer(main), key)?;
            b.insert("CustomerGatewayId".into(), json!(s.customer_gateway_id));
            b.insert("EnableDpd".into(), json!(s.enable_dpd));
            b.insert("EnableNatTraversal".into(), json!(s.enable_nat_traversal));
            b.insert("RemoteCaCertificate".into(), json!(s.remote_ca_certificate));
            b.insert("IkeConfig".into(), s.ike.wire(key)?);
            b.insert("IpsecConfig".into(), s.ipsec.wire());
            b.insert("VpnBgpConfig".into(), s.bgp.wire(main.bgp_status.wire(), peer_asn, &auth_key));
        }
        Ok(b)
    }
}

/// The peer's ASN and BGP key, from its customer gateway.
fn bgp_peer(cgw: Option<&CustomerGateway>, key: &MasterKey) -> ApiResult<(Option<u32>, String)> {
    Ok((cgw.and_then(|c| c.asn), cgw.map(|c| c.auth_key(key)).transpose()?.unwrap_or_default()))
}

/// One tunnel as Describe shows it. Its scalars are strings, as the SDKs' tunnel models type them.
fn tunnel_view(
    t: &Tunnel,
    index: usize,
    state: &str,
    key: &MasterKey,
    cgw: Option<&CustomerGateway>,
) -> ApiResult<Value> {
    let mut v = t.spec.wire(key, t.bgp_status.wire(), cgw.and_then(|c| c.asn))?;
    v.insert("TunnelId".into(), json!(t.id));
    v.insert("TunnelIndex".into(), json!((index + 1).to_string()));
    v.insert("State".into(), json!(state));
    v.insert("Status".into(), json!(t.status.wire()));
    v.insert("InternetIp".into(), json!(t.internet_ip));
    Ok(Value::Object(v))
}

pub(crate) fn not_found() -> ApiError {
    ApiError::not_found(
        "InvalidVpnConnectionInstanceId.NotFound",
        "The specified vpn connection instance id does not exist.",
    )
}

/// The caller's connection in `region`, or `InvalidVpnConnectionInstanceId.NotFound`.
pub fn find(tx: &dyn Tx, account_id: i64, region: &str, id: &str) -> ApiResult<VpnConnection> {
    tx.get_in::<VpnConnection>(account_id, region, id)?.ok_or_else(not_found)
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

/// `Tags.N.Key`/`Tags.N.Value` of CreateVpnConnection: at most 20.
fn request_tags(p: &Params) -> ApiResult<Vec<(String, String)>> {
    // Read past the limit so that too many tags get the documented code.
    let tags = p.tags("Tags", 1000)?;
    if tags.len() > 20 {
        return Err(ApiError::bad_request("SizeLimitExceeded.TagNum", "The maximum number of tags is exceeded."));
    }
    let mut seen = std::collections::HashSet::new();
    tags.into_iter()
        .map(|(k, v)| {
            let v = v.unwrap_or_default();
            check_tag(&k, &v).map_err(|e| {
                let code =
                    if e.code == "InvalidTagKey" { "InvalidParameter.TagKey" } else { "InvalidParameter.TagValue" };
                ApiError::bad_request(code, e.message)
            })?;
            if !seen.insert(k.clone()) {
                return Err(ApiError::bad_request(
                    "Duplicated.TagKey",
                    "The specified parameter TagKey is duplicated.",
                ));
            }
            Ok((k, v))
        })
        .collect()
}

/// What CreateVpnConnection and ModifyVpnConnectionAttribute read before touching the store.
struct Request {
    name: Option<String>,
    local_subnet: Option<String>,
    remote_subnet: Option<String>,
    effect_immediately: Option<bool>,
    auto_config_route: Option<bool>,
    enable_dpd: Option<bool>,
    enable_nat_traversal: Option<bool>,
    remote_ca_certificate: Option<String>,
    customer_gateway_id: Option<String>,
    ike: Option<String>,
    ipsec: Option<String>,
    bgp: Option<String>,
    health_check: Option<String>,
}

impl Request {
    fn read(p: &Params) -> ApiResult<Self> {
        let name = p.str("Name");
        if let Some(n) = &name {
            check_connection_name(n)?;
        }
        let local_subnet = p.str("LocalSubnet");
        if let Some(s) = &local_subnet {
            ipsec::parse_subnets("LocalSubnet", s)?;
        }
        let remote_subnet = p.str("RemoteSubnet");
        if let Some(s) = &remote_subnet {
            ipsec::parse_subnets("RemoteSubnet", s)?;
        }
        Ok(Request {
            name,
            local_subnet,
            remote_subnet,
            effect_immediately: p.bool("EffectImmediately")?,
            auto_config_route: p.bool("AutoConfigRoute")?,
            enable_dpd: p.bool("EnableDpd")?,
            enable_nat_traversal: p.bool("EnableNatTraversal")?,
            remote_ca_certificate: p.str("RemoteCaCertificate"),
            customer_gateway_id: p.str("CustomerGatewayId"),
            ike: p.str("IkeConfig"),
            ipsec: p.str("IpsecConfig"),
            bgp: p.str("BgpConfig"),
            health_check: p.str("HealthCheckConfig"),
        })
    }

    fn single_tunnel_only(&self) -> Option<&'static str> {
        [
            ("CustomerGatewayId", self.customer_gateway_id.is_some()),
            ("EnableDpd", self.enable_dpd.is_some()),
            ("EnableNatTraversal", self.enable_nat_traversal.is_some()),
            ("IkeConfig", self.ike.is_some()),
            ("IpsecConfig", self.ipsec.is_some()),
            ("BgpConfig", self.bgp.is_some()),
            ("HealthCheckConfig", self.health_check.is_some()),
            ("RemoteCaCertificate", self.remote_ca_certificate.is_some()),
        ]
        .into_iter()
        .find(|(_, given)| *given)
        .map(|(name, _)| name)
    }
}

fn dry_run_passed() -> ApiError {
    ApiError::bad_request("DryRunOperation", "Request validation has been passed with DryRun flag set.")
}

pub async fn create(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let gw_id = p.required("VpnGatewayId")?;
    let local_subnet = p.required("LocalSubnet")?;
    let remote_subnet = p.required("RemoteSubnet")?;
    let req = Request::read(p)?;
    let tags = request_tags(p)?;
    let enable_tunnels_bgp = p.bool("EnableTunnelsBgp")?.unwrap_or(false);
    let dry_run = p.bool("DryRun")?.unwrap_or(false);
    let params = p.clone();
    let (account_id, app) = (ctx.account_id, ctx.app.clone());
    ctx.write_once(move |tx| {
        let key = &app.master_key;
        let quotas = &app.config.quotas;
        let mut gw = vpn_gateways::find(tx, account_id, &region.id, &gw_id, 404)?;
        gw.ensure_active()?;
        if !gw.enable_ipsec {
            return Err(ApiError::bad_request("VpnGateway.IpsecVpnDisabled", "The vpn gateway does not enable IPSec VPN."));
        }
        let existing = tx.count(&ListQuery {
            kind: VpnConnection::KIND,
            account_id,
            parent_id: Some(gw.id.clone()),
            ..Default::default()
        })?;
        if existing >= quotas.vpn_connections {
            return Err(ApiError::bad_request(
                "CreateVpnConnectionsQuotaFull.QuotaFull",
                "The number of VPN connections exceeds the quota limit.",
            ));
        }
        let national_standard = gw.vpn_type == "NationalStandard";
        let cgw_ip = |id: &str| customer_gateways::find(tx, account_id, &region.id, id).map(|c| c.ip_address);
        let dual = !gw.disaster_recovery_internet_ip.is_empty();
        let tunnels: Vec<Tunnel> = if dual {
            if let Some(name) = req.single_tunnel_only() {
                return Err(ApiError::invalid_parameter(
                    name,
                    "this VPN gateway takes dual-tunnel connections: configure each tunnel in TunnelOptionsSpecification",
                ));
            }
            let specs = ipsec::TunnelSpec::parse_all(
                &params,
                &cgw_ip,
                (&gw.internet_ip, &gw.disaster_recovery_internet_ip),
                national_standard,
                key,
            )?;
            specs
                .into_iter()
                .zip([&gw.internet_ip, &gw.disaster_recovery_internet_ip])
                .map(|(spec, ip)| new_tunnel(spec, ip))
                .collect()
        } else {
            if params.get("TunnelOptionsSpecification.1.Role").is_some()
                || params.get("TunnelOptionsSpecification.1.CustomerGatewayId").is_some()
            {
                return Err(ApiError::invalid_parameter(
                    "TunnelOptionsSpecification",
                    "this VPN gateway takes single-tunnel connections (it has no disaster-recovery address)",
                ));
            }
            let cgw_id = req.customer_gateway_id.clone().ok_or_else(|| ApiError::missing_parameter("CustomerGatewayId"))?;
            let remote_ip = cgw_ip(&cgw_id)?;
            let d = Defaults { local_ip: &gw.internet_ip, remote_ip: &remote_ip, national_standard, master_key: key };
            let spec = TunnelSpec {
                role: "master".into(),
                customer_gateway_id: cgw_id,
                enable_dpd: req.enable_dpd.unwrap_or(true),
                enable_nat_traversal: req.enable_nat_traversal.unwrap_or(true),
                remote_ca_certificate: req.remote_ca_certificate.clone().unwrap_or_default(),
                ike: IkeConfig::parse(req.ike.as_deref(), &d)?,
                ipsec: IpsecConfig::parse(req.ipsec.as_deref(), &d)?,
                bgp: BgpConfig::parse(req.bgp.as_deref())?,
            };
            vec![new_tunnel(spec, &gw.internet_ip)]
        };
        let conn = VpnConnection {
            id: new_id("vco"),
            account_id,
            region_id: region.id.clone(),
            vpn_gateway_id: gw.id.clone(),
            name: req.name.clone().unwrap_or_default(),
            local_subnet: normalize_subnets(&local_subnet),
            remote_subnet: normalize_subnets(&remote_subnet),
            effect_immediately: req.effect_immediately.unwrap_or(false),
            auto_config_route: req.auto_config_route.unwrap_or(true),
            health_check: HealthCheckConfig::parse(req.health_check.as_deref())?,
            health_status: HealthStatus::Unknown,
            dataplane_error: String::new(),
            enable_tunnels_bgp,
            dual_tunnel: dual,
            tunnels,
            state: ConnectionState::Updating,
            renegotiate: req.effect_immediately.unwrap_or(false),
            created_ms: now_ms(),
        };
        check_against_gateway(tx, &gw, &conn, key)?;
        if conn.auto_config_route {
            vpn_routes::add_connection_routes(tx, &conn, quotas)?;
        }
        if dry_run {
            return Err(dry_run_passed());
        }
        tx.insert_as(&conn)?;
        for (k, v) in &tags {
            let b = TagBinding { kind: VpnConnection::KIND.into(), resource_id: conn.id.clone(), key: k.clone(), value: v.clone() };
            tx.set_tag(&b, account_id)?;
        }
        vpn_gateways::begin_update(tx, &mut gw, app.config.transition_delay)?;
        let mut body = Body::new();
        body.insert("VpnConnectionId".into(), json!(conn.id));
        body.insert("Name".into(), json!(conn.name));
        body.insert("CreateTime".into(), json!(conn.created_ms));
        Ok(body)
    })
    .await
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
fn normalize_subnets(s: &str) -> String {
    s.split(',').map(str::trim).filter(|c| !c.is_empty()).collect::<Vec<_>>().join(",")
}

pub async fn modify(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let id = p.required("VpnConnectionId")?;
    // Modify documents its own code for a bad name.
    let req = Request::read(p).map_err(|e| match e.code.as_str() {
        "InvalidParameter.VpnConnectionName" => ApiError::bad_request("InvalidName", "The name is not valid"),
        _ => e,
    })?;
    let params = p.clone();
    let (account_id, app) = (ctx.account_id, ctx.app.clone());
    ctx.write_once(move |tx| {
        let key = &app.master_key;
        let mut conn = find(tx, account_id, &region.id, &id)?;
        let mut gw = vpn_gateways::find(tx, account_id, &region.id, &conn.vpn_gateway_id, 404)?;
        gw.ensure_active()?;
        if let Some(n) = &req.name {
            conn.name = n.clone();
        }
        if let Some(s) = &req.local_subnet {
            conn.local_subnet = normalize_subnets(s);
        }
        if let Some(s) = &req.remote_subnet {
            conn.remote_subnet = normalize_subnets(s);
        }
        if let Some(e) = req.effect_immediately {
            conn.effect_immediately = e;
        }
        if let Some(a) = req.auto_config_route {
            conn.auto_config_route = a;
        }
        if let Some(h) = &req.health_check {
            conn.health_check = conn.health_check.merge(Some(h))?;
        }
        if conn.dual_tunnel {
            if let Some(name) = req.single_tunnel_only() {
                return Err(ApiError::invalid_parameter(
                    name,
                    "configure the tunnels of a dual-tunnel connection in TunnelOptionsSpecification",
                ));
            }
            let cgw_ip = |id: &str| customer_gateways::find(tx, account_id, &region.id, id).map(|c| c.ip_address);
            for t in &mut conn.tunnels {
                t.spec = t.spec.merge(&params, &cgw_ip, &t.internet_ip, gw.vpn_type == "NationalStandard", key)?;
            }
        } else {
            let t = &mut conn.tunnels[0];
            let remote_ip =
                customer_gateways::find(tx, account_id, &region.id, &t.spec.customer_gateway_id)?.ip_address;
            let d = Defaults {
                local_ip: &gw.internet_ip,
                remote_ip: &remote_ip,
                national_standard: gw.vpn_type == "NationalStandard",
                master_key: key,
            };
            let s = &mut t.spec;
            if let Some(v) = req.enable_dpd {
                s.enable_dpd = v;
            }
            if let Some(v) = req.enable_nat_traversal {
                s.enable_nat_traversal = v;
            }
            if let Some(v) = &req.remote_ca_certificate {
                s.remote_ca_certificate = v.clone();
            }
            s.ike = s.ike.merge(req.ike.as_deref(), &d)?;
            s.ipsec = s.ipsec.merge(req.ipsec.as_deref(), &d)?;
            s.bgp = s.bgp.merge(req.bgp.as_deref())?;
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
        let cgws = customer_gateways_of(tx, account_id, std::slice::from_ref(&conn))?;
        let tags = tx.tags_of(VpnConnection::KIND, account_id, std::slice::from_ref(&conn.id))?;
        conn.describe(key, &cgws, tags.get(&conn.id))
    })
    .await
}

pub async fn describe_one(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let id = ctx.params.required("VpnConnectionId")?;
    let key = &ctx.app.master_key;
    ctx.store().read(|tx| {
        let conn = find(tx, ctx.account_id, &region.id, &id)?;
        let cgws = customer_gateways_of(tx, ctx.account_id, std::slice::from_ref(&conn))?;
        let tags = tx.tags_of(VpnConnection::KIND, ctx.account_id, std::slice::from_ref(&conn.id))?;
        conn.describe(key, &cgws, tags.get(&conn.id))
    })
}

pub async fn describe_many(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let page = p.page(50)?;
    let cgw_filter = p.str("CustomerGatewayId");
    let mut query = ListQuery {
        kind: VpnConnection::KIND,
        account_id: ctx.account_id,
        region_id: Some(region.id),
        ids: p.str("VpnConnectionId").into_iter().collect(),
        parent_id: p.str("VpnGatewayId"),
        tags: p.tags("Tag", 20)?,
        ..Default::default()
    };
    let key = &ctx.app.master_key;
    let (total, items) = ctx.store().read(|tx| {
        query.refers_to = cgw_filter.as_deref().map(cgw_ref).into_iter().collect();
        query.offset = page.offset();
        query.limit = Some(page.size);
        let (total, conns) = (tx.count(&query)?, tx.list_as::<VpnConnection>(&query)?);
        let cgws = customer_gateways_of(tx, ctx.account_id, &conns)?;
        let ids: Vec<String> = conns.iter().map(|c| c.id.clone()).collect();
        let tags = tx.tags_of(VpnConnection::KIND, ctx.account_id, &ids)?;
        let items = conns
            .iter()
            .map(|c| {
                let mut v = c.describe(key, &cgws, tags.get(&c.id))?;
                // The list names its items' tags `Tag` (DescribeVpnConnection says `Tags`),
                // and that is what the SDKs' models read.
                if let Some(t) = v.remove("Tags") {
                    v.insert("Tag".into(), t);
                }
                Ok(Value::Object(v))
            })
            .collect::<ApiResult<Vec<_>>>()?;
        Ok((total, items))
    })?;
    Ok(page_body(total, page, "VpnConnections", "VpnConnection", items))
}

/// The connection's configuration as the VPN gateway runs it: Local is the gateway, Remote the
/// customer gateway, LocalSubnet the VPC side (the documented field meanings). Dual-tunnel
/// connections list their tunnels under `TunnelsConfig`; BGP peerings go under `BgpConfigs`.
pub async fn download_config(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let id = ctx.params.required("VpnConnectionId")?;
    let key = &ctx.app.master_key;
    ctx.store().read(|tx| {
        let conn = find(tx, ctx.account_id, &region.id, &id)?;
        let mut tunnels = Vec::new();
        let mut bgp = Vec::new();
        for t in &conn.tunnels {
            let cgw = customer_gateways::find(tx, ctx.account_id, &region.id, &t.spec.customer_gateway_id)?;
            tunnels.push(json!({
                "TunnelId": t.id,
                "Local": t.internet_ip,
                "Remote": cgw.ip_address,
                "IkeConfig": t.spec.ike.wire(key)?,
                "IpsecConfig": t.spec.ipsec.wire(),
            }));
            let b = &t.spec.bgp;
            if b.enable_bgp {
                bgp.push(json!({
                    "TunnelId": t.id,
                    "TunnelCidr": b.tunnel_cidr,
                    "LocalBgpIp": b.local_bgp_ip,
                    "PeerBgpIp": b.peer_bgp_ip(),
                    "LocalAsn": b.local_asn,
                    "PeerAsn": cgw.asn,
                }));
            }
        }
        let mut config = json!({ "LocalSubnet": conn.local_subnet, "RemoteSubnet": conn.remote_subnet });
        if conn.dual_tunnel {
            config["TunnelsConfig"] = json!({ "TunnelConfig": tunnels });
        } else if let Some(Value::Object(t)) = tunnels.pop() {
            for field in ["Local", "Remote", "IkeConfig", "IpsecConfig"] {
                config[field] = t[field].clone();
            }
        }
        if !bgp.is_empty() {
            config["BgpConfigs"] = json!({ "BgpConfig": bgp });
        }
        let mut body = Body::new();
        body.insert("VpnConnectionConfig".into(), config);
        Ok(body)
    })
}

pub async fn delete(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let id = ctx.params.required("VpnConnectionId")?;
    let (account_id, delay) = (ctx.account_id, ctx.app.config.transition_delay);
    ctx.write_once(move |tx| {
        let mut conn = find(tx, account_id, &region.id, &id)?;
        let mut gw = vpn_gateways::find(tx, account_id, &region.id, &conn.vpn_gateway_id, 404)?;
        vpn_gateways::begin_update(tx, &mut gw, delay)?;
        vpn_routes::remove_connection_routes(tx, account_id, &conn.id, false)?;
        conn.state = ConnectionState::Deleting;
        tx.update_as(&conn)?;
        Ok(Body::new())
    })
    .await
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
    let conn = tx.get_as::<VpnConnection>(account_id, id)?.ok_or_else(not_found)?;
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
