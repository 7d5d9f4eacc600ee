//! VPN gateways: CreateVpnGateway, ModifyVpnGatewayAttribute, DescribeVpnGateways,
//! DescribeVpnGateway, DeleteVpnGateway. Creation and deletion are asynchronous: the handler
//! records the gateway in `init` (or `deleting`) and queues a task; the reconciler moves it on.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::gateway_hosts;
use super::rules::{check_description, check_name, new_id, object, page_body, tags_json};
use crate::api::error::{ApiError, ApiResult};
use crate::app::{Body, Ctx};
use crate::store::{now_ms, ListQuery, Resource, Tx, TxExt};

crate::wire_enum!(
    /// A gateway's lifecycle (`Status`).
    GatewayStatus {
        #[default]
        Init = "init",
        Provisioning = "provisioning",
        Active = "active",
        Updating = "updating",
        Deleting = "deleting",
    }
);

const BANDWIDTHS: &[u32] = &[5, 10, 20, 50, 100, 200];
const SSL_CONNECTIONS: &[u32] = &[5, 10, 20];
const PERIODS: &[u32] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 24, 36];
/// What the real service reports as the end of a pay-as-you-go gateway's life.
const POSTPAY_END_MS: i64 = 32_503_651_199_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VpnGateway {
    pub id: String,
    pub account_id: i64,
    pub region_id: String,
    pub vpc_id: String,
    pub vswitch_id: String,
    pub name: String,
    pub description: String,
    pub status: GatewayStatus,
    /// PREPAY or POSTPAY.
    pub charge_type: String,
    pub order_id: u64,
    pub bandwidth: u32,
    pub enable_ipsec: bool,
    pub enable_ssl: bool,
    pub ssl_connections: u32,
    pub vpn_type: String,
    pub network_type: String,
    pub resource_group_id: String,
    pub internet_ip: String,
    pub intranet_ip: String,
    pub disaster_recovery_vswitch_id: String,
    pub disaster_recovery_internet_ip: String,
    pub auto_propagate: bool,
    pub enable_bgp: bool,
    pub created_ms: i64,
    pub end_ms: i64,
    /// Bumped by every change the data plane must apply (see `dataplane::GatewayPlan`).
    #[serde(default)]
    pub generation: u64,
    /// The gateway host that runs its data plane (`gateway_hosts`); empty in the emulator.
    #[serde(default)]
    pub host: String,
}

crate::resource!(VpnGateway, "VpnGateway", {
    fn parent_id(&self) -> Option<&str> {
        Some(&self.vpc_id)
    }
    fn status(&self) -> &str {
        self.status.wire()
    }
    fn name(&self) -> &str {
        &self.name
    }
});

fn enable(b: bool) -> &'static str {
    if b {
        "enable"
    } else {
        "disable"
    }
}

impl VpnGateway {
    /// The fields ModifyVpnGatewayAttribute answers with.
    fn attributes(&self) -> Body {
        object(json!({
            "VpnGatewayId": self.id,
            "VpcId": self.vpc_id,
            "VSwitchId": self.vswitch_id,
            "InternetIp": self.internet_ip,
            "IntranetIp": self.intranet_ip,
            "CreateTime": self.created_ms,
            "EndTime": self.end_ms,
            "Spec": format!("{}M", self.bandwidth),
            "Name": self.name,
            "Description": self.description,
            "Status": self.status.wire(),
            "BusinessStatus": "Normal",
            "EnableBgp": self.enable_bgp,
            "AutoPropagate": self.auto_propagate,
        }))
    }

