//! SSL-VPN: remote access for people, with OpenVPN clients. CreateSslVpnServer,
//! ModifySslVpnServer, DescribeSslVpnServers, DeleteSslVpnServer here; client certificates in
//! `certs`, the server's log in `logs`, the certificate authority in `pki`.
//!
//! One server per gateway, on a gateway with SSL-VPN enabled. Each server has its own CA
//! (created with it, its key sealed at rest) and server certificate; client certificates are
//! issued by that CA and revoked onto its CRL when deleted. Every change that the data plane must
//! apply (the server, its certificates) puts the gateway in `updating`, like connection changes;
//! the reconciler hands the server to the data plane in the gateway's plan (`plan`) and records
//! what it reports (`record`).

pub mod certs;
pub mod logs;
pub mod openvpn;
pub mod pki;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use self::certs::SslVpnClientCert;
use self::pki::Revoked;
use super::rules::{check_dotted_name, new_id, object, page_body};
use super::vpn_gateways::{self, VpnGateway};
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::app::{Body, Ctx};
use crate::dataplane::remote_access::{ClientCertPlan, SslCipher, SslProto, SslVpnPlan, SslVpnReport};
use crate::secret::{MasterKey, Sealed};
use crate::store::{now_ms, ListQuery, Resource, Tx, TxExt};

/// Ports the gateway keeps for itself (SSH, the IPsec ports, DNS, NTP, its management).
const FORBIDDEN_PORTS: &[u16] = &[22, 2222, 22222, 9000, 9001, 9002, 7505, 80, 443, 53, 68, 123, 4510, 4560, 500, 4500];
/// LocalSubnet: at most this many comma-separated CIDR blocks.
const MAX_LOCAL_SUBNETS: usize = 5;
/// The widest and narrowest client pools: a /29 leaves room for one client of OpenVPN's
/// subnet topology; a /16 is what the service allows at most.
const POOL_MASKS: std::ops::RangeInclusive<u8> = 16..=29;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SslVpnServer {
    pub id: String,
    pub account_id: i64,
    pub region_id: String,
    pub vpn_gateway_id: String,
    pub name: String,
    pub client_ip_pool: String,
    pub local_subnet: String,
    pub proto: SslProto,
    pub cipher: SslCipher,
    pub port: u16,
    pub compress: bool,
    pub enable_multi_factor_auth: bool,
    pub idaas_instance_id: String,
    pub idaas_region_id: String,
    pub created_ms: i64,
    /// Clients connected, as the data plane last reported.
    pub connections: u32,
    /// The server's CA and its own certificate (PEM); private keys sealed.
    pub ca_cert: String,
    pub ca_key: Sealed,
    pub server_cert: String,
    pub server_key: Sealed,
    /// Every certificate revoked so far, and the CRL that lists them (number `crl_number`).
    pub revoked: Vec<Revoked>,
    pub crl: String,
    pub crl_number: u64,
}

crate::resource!(SslVpnServer, "SslVpnServer", {
    fn parent_id(&self) -> Option<&str> {
        Some(&self.vpn_gateway_id)
    }
    fn name(&self) -> &str {
        &self.name
    }
});

impl SslVpnServer {
    /// Every field the API shows of a server (ModifySslVpnServer leaves out IDaaSRegionId).
    fn describe(&self, gw: &VpnGateway) -> Body {
        object(json!({
            "SslVpnServerId": self.id,
            "RegionId": self.region_id,
            "VpnGatewayId": self.vpn_gateway_id,
            "Name": self.name,
            "ClientIpPool": self.client_ip_pool,
            "LocalSubnet": self.local_subnet,
            "Proto": self.proto.wire(),
            "Cipher": self.cipher.wire(),
            "Port": self.port,
            "Compress": self.compress,
            "EnableMultiFactorAuth": self.enable_multi_factor_auth,
            "IDaaSInstanceId": self.idaas_instance_id,
            "IDaaSRegionId": self.idaas_region_id,
            "InternetIp": gw.internet_ip,
            "Connections": self.connections,
            "MaxConnections": gw.ssl_connections,
            "CreateTime": self.created_ms,
        }))
    }

    pub fn local_subnets(&self) -> Vec<Ipv4Net> {
        self.local_subnet.split(',').filter_map(|s| s.trim().parse().ok()).collect()
    }

    /// Signs a new CRL listing every revoked certificate.
    fn reissue_crl(&mut self, key: &MasterKey, now: i64) -> ApiResult<()> {
        self.crl_number += 1;
        self.crl = pki::crl(&self.ca_cert, &self.ca_key.open(key)?, self.crl_number, &self.revoked, now)?;
        Ok(())
    }
}

