//! The connection family in Alibaba's dialect: CreateVpnConnection, ModifyVpnConnectionAttribute,
//! DescribeVpnConnections, DescribeVpnConnection, DownloadVpnConnectionConfig,
//! DeleteVpnConnection. Each action decodes its parameters into the family's typed input, runs
//! the operation in one transaction, and renders the output (or the error, through `error`).

use serde_json::{json, Value};

use super::rules::check_connection_name;
use super::{ConnectionError, ConnectionFields, ConnectionFilter, Negotiation, NewConnection, Tunnel, VpnConnection};
use crate::actions::customer_gateways::CustomerGateway;
use crate::actions::ipsec;
use crate::actions::rules::{page_body, tags_json};
use crate::actions::tags::check_tag;
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::app::{Body, Ctx};
use crate::secret::MasterKey;

/// Every error of the family, in Alibaba's codes.
pub fn error(e: ConnectionError) -> ApiError {
    match e {
        ConnectionError::VpcNotFound => {
            ApiError::not_found("InvalidVpcId.NotFound", "The specified VPC does not exist.")
        }
        ConnectionError::GatewayNotFound => ApiError::not_found(
            "InvalidVpnGatewayInstanceId.NotFound",
            "The specified vpn gateway instance id does not exist.",
        ),
        ConnectionError::CustomerGatewayNotFound => ApiError::not_found(
            "InvalidCustomerGatewayInstanceId.NotFound",
            "The specified customer gateway instance id does not exist.",
        ),
        ConnectionError::ConnectionNotFound => ApiError::not_found(
            "InvalidVpnConnectionInstanceId.NotFound",
            "The specified vpn connection instance id does not exist.",
        ),
        ConnectionError::GatewayConfiguring => {
            ApiError::bad_request("VpnGateway.Configuring", "The specified service is configuring.")
        }
        ConnectionError::IpsecDisabled => {
            ApiError::bad_request("VpnGateway.IpsecVpnDisabled", "The vpn gateway does not enable IPSec VPN.")
        }
        ConnectionError::QuotaFull => ApiError::bad_request(
            "CreateVpnConnectionsQuotaFull.QuotaFull",
            "The number of VPN connections exceeds the quota limit.",
        ),
        ConnectionError::MissingCustomerGateway => ApiError::missing_parameter("CustomerGatewayId"),
        ConnectionError::TakesDualTunnel(name) => ApiError::invalid_parameter(
            name,
            "this VPN gateway takes dual-tunnel connections: configure each tunnel in TunnelOptionsSpecification",
        ),
        ConnectionError::TakesSingleTunnel => ApiError::invalid_parameter(
            "TunnelOptionsSpecification",
            "this VPN gateway takes single-tunnel connections (it has no disaster-recovery address)",
        ),
        ConnectionError::CustomerGatewayIsGateway => ApiError::bad_request(
            "CustomerGateway.ConflictVpnIp",
            "The customer gateway associated with the IPSec connection should not have the same IP address as the VPN gateway.",
        ),
        ConnectionError::MissingPeerCertificate => ApiError::missing_parameter("RemoteCaCertificate"),
        ConnectionError::PeerCertificateNotTaken => ApiError::invalid_parameter(
            "RemoteCaCertificate",
            "only national-standard (NationalStandard) VPN gateways take a peer CA certificate",
        ),
        ConnectionError::CustomerGatewayWithoutAsn => ApiError::bad_request(
            "MissingParam.CustomerGatewayAsn",
            "Asn of customer gateway is mandatory when BGP is enabled.",
        ),
        ConnectionError::TunnelCidrTaken(cidr) => ApiError::bad_request(
            "IllegalParam.TunnelCidr",
            format!("The specified TunnelCidr {cidr} is already used on this VPN gateway."),
        ),
        ConnectionError::DifferentIkeConfigs => ApiError::bad_request(
            "VpnConnectionParamInvalid.SameVpnAndCgwDifferentIkeConfigs",
            "IPSec connections associated with the same user gateway and VPN gateway should have the same IKE configurations.",
        ),
        ConnectionError::SelectorsOverlap => ApiError::bad_request(
            "VpnConnectionParamInvalid.SameVpnAndCgwTrafficSelectorOverlap",
            "Traffic selectors of IPSec connections associated with the same user gateway and VPN gateway should not overlap.",
        ),
        ConnectionError::DryRunPassed => {
            ApiError::bad_request("DryRunOperation", "Request validation has been passed with DryRun flag set.")
        }
        ConnectionError::Rule(e) => e,
    }
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

/// `LocalSubnet`/`RemoteSubnet`, validated and normalized.
fn subnets(p: &Params, name: &str) -> ApiResult<Option<String>> {
    let Some(s) = p.str(name) else { return Ok(None) };
    ipsec::parse_subnets(name, &s)?;
    Ok(Some(super::normalize_subnets(&s)))
}

/// What CreateVpnConnection and ModifyVpnConnectionAttribute say about the connection itself.
fn fields(p: &Params) -> ApiResult<ConnectionFields> {
    let name = p.str("Name");
    if let Some(n) = &name {
        check_connection_name(n)?;
    }
    let local_subnet = subnets(p, "LocalSubnet")?;
    let remote_subnet = subnets(p, "RemoteSubnet")?;
    Ok(ConnectionFields {
        name,
        local_subnet,
        remote_subnet,
        effect_immediately: p.bool("EffectImmediately")?,
        auto_config_route: p.bool("AutoConfigRoute")?,
        enable_dpd: p.bool("EnableDpd")?,
        enable_nat_traversal: p.bool("EnableNatTraversal")?,
        remote_ca_certificate: p.str("RemoteCaCertificate"),
        customer_gateway_id: p.str("CustomerGatewayId"),
        negotiation: Negotiation::Text { ike: p.str("IkeConfig"), ipsec: p.str("IpsecConfig") },
        bgp: p.str("BgpConfig"),
        health_check: p.str("HealthCheckConfig"),
        tunnel_options: p.clone(),
    })
}

pub async fn create(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let vpn_gateway_id = p.required("VpnGatewayId")?;
    p.required("LocalSubnet")?;
    p.required("RemoteSubnet")?;
    let new = NewConnection {
        region: region.id,
        vpn_gateway_id,
        vpc_id: None,
        fields: fields(p)?,
        tags: request_tags(p)?,
        enable_tunnels_bgp: p.bool("EnableTunnelsBgp")?.unwrap_or(false),
        dry_run: p.bool("DryRun")?.unwrap_or(false),
    };
    let (account_id, app) = (ctx.account_id, ctx.app.clone());
    ctx.write_once(move |tx| {
        let conn = super::create(tx, &app, account_id, &new).map_err(error)?.connection;
        let mut body = Body::new();
        body.insert("VpnConnectionId".into(), json!(conn.id));
        body.insert("Name".into(), json!(conn.name));
        body.insert("CreateTime".into(), json!(conn.created_ms));
        Ok(body)
    })
    .await
}

pub async fn modify(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let id = p.required("VpnConnectionId")?;
    // Modify documents its own code for a bad name.
    let changes = fields(p).map_err(|e| match e.code.as_str() {
        "InvalidParameter.VpnConnectionName" => ApiError::bad_request("InvalidName", "The name is not valid"),
        _ => e,
    })?;
    let (account_id, app) = (ctx.account_id, ctx.app.clone());
    ctx.write_once(move |tx| {
        let v = super::modify(tx, &app, account_id, &region.id, &id, &changes).map_err(error)?;
        describe(&v.connection, &v.customer_gateways, Some(&v.tags), &app.master_key)
    })
    .await
}

pub async fn describe_one(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let id = ctx.params.required("VpnConnectionId")?;
    ctx.store().read(|tx| {
        let v = super::get(tx, ctx.account_id, &region.id, &id).map_err(error)?;
        describe(&v.connection, &v.customer_gateways, Some(&v.tags), &ctx.app.master_key)
    })
}

pub async fn describe_many(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let page = p.page(50)?;
    let filter = ConnectionFilter {
        region: region.id,
        ids: p.str("VpnConnectionId").into_iter().collect(),
        vpn_gateway_id: p.str("VpnGatewayId"),
        customer_gateway_id: p.str("CustomerGatewayId"),
        tags: p.tags("Tag", 20)?,
        offset: page.offset(),
        limit: page.size,
    };
    let key = &ctx.app.master_key;
    let found = ctx.store().read(|tx| super::list(tx, ctx.account_id, &filter).map_err(error))?;
    let items = found
        .connections
        .iter()
        .map(|c| {
            let mut v = describe(c, &found.customer_gateways, found.tags.get(&c.id), key)?;
            // The list names its items' tags `Tag` (DescribeVpnConnection says `Tags`), and that
            // is what the SDKs' models read.
            if let Some(t) = v.remove("Tags") {
                v.insert("Tag".into(), t);
            }
            Ok(Value::Object(v))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(page_body(found.total, page, "VpnConnections", "VpnConnection", items))
}

/// The connection's configuration as the VPN gateway runs it: Local is the gateway, Remote the
/// customer gateway, LocalSubnet the VPC side (the documented field meanings). Dual-tunnel
/// connections list their tunnels under `TunnelsConfig`; BGP peerings go under `BgpConfigs`.
pub async fn download_config(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let id = ctx.params.required("VpnConnectionId")?;
    let key = &ctx.app.master_key;
    ctx.store().read(|tx| {
        let conn = super::get(tx, ctx.account_id, &region.id, &id).map_err(error)?.connection;
        let mut tunnels = Vec::new();
        let mut bgp = Vec::new();
        for c in super::tunnel_configs(tx, &conn).map_err(error)? {
            let (t, cgw) = (c.tunnel, c.customer_gateway);
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
    let (account_id, app) = (ctx.account_id, ctx.app.clone());
    ctx.write_once(move |tx| {
        super::delete(tx, &app, account_id, &region.id, &id).map_err(error)?;
        Ok(Body::new())
    })
    .await
}

/// The fields every view of a connection shares (DescribeVpnConnection(s),
/// ModifyVpnConnectionAttribute). The customer gateways give the peer ASN and BGP key.
fn describe(
    c: &VpnConnection,
    cgws: &[CustomerGateway],
    tags: Option<&Vec<(String, String)>>,
    key: &MasterKey,
) -> ApiResult<Body> {
    let main = c.main_tunnel();
    let peer = |t: &Tunnel| cgws.iter().find(|g| g.id == t.spec.customer_gateway_id);
    let mut b = Body::new();
    b.insert("VpnConnectionId".into(), json!(c.id));
    b.insert("VpnGatewayId".into(), json!(c.vpn_gateway_id));
    b.insert("Name".into(), json!(c.name));
    b.insert("LocalSubnet".into(), json!(c.local_subnet));
    b.insert("RemoteSubnet".into(), json!(c.remote_subnet));
    b.insert("CreateTime".into(), json!(c.created_ms));
    b.insert("EffectImmediately".into(), json!(c.effect_immediately));
    b.insert("State".into(), json!(c.state.wire()));
    b.insert("Status".into(), json!(main.status.wire()));
    b.insert("VcoHealthCheck".into(), c.health_check.wire(c.health_status.wire()));
    b.insert("Tags".into(), tags_json(tags));
    b.insert("EnableTunnelsBgp".into(), json!(c.enable_tunnels_bgp));
    if c.dual_tunnel {
        let tunnels = c
            .tunnels
            .iter()
            .enumerate()
            .map(|(i, t)| tunnel_view(t, i, c, key, peer(t)))
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

/// The peer's ASN and BGP key, from its customer gateway.
fn bgp_peer(cgw: Option<&CustomerGateway>, key: &MasterKey) -> ApiResult<(Option<u32>, String)> {
    Ok((cgw.and_then(|c| c.asn), cgw.map(|c| c.auth_key(key)).transpose()?.unwrap_or_default()))
}

/// One tunnel as Describe shows it. Its scalars are strings, as the SDKs' tunnel models type them.
fn tunnel_view(
    t: &Tunnel,
    index: usize,
    conn: &VpnConnection,
    key: &MasterKey,
    cgw: Option<&CustomerGateway>,
) -> ApiResult<Value> {
    let mut v = t.spec.wire(key, t.bgp_status.wire(), cgw.and_then(|c| c.asn))?;
    v.insert("TunnelId".into(), json!(t.id));
    v.insert("TunnelIndex".into(), json!((index + 1).to_string()));
    v.insert("State".into(), json!(conn.state.wire()));
    v.insert("Status".into(), json!(t.status.wire()));
    v.insert("InternetIp".into(), json!(t.internet_ip));
    Ok(Value::Object(v))
}