    /// Everything DescribeVpnGateway(s) shows of one gateway.
    pub fn describe(&self, tags: Option<&Vec<(String, String)>>, reservation: bool) -> Body {
        let mut b = self.attributes();
        let charge = if self.charge_type == "POSTPAY" { "Postpay" } else { "Prepay" };
        let ssl_ip = if self.enable_ssl { self.internet_ip.as_str() } else { "" };
        b.insert("ChargeType".into(), json!(charge));
        b.insert("IpsecVpn".into(), json!(enable(self.enable_ipsec)));
        b.insert("SslVpn".into(), json!(enable(self.enable_ssl)));
        b.insert("SslMaxConnections".into(), json!(self.ssl_connections));
        b.insert("VpnType".into(), json!(self.vpn_type));
        b.insert("NetworkType".into(), json!(self.network_type));
        b.insert("ResourceGroupId".into(), json!(self.resource_group_id));
        b.insert("SslVpnInternetIp".into(), json!(ssl_ip));
        b.insert("DisasterRecoveryVSwitchId".into(), json!(self.disaster_recovery_vswitch_id));
        b.insert("DisasterRecoveryInternetIp".into(), json!(self.disaster_recovery_internet_ip));
        b.insert(
            "Tag".into(),
            json!(json!({"VpnNewImage": "true", "VpnVersion": env!("CARGO_PKG_VERSION")}).to_string()),
        );
        b.insert("Tags".into(), tags_json(tags));
        if reservation {
            // No order is ever pending here: this server takes no payments.
            b.insert("ReservationData".into(), json!({}));
        }
        b
    }

    /// A gateway only takes changes while it is `active`.
    pub fn ensure_active(&self) -> ApiResult<()> {
        if self.status == GatewayStatus::Active {
            Ok(())
        } else {
            Err(ApiError::gateway_configuring())
        }
    }
}

/// Starts applying a change to the gateway's connections or routes: the gateway is `updating`
/// (refusing other changes with `VpnGateway.Configuring`) until the reconciler has applied it.
pub fn begin_update(tx: &mut dyn Tx, gw: &mut VpnGateway, delay: std::time::Duration) -> ApiResult<()> {
    gw.ensure_active()?;
    gw.status = GatewayStatus::Updating;
    gw.generation += 1;
    tx.update_as(gw)?;
    tx.add_task(gw.account_id, VpnGateway::KIND, &gw.id, "update", now_ms() + delay.as_millis() as i64, &gw.host)
}

/// The caller's gateway in `region`, or `InvalidVpnGatewayInstanceId.NotFound` with `status`.
pub fn find(tx: &dyn Tx, account_id: i64, region: &str, id: &str, status: u16) -> ApiResult<VpnGateway> {
    tx.get_in::<VpnGateway>(account_id, region, id)?.ok_or_else(|| {
        ApiError::new(
            status,
            "InvalidVpnGatewayInstanceId.NotFound",
            "The specified vpn gateway instance id does not exist.",
        )
    })
}

/// Leases the next free address of `pool` to `owner`.
fn allocate_ip(tx: &mut dyn Tx, pool: Ipv4Net, owner: &str) -> ApiResult<String> {
    let size = (1u64 << (32 - pool.prefix_len())).saturating_sub(2).max(1);
    let idx = tx.allocate_address(&pool.to_string(), size, owner)?.ok_or_else(|| {
        ApiError::bad_request("ResourceNotEnough.IpAddress", format!("The address pool {pool} is exhausted."))
    })?;
    Ok(Ipv4Addr::from(u32::from(pool.network()) + 1 + idx as u32).to_string())
}

/// `months` calendar months after `ms` (the day clamped to the target month's length).
fn add_months(ms: i64, months: u32) -> i64 {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).expect("valid time");
    let total = t.month() as u32 - 1 + months;
    let year = t.year() + (total / 12) as i32;
    let month = time::Month::try_from((total % 12 + 1) as u8).expect("month");
    let day = t.day().min(month.length(year));
    let date = time::Date::from_calendar_date(year, month, day).expect("valid date");
    (t.replace_date(date).unix_timestamp_nanos() / 1_000_000) as i64
}