/// The caller's SSL-VPN server in `region`, or `InvalidSslVpnServerId.NotFound` (404).
pub fn find(tx: &dyn Tx, account_id: i64, region: &str, id: &str) -> ApiResult<SslVpnServer> {
    tx.get_in::<SslVpnServer>(account_id, region, id)?.ok_or_else(|| {
        ApiError::not_found("InvalidSslVpnServerId.NotFound", "The specified SSL VPN server does not exist.")
    })
}

/// The gateway's SSL-VPN server, if it has one.
pub fn of_gateway(tx: &dyn Tx, gw: &VpnGateway) -> ApiResult<Option<SslVpnServer>> {
    Ok(tx.children_as::<SslVpnServer>(gw.account_id, &gw.id)?.into_iter().next())
}

/// Traffic to the SSL-VPN server's client pool goes to its clients: no route may send it into a
/// tunnel (`VpnRouteEntry.ConflictSSL`).
pub fn check_route_conflict(tx: &dyn Tx, gw: &VpnGateway, dest: Ipv4Net) -> ApiResult<()> {
    let Some(s) = of_gateway(tx, gw)? else { return Ok(()) };
    let Ok(pool) = s.client_ip_pool.parse::<Ipv4Net>() else { return Ok(()) };
    if pool.contains(&dest.network()) || dest.contains(&pool.network()) {
        return Err(ApiError::bad_request(
            "VpnRouteEntry.ConflictSSL",
            "The specified route entry has conflict with SSL client.",
        ));
    }
    Ok(())
}

/// Remote access (SSL-VPN server, IPsec server) needs SSL-VPN enabled on the gateway.
pub fn require_ssl_enabled(gw: &VpnGateway) -> ApiResult<()> {
    if gw.enable_ssl {
        Ok(())
    } else {
        Err(ApiError::bad_request("VpnGateway.SslVpnDisabled", "The VPN gateway has not enabled SSL VPN."))
    }
}

/// `name`: a CIDR block (`IllegalParam.<name>` otherwise), in its canonical form.
pub fn cidr(name: &str, value: &str) -> ApiResult<Ipv4Net> {
    let illegal = || {
        ApiError::bad_request(format!("IllegalParam.{name}"), format!("The specified \"{name}\" ({value}) is invalid."))
    };
    let net: Ipv4Net = value.trim().parse().map_err(|_| illegal())?;
    if net.trunc() != net {
        return Err(illegal());
    }
    Ok(net)
}

/// `LocalSubnet`: 1-5 comma-separated CIDR blocks.
pub fn local_subnets(value: &str, max: usize) -> ApiResult<Vec<Ipv4Net>> {
    let nets = value.split(',').map(|s| cidr("LocalSubnet", s)).collect::<ApiResult<Vec<_>>>()?;
    if nets.len() > max {
        return Err(ApiError::bad_request(
            "IllegalParam.LocalSubnet",
            format!("The specified \"LocalSubnet\" ({value}) is invalid: at most {max} CIDR blocks."),
        ));
    }
    Ok(nets)
}

/// The client pool (masks /16-/29) must not overlap what the clients reach.
pub fn check_pool(pool: Ipv4Net, local: &[Ipv4Net], masks: std::ops::RangeInclusive<u8>) -> ApiResult<()> {
    if !masks.contains(&pool.prefix_len()) {
        return Err(ApiError::bad_request(
            "IllegalParam.ClientIpPool",
            format!(
                "The specified \"ClientIpPool\" ({pool}) is invalid: its mask must be /{} to /{}.",
                masks.start(),
                masks.end()
            ),
        ));
    }
    if let Some(l) = local.iter().find(|l| l.contains(&pool.network()) || pool.contains(&l.network())) {
        return Err(ApiError::bad_request(
            "InvalidParameter.ClientIpPoolConflict",
            format!("The client CIDR block {pool} overlaps the local CIDR block {l}."),
        ));
    }
    Ok(())
}

/// Both remote-access servers of a gateway hand out addresses: their pools must not meet.
pub fn check_pools_apart(pool: &str, other: &str, other_server: &str) -> ApiResult<()> {
    let (Ok(a), Ok(b)) = (pool.parse::<Ipv4Net>(), other.parse::<Ipv4Net>()) else { return Ok(()) };
    if a.contains(&b.network()) || b.contains(&a.network()) {
        return Err(ApiError::bad_request(
            "InvalidParameter.ClientIpPoolConflict",
            format!("The client CIDR block {a} overlaps the {other_server}'s client CIDR block {b}."),
        ));
    }
    Ok(())
}

