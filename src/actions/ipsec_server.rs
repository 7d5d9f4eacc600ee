//! The IPsec server: IKE remote access for clients with a PSK, each given an address from
//! ClientIpPool and reaching LocalSubnet. CreateIpsecServer, UpdateIpsecServer,
//! ListIpsecServers, DeleteIpsecServer.
//!
//! One per gateway, on a gateway with SSL-VPN enabled (remote access shares its SslConnections),
//! and never beside IPsec connections: a gateway runs one or the other
//! (`VpnGateway.IPsecServerAndVpnConnectionConflict`, checked both ways). Changes put the gateway
//! in `updating`; the server reaches the data plane in the gateway's plan (`plan`).
//!
//! The wire spells the name `IpSecServerName` on Create and `IpsecServerName` everywhere else;
//! Create takes both.

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::ipsec::{self, Defaults, IkeConfig, IpsecConfig};
use super::rules::{check_name, iso_time, new_id, object, token_body};
use super::ssl_vpn::{self, check_pool, cidr, local_subnets, require_ssl_enabled};
use super::vpn_connections::VpnConnection;
use super::vpn_gateways::{self, VpnGateway};
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::app::{Body, Ctx};
use crate::dataplane::remote_access::{IpsecServerPlan, IpsecServerReport};
use crate::dataplane::IkeVersion;
use crate::secret::{MasterKey, Sealed, Secret};
use crate::store::{now_ms, ListQuery, Resource, Tx, TxExt};

/// LocalSubnet: at most this many comma-separated CIDR blocks.
const MAX_LOCAL_SUBNETS: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpsecServer {
    pub id: String,
    pub account_id: i64,
    pub region_id: String,
    pub vpn_gateway_id: String,
    pub name: String,
    pub local_subnet: String,
    pub client_ip_pool: String,
    pub effect_immediately: bool,
    pub psk_enabled: bool,
    /// Phase 1, the PSK included.
    pub ike: IkeConfig,
    pub ipsec: IpsecConfig,
    pub created_ms: i64,
    /// Clients connected, as the data plane last reported.
    pub online_client_count: u32,
}

crate::resource!(IpsecServer, "IpsecServer", {
    fn parent_id(&self) -> Option<&str> {
        Some(&self.vpn_gateway_id)
    }
    fn name(&self) -> &str {
        &self.name
    }
});

impl IpsecServer {
    fn describe(&self, gw: &VpnGateway, ssl: Option<&ssl_vpn::SslVpnServer>, key: &MasterKey) -> ApiResult<Value> {
        let ike = self.ike.wire(key)?;
        let psk = ike["Psk"].clone();
        let mut ike = ike;
        if let Some(o) = ike.as_object_mut() {
            o.remove("Psk");
        }
        Ok(json!({
            "IpsecServerId": self.id,
            "IpsecServerName": self.name,
            "RegionId": self.region_id,
            "VpnGatewayId": self.vpn_gateway_id,
            "InternetIp": gw.internet_ip,
            "LocalSubnet": self.local_subnet,
            "ClientIpPool": self.client_ip_pool,
            "EffectImmediately": self.effect_immediately,
            "PskEnabled": self.psk_enabled,
            "Psk": psk,
            "IkeConfig": ike,
            "IpsecConfig": self.ipsec.wire(),
            "OnlineClientCount": self.online_client_count,
            "MaxConnections": gw.ssl_connections,
            // Two-factor authentication is the SSL-VPN server's (the only place it is set).
            "MultiFactorAuthEnabled": ssl.is_some_and(|s| s.enable_multi_factor_auth),
            "IDaaSInstanceId": ssl.map(|s| s.idaas_instance_id.as_str()).unwrap_or_default(),
            "CreationTime": iso_time(self.created_ms),
        }))
    }

    fn local_subnets(&self) -> Vec<Ipv4Net> {
        self.local_subnet.split(',').filter_map(|s| s.trim().parse().ok()).collect()
    }
}