pub async fn create(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let vpc_id = p.required("VpcId")?;
    let bandwidth = p.one_of("Bandwidth", BANDWIDTHS)?.ok_or_else(|| ApiError::missing_parameter("Bandwidth"))?;
    let charge_type = p.enumeration("InstanceChargeType", &["PREPAY", "POSTPAY"])?.unwrap_or("PREPAY");
    let period = p.one_of("Period", PERIODS)?;
    // A subscription asked for is bought for a period, which must then be given.
    if p.get("InstanceChargeType").is_some() && charge_type == "PREPAY" && period.is_none() {
        return Err(ApiError::missing_parameter("Period"));
    }
    let period = period.unwrap_or(1);
    let _auto_pay = p.bool("AutoPay")?.unwrap_or(false);
    let enable_ipsec = p.bool("EnableIpsec")?.unwrap_or(true);
    let enable_ssl = p.bool("EnableSsl")?.unwrap_or(false);
    let ssl_connections = p.one_of("SslConnections", SSL_CONNECTIONS)?.unwrap_or(if enable_ssl { 5 } else { 0 });
    let vpn_type = p.enumeration("VpnType", &["Normal", "NationalStandard"])?.unwrap_or("Normal");
    if vpn_type == "NationalStandard" && !ctx.app.config.national_standard {
        return Err(ApiError::invalid_parameter(
            "VpnType",
            "this gateway host runs strongSwan, which has no national-standard (SM4/SM3) ciphers",
        ));
    }
    let network_type = p.enumeration("NetworkType", &["public", "private"])?.unwrap_or("public");
    let name = p.str("Name");
    if let Some(n) = &name {
        check_name(n, 100)?;
    }
    let vswitch_id = p.str("VSwitchId").unwrap_or_default();
    let dr_vswitch_id = p.str("DisasterRecoveryVSwitchId").unwrap_or_default();
    let resource_group_id = p.str("ResourceGroupId").unwrap_or_default();

    if ctx.app.config.vpcs.as_ref().is_some_and(|vpcs| !vpcs.contains(&vpc_id)) {
        return Err(ApiError::not_found(
            "InvalidVpcId.NotFound",
            format!(
                "The specified VPC {vpc_id} does not exist: this gateway host has no bridge for it (--vpc-bridge)."
            ),
        ));
    }
    let (account_id, config) = (ctx.account_id, ctx.app.config.clone());
    ctx.write_once(move |tx| {
        let live = tx.count(&ListQuery {
            kind: VpnGateway::KIND,
            account_id,
            region_id: Some(region.id.clone()),
            ..Default::default()
        })?;
        if live >= config.quotas.vpn_gateways {
            return Err(ApiError::bad_request("Resource.QuotaFull", "The quota of resource is full"));
        }
        let id = new_id("vpn");
        let pool = if network_type == "private" { config.private_pool } else { config.public_pool };
        let internet_ip = allocate_ip(tx, pool, &id)?;
        let intranet_ip =
            if network_type == "private" { internet_ip.clone() } else { allocate_ip(tx, config.private_pool, &id)? };
        let disaster_recovery_internet_ip =
            if dr_vswitch_id.is_empty() { String::new() } else { allocate_ip(tx, pool, &id)? };
        let created_ms = now_ms();
        let gw = VpnGateway {
            name: name.clone().unwrap_or_else(|| id.clone()),
            id,
            account_id,
            region_id: region.id.clone(),
            vpc_id: vpc_id.clone(),
            vswitch_id: vswitch_id.clone(),
            description: String::new(),
            status: GatewayStatus::Init,
            charge_type: charge_type.into(),
            order_id: rand::random::<u64>() % 900_000_000_000_000 + 100_000_000_000_000,
            bandwidth,
            enable_ipsec,
            enable_ssl,
            ssl_connections,
            vpn_type: vpn_type.into(),
            network_type: network_type.into(),
            resource_group_id: resource_group_id.clone(),
            internet_ip,
            intranet_ip,
            disaster_recovery_vswitch_id: dr_vswitch_id.clone(),
            disaster_recovery_internet_ip,
            auto_propagate: true,
            enable_bgp: false,
            generation: 0,
            host: gateway_hosts::choose(tx, &config, created_ms)?,
            created_ms,
            end_ms: if charge_type == "POSTPAY" { POSTPAY_END_MS } else { add_months(created_ms, period) },
        };
        tx.insert_as(&gw)?;
        let first_step = created_ms + config.transition_delay.as_millis() as i64 / 2;
        tx.add_task(account_id, VpnGateway::KIND, &gw.id, "create", first_step, &gw.host)?;
        let mut body = Body::new();
        body.insert("VpnGatewayId".into(), json!(gw.id));
        body.insert("Name".into(), json!(gw.name));
        body.insert("OrderId".into(), json!(gw.order_id));
        Ok(body)
    })
    .await
}