/// The settings Create takes and Modify changes, parsed up front (outside the transaction).
#[derive(Clone)]
struct Settings {
    name: Option<String>,
    client_ip_pool: Option<Ipv4Net>,
    local_subnet: Option<Vec<Ipv4Net>>,
    proto: Option<SslProto>,
    cipher: Option<SslCipher>,
    port: Option<u16>,
    compress: Option<bool>,
    enable_multi_factor_auth: Option<bool>,
    idaas_instance_id: Option<String>,
    idaas_region_id: Option<String>,
}

impl Settings {
    fn parse(p: &Params) -> ApiResult<Settings> {
        let name = p.str("Name");
        if let Some(n) = &name {
            check_dotted_name(n, 128)?;
        }
        let port = p.parse::<u16>("Port")?;
        if let Some(port) = port {
            if port == 0 || FORBIDDEN_PORTS.contains(&port) {
                return Err(ApiError::invalid_parameter(
                    "Port",
                    format!("{port} cannot be used: it must be 1-65535 and not one of {FORBIDDEN_PORTS:?}"),
                ));
            }
        }
        let pick = |name: &str, names: &[&'static str]| p.enumeration(name, names);
        Ok(Settings {
            name,
            client_ip_pool: p.get("ClientIpPool").map(|v| cidr("ClientIpPool", v)).transpose()?,
            local_subnet: p.get("LocalSubnet").map(|v| local_subnets(v, MAX_LOCAL_SUBNETS)).transpose()?,
            proto: pick("Proto", SslProto::NAMES)?.and_then(SslProto::from_wire),
            cipher: pick("Cipher", SslCipher::NAMES)?.and_then(SslCipher::from_wire),
            port,
            compress: p.bool("Compress")?,
            enable_multi_factor_auth: p.bool("EnableMultiFactorAuth")?,
            idaas_instance_id: p.str("IDaaSInstanceId"),
            idaas_region_id: p.str("IDaaSRegionId"),
        })
    }

    /// Applies the settings given onto `s`, then checks the server's rules as a whole.
    fn apply(self, s: &mut SslVpnServer) -> ApiResult<()> {
        let join = |nets: Vec<Ipv4Net>| nets.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",");
        if let Some(v) = self.name {
            s.name = v;
        }
        if let Some(v) = self.client_ip_pool {
            s.client_ip_pool = v.to_string();
        }
        if let Some(v) = self.local_subnet {
            s.local_subnet = join(v);
        }
        s.proto = self.proto.unwrap_or(s.proto);
        s.cipher = self.cipher.unwrap_or(s.cipher);
        s.port = self.port.unwrap_or(s.port);
        s.compress = self.compress.unwrap_or(s.compress);
        s.enable_multi_factor_auth = self.enable_multi_factor_auth.unwrap_or(s.enable_multi_factor_auth);
        if let Some(v) = self.idaas_instance_id {
            s.idaas_instance_id = v;
        }
        if let Some(v) = self.idaas_region_id {
            s.idaas_region_id = v;
        }
        if s.enable_multi_factor_auth && (s.idaas_instance_id.is_empty() || s.idaas_region_id.is_empty()) {
            return Err(ApiError::bad_request(
                "MissingParam.IDaaSInstanceId",
                "Two-factor authentication needs IDaaSInstanceId and IDaaSRegionId.",
            ));
        }
        let pool = s.client_ip_pool.parse().map_err(|_| ApiError::internal("stored ClientIpPool"))?;
        check_pool(pool, &s.local_subnets(), POOL_MASKS)
    }
}