/// The caller's IPsec server in `region`, or `InvalidIpsecServerId.NotFound` (404).
fn find(tx: &dyn Tx, account_id: i64, region: &str, id: &str) -> ApiResult<IpsecServer> {
    tx.get_in::<IpsecServer>(account_id, region, id)?.ok_or_else(|| {
        ApiError::not_found("InvalidIpsecServerId.NotFound", "The specified IPsec server does not exist.")
    })
}

/// The gateway's IPsec server, if it has one.
pub fn of_gateway(tx: &dyn Tx, gw: &VpnGateway) -> ApiResult<Option<IpsecServer>> {
    Ok(tx.children_as::<IpsecServer>(gw.account_id, &gw.id)?.into_iter().next())
}

fn conflict() -> ApiError {
    ApiError::bad_request(
        "VpnGateway.IPsecServerAndVpnConnectionConflict",
        "The IPSec connection and IPSec server cannot be configured on the same VPN gateway at the same time.",
    )
}

/// IPsec connections cannot be added to a gateway that runs an IPsec server.
pub fn refuse_connections(tx: &dyn Tx, gw: &VpnGateway) -> ApiResult<()> {
    match of_gateway(tx, gw)? {
        Some(_) => Err(conflict()),
        None => Ok(()),
    }
}

fn dry_run(p: &Params) -> ApiResult<bool> {
    Ok(p.bool("DryRun")?.unwrap_or(false))
}

fn dry_run_passed() -> ApiError {
    ApiError::bad_request("DryRunOperation", "Request validation has been passed with DryRun flag set.")
}

/// What Create takes and Update changes, parsed before the transaction (the JSON sections need
/// the gateway, so they stay text until then).
#[derive(Clone)]
struct Settings {
    name: Option<String>,
    local_subnet: Option<Vec<Ipv4Net>>,
    client_ip_pool: Option<Ipv4Net>,
    effect_immediately: Option<bool>,
    psk_enabled: Option<bool>,
    /// A PSK given (checked).
    psk: Option<Secret>,
    ike_config: Option<String>,
    ipsec_config: Option<String>,
}

impl Settings {
    fn parse(p: &Params, name_param: &str) -> ApiResult<Settings> {
        let name = p.str(name_param).or_else(|| p.str("IpsecServerName"));
        if let Some(n) = &name {
            check_name(n, 128)?;
        }
        let psk_enabled = p.bool("PskEnabled")?;
        if psk_enabled == Some(false) {
            return Err(ApiError::invalid_parameter("PskEnabled", "pre-shared keys are the only authentication: true"));
        }
        let psk = p.str("Psk").map(|v| ipsec::server_psk(Some(v))).transpose()?;
        Ok(Settings {
            name,
            local_subnet: p.get("LocalSubnet").map(|v| local_subnets(v, MAX_LOCAL_SUBNETS)).transpose()?,
            client_ip_pool: p.get("ClientIpPool").map(|v| cidr("ClientIpPool", v)).transpose()?,
            effect_immediately: p.bool("EffectImmediately")?,
            psk_enabled,
            psk,
            ike_config: p.str("IkeConfig"),
            ipsec_config: p.str("IpsecConfig"),
        })
    }