pub async fn modify(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let id = p.required("VpnGatewayId")?;
    let name = p.str("Name");
    if let Some(n) = &name {
        check_name(n, 100)?;
    }
    let description = p.str("Description");
    if let Some(d) = &description {
        check_description(d, 100)?;
    }
    let auto_propagate = p.bool("AutoPropagate")?;
    let account_id = ctx.account_id;
    ctx.write_once(move |tx| {
        // Documented as 400 for this action (404 elsewhere).
        let mut gw = find(tx, account_id, &region.id, &id, 400)?;
        gw.ensure_active()?;
        if let Some(n) = &name {
            gw.name = n.clone();
        }
        if let Some(d) = &description {
            gw.description = d.clone();
        }
        if let Some(a) = auto_propagate {
            if !a && super::vpn_connections::of_gateway(tx, &gw)?.iter().any(|c| c.bgp_enabled()) {
                return Err(ApiError::bad_request(
                    "OperationFailed.VpnConnectionExist",
                    "Auto propagate cannot be closed when VPN connections with BGP enabled exist.",
                ));
            }
            gw.auto_propagate = a;
        }
        tx.update_as(&gw)?;
        Ok(gw.attributes())
    })
    .await
}

pub async fn describe_one(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let id = ctx.params.required("VpnGatewayId")?;
    let reservation = ctx.params.bool("IncludeReservationData")?.unwrap_or(false);
    ctx.store().read(|tx| {
        let gw = find(tx, ctx.account_id, &region.id, &id, 404)?;
        let tags = tx.tags_of(VpnGateway::KIND, ctx.account_id, std::slice::from_ref(&gw.id))?;
        Ok(gw.describe(tags.get(&gw.id), reservation))
    })
}

pub async fn describe_many(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let page = p.page(50)?;
    let status = p.enumeration("Status", GatewayStatus::NAMES)?;
    let business_status = p.enumeration("BusinessStatus", &["Normal", "FinancialLocked"])?;
    let reservation = p.bool("IncludeReservationData")?.unwrap_or(false);
    let query = ListQuery {
        kind: VpnGateway::KIND,
        account_id: ctx.account_id,
        region_id: Some(region.id),
        ids: p.str("VpnGatewayId").into_iter().collect(),
        parent_id: p.str("VpcId"),
        status: status.map(str::to_string),
        tags: p.tags("Tag", 20)?,
        offset: page.offset(),
        limit: Some(page.size),
        ..Default::default()
    };
    let (total, items) = ctx.store().read(|tx| {
        // No gateway is ever financially locked: this server takes no payments.
        if business_status == Some("FinancialLocked") {
            return Ok((0, Vec::new()));
        }
        let (gws, tags, total) = tx.page_as::<VpnGateway>(&query, true)?;
        let items: Vec<Value> = gws.iter().map(|g| Value::Object(g.describe(tags.get(&g.id), reservation))).collect();
        Ok((total, items))
    })?;
    Ok(page_body(total, page, "VpnGateways", "VpnGateway", items))
}

pub async fn delete(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let id = ctx.params.required("VpnGatewayId")?;
    let (account_id, delay) = (ctx.account_id, ctx.app.config.transition_delay);
    ctx.write_once(move |tx| {
        let mut gw = find(tx, account_id, &region.id, &id, 404)?;
        gw.ensure_active()?;
        if !super::vpn_connections::of_gateway(tx, &gw)?.is_empty() {
            return Err(ApiError::bad_request(
                "DependencyViolation.VpnConnection",
                "The specified VPN gateway still has IPsec connections.",
            ));
        }
        gw.status = GatewayStatus::Deleting;
        tx.update_as(&gw)?;
        tx.add_task(account_id, VpnGateway::KIND, &gw.id, "delete", now_ms() + delay.as_millis() as i64, &gw.host)?;
        Ok(Body::new())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_clamp_to_month_end() {
        // 2026-01-31T00:00:00Z + 1 month = 2026-02-28.
        let jan31 = 1_769_817_600_000;
        assert_eq!(add_months(jan31, 1), jan31 + 28 * 86_400_000);
        assert_eq!(add_months(jan31, 12), jan31 + 365 * 86_400_000);
    }
}