pub async fn create(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let gateway_id = p.required("VpnGatewayId")?;
    let (client_ip_pool, local_subnet) = (p.required("ClientIpPool")?, p.required("LocalSubnet")?);
    let settings = Settings::parse(p)?;
    let (app, account_id) = (ctx.app.clone(), ctx.account_id);
    let id = new_id("vss");
    // Keys are made outside the store's writer: the CA first, then the server's certificate.
    let now = now_ms();
    let ca = pki::new_ca(&id, now)?;
    // Serial 1 is the CA's own; client certificates get random ones.
    let server = pki::issue(&ca.cert_pem, &ca.key_pem, pki::Role::Server, &format!("{id} server"), 2, now, 3650)?;
    let mut s = SslVpnServer {
        id: id.clone(),
        account_id,
        region_id: region.id.clone(),
        vpn_gateway_id: gateway_id.clone(),
        name: id.clone(),
        client_ip_pool,
        local_subnet,
        proto: SslProto::Udp,
        cipher: SslCipher::Aes128Cbc,
        port: 1194,
        compress: false,
        enable_multi_factor_auth: false,
        idaas_instance_id: String::new(),
        idaas_region_id: String::new(),
        created_ms: now,
        connections: 0,
        ca_cert: ca.cert_pem,
        ca_key: Sealed::seal(&app.master_key, &ca.key_pem),
        server_cert: server.cert_pem,
        server_key: Sealed::seal(&app.master_key, &server.key_pem),
        revoked: Vec::new(),
        crl: String::new(),
        crl_number: 0,
    };
    settings.apply(&mut s)?;
    s.reissue_crl(&app.master_key, now)?;
    ctx.write_once(move |tx| {
        let mut gw = vpn_gateways::find(tx, account_id, &region.id, &gateway_id, 404)?;
        require_ssl_enabled(&gw)?;
        if of_gateway(tx, &gw)?.is_some() {
            return Err(ApiError::bad_request("Resource.QuotaFull", "The quota of resource is full"));
        }
        if let Some(i) = super::ipsec_server::of_gateway(tx, &gw)? {
            check_pools_apart(&s.client_ip_pool, &i.client_ip_pool, "IPsec server")?;
        }
        vpn_gateways::begin_update(tx, &mut gw, app.config.transition_delay)?;
        tx.insert_as(&s)?;
        Ok(object(json!({"SslVpnServerId": s.id, "Name": s.name})))
    })
    .await
}

pub async fn modify(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let id = ctx.params.required("SslVpnServerId")?;
    let settings = Settings::parse(&ctx.params)?;
    let (app, account_id) = (ctx.app.clone(), ctx.account_id);
    ctx.write_once(move |tx| {
        let mut s = find(tx, account_id, &region.id, &id)?;
        let mut gw = vpn_gateways::find(tx, account_id, &region.id, &s.vpn_gateway_id, 404)?;
        let before = s.clone();
        settings.clone().apply(&mut s)?;
        if let Some(i) = super::ipsec_server::of_gateway(tx, &gw)? {
            check_pools_apart(&s.client_ip_pool, &i.client_ip_pool, "IPsec server")?;
        }
        if s != before {
            vpn_gateways::begin_update(tx, &mut gw, app.config.transition_delay)?;
            tx.update_as(&s)?;
        } else {
            gw.ensure_active()?;
        }
        let mut body = s.describe(&gw);
        body.remove("IDaaSRegionId");
        Ok(body)
    })
    .await
}

pub async fn describe_many(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let page = p.page(50)?;
    let gateway = p.str("VpnGatewayId");
    let name = p.str("Name");
    let query = ListQuery {
        kind: SslVpnServer::KIND,
        account_id: ctx.account_id,
        region_id: Some(region.id),
        ids: p.str("SslVpnServerId").into_iter().collect(),
        parent_id: gateway,
        ..Default::default()
    };
    ctx.store().read(|tx| {
        let mut servers: Vec<SslVpnServer> = tx.list_as(&query)?;
        servers.retain(|s| name.as_ref().is_none_or(|n| &s.name == n));
        let total = servers.len() as u64;
        let mut items = Vec::new();
        for s in servers.into_iter().skip(page.offset() as usize).take(page.size as usize) {
            let gw = vpn_gateways::find(tx, ctx.account_id, &s.region_id, &s.vpn_gateway_id, 404)?;
            items.push(Value::Object(s.describe(&gw)));
        }
        Ok(page_body(total, page, "SslVpnServers", "SslVpnServer", items))
    })
}

pub async fn delete(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let id = ctx.params.required("SslVpnServerId")?;
    let (app, account_id) = (ctx.app.clone(), ctx.account_id);
    ctx.write_once(move |tx| {
        let s = find(tx, account_id, &region.id, &id)?;
        let mut gw = vpn_gateways::find(tx, account_id, &region.id, &s.vpn_gateway_id, 404)?;
        vpn_gateways::begin_update(tx, &mut gw, app.config.transition_delay)?;
        remove(tx, &s)?;
        Ok(Body::new())
    })
    .await
}

/// The OpenVPN configuration of the account's server `id` (`gatehouse ssl-server-config`).
pub fn server_config(tx: &dyn Tx, key: &MasterKey, account_id: i64, id: &str) -> ApiResult<String> {
    let s = tx.get_as::<SslVpnServer>(account_id, id)?.ok_or_else(|| {
        ApiError::not_found("InvalidSslVpnServerId.NotFound", "The specified SSL VPN server does not exist.")
    })?;
    let gw =
        tx.get_as::<VpnGateway>(account_id, &s.vpn_gateway_id)?.ok_or_else(|| ApiError::internal("gateway gone"))?;
    let plan = plan(tx, key, &gw)?.ok_or_else(|| ApiError::internal("server gone"))?;
    Ok(plan.openvpn_server_config(None))
}