    /// Applies the settings onto `s`, then checks the server against its gateway.
    fn apply(self, tx: &dyn Tx, key: &MasterKey, gw: &VpnGateway, s: &mut IpsecServer) -> ApiResult<()> {
        let d = Defaults { local_ip: &gw.internet_ip, remote_ip: "", national_standard: false, master_key: key };
        if let Some(v) = self.name {
            s.name = v;
        }
        if let Some(v) = self.local_subnet {
            s.local_subnet = v.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",");
        }
        if let Some(v) = self.client_ip_pool {
            s.client_ip_pool = v.to_string();
        }
        s.effect_immediately = self.effect_immediately.unwrap_or(s.effect_immediately);
        s.psk_enabled = self.psk_enabled.unwrap_or(s.psk_enabled);
        s.ike = s.ike.merge(self.ike_config.as_deref(), &d)?;
        s.ipsec = s.ipsec.merge(self.ipsec_config.as_deref(), &d)?;
        if let Some(psk) = &self.psk {
            s.ike.psk = Sealed::seal(key, psk);
        }
        let pool: Ipv4Net = s.client_ip_pool.parse().map_err(|_| ApiError::internal("stored ClientIpPool"))?;
        check_pool(pool, &s.local_subnets(), 16..=29)?;
        match ssl_vpn::of_gateway(tx, gw)? {
            Some(ssl) => ssl_vpn::check_pools_apart(&s.client_ip_pool, &ssl.client_ip_pool, "SSL-VPN server"),
            None => Ok(()),
        }
    }
}

pub async fn create(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let gateway_id = p.required("VpnGatewayId")?;
    let (local_subnet, client_ip_pool) = (p.required("LocalSubnet")?, p.required("ClientIpPool")?);
    let settings = Settings::parse(p, "IpSecServerName")?;
    // The PSK given, or one made up (ListIpsecServers shows it).
    let psk = match &settings.psk {
        Some(given) => given.clone(),
        None => ipsec::server_psk(None)?,
    };
    let dry = dry_run(p)?;
    let (app, account_id) = (ctx.app.clone(), ctx.account_id);
    ctx.write_once(move |tx| {
        let key = &app.master_key;
        let mut gw = vpn_gateways::find(tx, account_id, &region.id, &gateway_id, 404)?;
        require_ssl_enabled(&gw)?;
        if of_gateway(tx, &gw)?.is_some() {
            return Err(ApiError::bad_request(
                "OperationFailed.IPsecServerExist",
                "An IPsec server already exists in the VPN gateway.",
            ));
        }
        let connections = tx.count(&ListQuery {
            kind: VpnConnection::KIND,
            account_id,
            parent_id: Some(gw.id.clone()),
            ..Default::default()
        })?;
        if connections > 0 {
            return Err(conflict());
        }
        let d = Defaults { local_ip: &gw.internet_ip, remote_ip: "", national_standard: false, master_key: key };
        let (ike, ipsec) = ipsec::server_defaults(&d, &psk);
        let id = new_id("iss");
        let mut s = IpsecServer {
            id: id.clone(),
            account_id,
            region_id: region.id.clone(),
            vpn_gateway_id: gw.id.clone(),
            name: id,
            local_subnet: local_subnet.clone(),
            client_ip_pool: client_ip_pool.clone(),
            effect_immediately: false,
            psk_enabled: true,
            ike,
            ipsec,
            created_ms: now_ms(),
            online_client_count: 0,
        };
        settings.clone().apply(tx, key, &gw, &mut s)?;
        gw.ensure_active()?;
        if dry {
            return Err(dry_run_passed());
        }
        vpn_gateways::begin_update(tx, &mut gw, app.config.transition_delay)?;
        tx.insert_as(&s)?;
        Ok(object(json!({
            "IpsecServerId": s.id,
            "IpsecServerName": s.name,
            "VpnGatewayId": s.vpn_gateway_id,
            "RegionId": s.region_id,
            "CreationTime": iso_time(s.created_ms),
        })))
    })
    .await
}

pub async fn update(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let id = p.required("IpsecServerId")?;
    let settings = Settings::parse(p, "IpsecServerName")?;
    let dry = dry_run(p)?;
    let (app, account_id) = (ctx.app.clone(), ctx.account_id);
    ctx.write_once(move |tx| {
        let mut s = find(tx, account_id, &region.id, &id)?;
        let mut gw = vpn_gateways::find(tx, account_id, &region.id, &s.vpn_gateway_id, 404)?;
        let before = s.clone();
        settings.clone().apply(tx, &app.master_key, &gw, &mut s)?;
        gw.ensure_active()?;
        if dry {
            return Err(dry_run_passed());
        }
        if s != before {
            vpn_gateways::begin_update(tx, &mut gw, app.config.transition_delay)?;
            tx.update_as(&s)?;
        }
        Ok(Body::new())
    })
    .await
}