/// Deletes a server; its certificates and its log go with it: they mean nothing without its CA.
pub fn remove(tx: &mut dyn Tx, s: &SslVpnServer) -> ApiResult<()> {
    for c in certs::of_server(tx, s.account_id, &s.id)? {
        tx.delete(SslVpnClientCert::KIND, s.account_id, &c.id)?;
    }
    logs::forget(tx, s.account_id, &s.id)?;
    tx.delete(SslVpnServer::KIND, s.account_id, &s.id)
}

/// The gateway's SSL-VPN server as its plan carries it.
pub fn plan(tx: &dyn Tx, key: &MasterKey, gw: &VpnGateway) -> ApiResult<Option<SslVpnPlan>> {
    let Some(s) = of_gateway(tx, gw)? else { return Ok(None) };
    let clients = certs::of_server(tx, gw.account_id, &s.id)?
        .into_iter()
        .map(|c| ClientCertPlan { id: c.id, serial: c.serial })
        .collect();
    let revoked = s.revoked.iter().map(|r| ClientCertPlan { id: r.id.clone(), serial: r.serial }).collect();
    Ok(Some(SslVpnPlan {
        id: s.id.clone(),
        proto: s.proto,
        port: s.port,
        cipher: s.cipher,
        compress: s.compress,
        client_ip_pool: s.client_ip_pool.parse().map_err(|_| ApiError::internal("stored ClientIpPool"))?,
        local_subnets: s.local_subnets(),
        max_connections: gw.ssl_connections,
        ca_cert: s.ca_cert.clone(),
        server_cert: s.server_cert.clone(),
        server_key: s.server_key.open(key)?,
        crl: s.crl.clone(),
        clients,
        revoked,
    }))
}

/// Records what the data plane reports of the server: its connections and its new log lines.
pub fn record(tx: &mut dyn Tx, account_id: i64, report: &SslVpnReport) -> ApiResult<()> {
    let Some(mut s) = tx.get_as::<SslVpnServer>(account_id, &report.id)? else { return Ok(()) };
    if let Some(e) = &report.error {
        tracing::warn!(server = %s.id, error = %e, "the data plane could not run the SSL-VPN server");
    }
    logs::append(tx, &s, &report.log)?;
    if s.connections != report.connections {
        s.connections = report.connections;
        tx.update_as(&s)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn client_pools() {
        let local = [net("10.0.0.0/8"), net("172.16.0.0/16")];
        assert!(check_pool(net("192.168.1.0/24"), &local, POOL_MASKS).is_ok());
        assert!(check_pool(net("192.168.0.0/16"), &local, POOL_MASKS).is_ok());
        assert!(check_pool(net("192.168.1.0/29"), &local, POOL_MASKS).is_ok());
        for (pool, code) in [
            ("192.168.1.0/30", "IllegalParam.ClientIpPool"),
            ("192.0.0.0/15", "IllegalParam.ClientIpPool"),
            ("10.1.0.0/24", "InvalidParameter.ClientIpPoolConflict"),
            ("172.16.0.0/16", "InvalidParameter.ClientIpPoolConflict"),
        ] {
            assert_eq!(check_pool(net(pool), &local, POOL_MASKS).unwrap_err().code, code, "{pool}");
        }
        // A pool that contains a local subnet overlaps it too.
        assert!(check_pool(net("172.16.0.0/16"), &[net("172.16.5.0/24")], POOL_MASKS).is_err());
    }

    #[test]
    fn cidrs_and_local_subnets() {
        assert_eq!(cidr("ClientIpPool", " 192.168.1.0/24").unwrap(), net("192.168.1.0/24"));
        for bad in ["192.168.1.1/24", "192.168.1.0", "10.0.0.0/33", "x"] {
            let e = cidr("ClientIpPool", bad).unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (400, "IllegalParam.ClientIpPool"), "{bad}");
        }
        assert_eq!(local_subnets("10.0.0.0/8,172.16.0.0/16", 5).unwrap().len(), 2);
        let six = (1..=6).map(|i| format!("10.{i}.0.0/16")).collect::<Vec<_>>().join(",");
        assert_eq!(local_subnets(&six, 5).unwrap_err().code, "IllegalParam.LocalSubnet");
        assert_eq!(local_subnets("10.0.0.0/8,", 5).unwrap_err().code, "IllegalParam.LocalSubnet");
    }
}