pub async fn list(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let page = p.token_page(20)?;
    let name = p.str("IpsecServerName");
    let query = ListQuery {
        kind: IpsecServer::KIND,
        account_id: ctx.account_id,
        region_id: Some(region.id.clone()),
        parent_id: p.str("VpnGatewayId"),
        ids: p.list("IpsecServerId", 20)?,
        ..Default::default()
    };
    ctx.store().read(|tx| {
        let mut servers: Vec<IpsecServer> = tx.list_as(&query)?;
        servers.retain(|s| name.as_ref().is_none_or(|n| &s.name == n));
        let mut items = Vec::new();
        for s in servers.iter().skip(page.offset).take(page.max) {
            let gw = vpn_gateways::find(tx, ctx.account_id, &region.id, &s.vpn_gateway_id, 404)?;
            let ssl = ssl_vpn::of_gateway(tx, &gw)?;
            items.push(s.describe(&gw, ssl.as_ref(), &ctx.app.master_key)?);
        }
        Ok(token_body(servers.len(), page, "IpsecServers", items))
    })
}

pub async fn delete(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let id = ctx.params.required("IpsecServerId")?;
    let dry = dry_run(&ctx.params)?;
    let (app, account_id) = (ctx.app.clone(), ctx.account_id);
    ctx.write_once(move |tx| {
        let s = find(tx, account_id, &region.id, &id)?;
        let mut gw = vpn_gateways::find(tx, account_id, &region.id, &s.vpn_gateway_id, 404)?;
        gw.ensure_active()?;
        if dry {
            return Err(dry_run_passed());
        }
        vpn_gateways::begin_update(tx, &mut gw, app.config.transition_delay)?;
        tx.delete(IpsecServer::KIND, account_id, &s.id)?;
        Ok(Body::new())
    })
    .await
}

/// The gateway's IPsec server as its plan carries it.
pub fn plan(tx: &dyn Tx, key: &MasterKey, gw: &VpnGateway) -> ApiResult<Option<IpsecServerPlan>> {
    let Some(s) = of_gateway(tx, gw)? else { return Ok(None) };
    let (ike, esp) = (&s.ike, &s.ipsec);
    Ok(Some(IpsecServerPlan {
        id: s.id.clone(),
        client_ip_pool: s.client_ip_pool.parse().map_err(|_| ApiError::internal("stored ClientIpPool"))?,
        local_subnets: s.local_subnets(),
        effect_immediately: s.effect_immediately,
        ike_version: IkeVersion::from_wire(&ike.ike_version).unwrap_or_default(),
        aggressive: ike.ike_mode == "aggressive",
        ike: ike.proposal(),
        ike_lifetime_s: ike.ike_lifetime,
        esp: esp.proposal(),
        ipsec_lifetime_s: esp.ipsec_lifetime,
        local_id: ike.local_id.clone(),
        remote_id: ike.remote_id.clone(),
        psk: ike.psk.open(key)?,
    }))
}

/// Records what the data plane reports of the server.
pub fn record(tx: &mut dyn Tx, account_id: i64, report: &IpsecServerReport) -> ApiResult<()> {
    let Some(mut s) = tx.get_as::<IpsecServer>(account_id, &report.id)? else { return Ok(()) };
    if let Some(e) = &report.error {
        tracing::warn!(server = %s.id, error = %e, "the data plane could not run the IPsec server");
    }
    if s.online_client_count != report.online_clients {
        s.online_client_count = report.online_clients;
        tx.update_as(&s)?;
    }
    Ok(())
}
