//! SSL-VPN client certificates: CreateSslVpnClientCert, ModifySslVpnClientCert,
//! DescribeSslVpnClientCerts, DescribeSslVpnClientCert, DeleteSslVpnClientCert.
//!
//! A certificate is issued by its server's CA when created (the key pair is made then, outside
//! the store's writer) and revoked onto the server's CRL when deleted. Its Status follows its
//! EndTime. DescribeSslVpnClientCert hands out the key and a complete OpenVPN client profile
//! (`openvpn`), rendered from the server's current settings, so a profile fetched after
//! ModifySslVpnServer follows the change.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::pki::{self, Revoked};
use super::{find as find_server, openvpn};
use crate::actions::rules::{check_dotted_name, new_id, object, page_body};
use crate::actions::vpn_gateways;
use crate::api::error::{ApiError, ApiResult};
use crate::app::{Body, Ctx};
use crate::secret::{MasterKey, Sealed};
use crate::store::{now_ms, ListQuery, Resource, Tx, TxExt};

/// A certificate this close to its end is `expiring-soon`.
const EXPIRING_SOON_MS: i64 = 7 * 24 * 3600 * 1000;

crate::wire_enum!(
    /// A client certificate's `Status`, from its EndTime.
    CertStatus {
        #[default]
        Normal = "normal",
        ExpiringSoon = "expiring-soon",
        Expired = "expired",
    }
);

impl CertStatus {
    pub fn at(end_ms: i64, now_ms: i64) -> CertStatus {
        if now_ms >= end_ms {
            CertStatus::Expired
        } else if end_ms - now_ms <= EXPIRING_SOON_MS {
            CertStatus::ExpiringSoon
        } else {
            CertStatus::Normal
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SslVpnClientCert {
    pub id: String,
    pub account_id: i64,
    pub region_id: String,
    pub ssl_vpn_server_id: String,
    pub name: String,
    pub serial: u64,
    pub created_ms: i64,
    pub end_ms: i64,
    pub cert: String,
    pub key: Sealed,
}

crate::resource!(SslVpnClientCert, "SslVpnClientCert", {
    fn parent_id(&self) -> Option<&str> {
        Some(&self.ssl_vpn_server_id)
    }
    fn name(&self) -> &str {
        &self.name
    }
});

impl SslVpnClientCert {
    fn describe(&self, now: i64) -> Body {
        object(json!({
            "SslVpnClientCertId": self.id,
            "SslVpnServerId": self.ssl_vpn_server_id,
            "RegionId": self.region_id,
            "Name": self.name,
            "Status": CertStatus::at(self.end_ms, now).wire(),
            "CreateTime": self.created_ms,
            "EndTime": self.end_ms,
        }))
    }
}

/// The caller's certificate in `region`, or `InvalidSslVpnClientCertId.NotFound` (404).
fn find(tx: &dyn Tx, account_id: i64, region: &str, id: &str) -> ApiResult<SslVpnClientCert> {
    tx.get_in::<SslVpnClientCert>(account_id, region, id)?.ok_or_else(|| {
        ApiError::not_found(
            "InvalidSslVpnClientCertId.NotFound",
            "The specified SSL VPN client certificate does not exist.",
        )
    })
}

/// Every certificate of a server (revoked ones are gone).
pub fn of_server(tx: &dyn Tx, account_id: i64, server_id: &str) -> ApiResult<Vec<SslVpnClientCert>> {
    tx.children_as(account_id, server_id)
}

pub async fn create(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let server_id = p.required("SslVpnServerId")?;
    let name = p.str("Name");
    if let Some(n) = &name {
        check_dotted_name(n, 128)?;
    }
    let (app, account_id) = (ctx.app.clone(), ctx.account_id);
    let server = ctx.store().read(|tx| find_server(tx, account_id, &region.id, &server_id))?;
    // The key pair and the signature are made outside the store's writer.
    let (id, now) = (new_id("vsc"), now_ms());
    let serial = rand::random::<u64>() >> 1 | 1 << 62;
    let ca_key = server.ca_key.open(&app.master_key)?;
    let issued = pki::issue(&server.ca_cert, &ca_key, pki::Role::Client, &id, serial, now, pki::CLIENT_DAYS)?;
    let cert = SslVpnClientCert {
        id: id.clone(),
        account_id,
        region_id: region.id.clone(),
        ssl_vpn_server_id: server.id.clone(),
        name: name.unwrap_or_else(|| id.clone()),
        serial,
        created_ms: now,
        end_ms: now + pki::CLIENT_DAYS * 24 * 3600 * 1000,
        cert: issued.cert_pem,
        key: Sealed::seal(&app.master_key, &issued.key_pem),
    };
    ctx.write_once(move |tx| {
        // The server may have been deleted (and another made) since it was read.
        let s = find_server(tx, account_id, &region.id, &server_id)?;
        if s.ca_cert != server.ca_cert {
            return Err(ApiError::not_found(
                "InvalidSslVpnServerId.NotFound",
                "The specified SSL VPN server does not exist.",
            ));
        }
        let mut gw = vpn_gateways::find(tx, account_id, &region.id, &s.vpn_gateway_id, 404)?;
        // As many certificates as the gateway takes concurrent clients.
        let count = tx.count(&ListQuery {
            kind: SslVpnClientCert::KIND,
            account_id,
            parent_id: Some(s.id.clone()),
            ..Default::default()
        })?;
        if count >= u64::from(gw.ssl_connections) {
            return Err(ApiError::bad_request("Resource.QuotaFull", "The quota of resource is full"));
        }
        vpn_gateways::begin_update(tx, &mut gw, app.config.transition_delay)?;
        tx.insert_as(&cert)?;
        Ok(object(json!({"SslVpnClientCertId": cert.id, "Name": cert.name})))
    })
    .await
}

pub async fn modify(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let id = ctx.params.required("SslVpnClientCertId")?;
    let name = ctx.params.str("Name");
    if let Some(n) = &name {
        check_dotted_name(n, 128)?;
    }
    let account_id = ctx.account_id;
    ctx.write_once(move |tx| {
        let mut c = find(tx, account_id, &region.id, &id)?;
        if let Some(n) = &name {
            c.name = n.clone();
            tx.update_as(&c)?;
        }
        Ok(object(json!({"SslVpnClientCertId": c.id, "Name": c.name})))
    })
    .await
}

pub async fn describe_many(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let page = p.page(50)?;
    let name = p.str("Name");
    let query = ListQuery {
        kind: SslVpnClientCert::KIND,
        account_id: ctx.account_id,
        region_id: Some(region.id),
        ids: p.str("SslVpnClientCertId").into_iter().collect(),
        parent_id: p.str("SslVpnServerId"),
        ..Default::default()
    };
    let now = now_ms();
    ctx.store().read(|tx| {
        let mut certs: Vec<SslVpnClientCert> = tx.list_as(&query)?;
        certs.retain(|c| name.as_ref().is_none_or(|n| &c.name == n));
        let total = certs.len() as u64;
        let items: Vec<Value> = certs
            .iter()
            .skip(page.offset() as usize)
            .take(page.size as usize)
            .map(|c| Value::Object(c.describe(now)))
            .collect();
        Ok(page_body(total, page, "SslVpnClientCertKeys", "SslVpnClientCertKey", items))
    })
}

/// DescribeSslVpnClientCert: one certificate with its material and its OpenVPN profile.
pub async fn describe_one(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let id = ctx.params.required("SslVpnClientCertId")?;
    let key: &MasterKey = &ctx.app.master_key;
    ctx.store().read(|tx| {
        let c = find(tx, ctx.account_id, &region.id, &id)?;
        let s = find_server(tx, ctx.account_id, &region.id, &c.ssl_vpn_server_id)?;
        let gw = vpn_gateways::find(tx, ctx.account_id, &region.id, &s.vpn_gateway_id, 404)?;
        let key_pem = c.key.open(key)?;
        let mut body = c.describe(now_ms());
        body.insert("CaCert".into(), json!(s.ca_cert));
        body.insert("ClientCert".into(), json!(c.cert));
        body.insert("ClientKey".into(), json!(key_pem.expose()));
        body.insert("ClientConfig".into(), json!(openvpn::client_profile(&s, &gw, &c.cert, key_pem.expose())));
        Ok(body)
    })
}

pub async fn delete(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let id = ctx.params.required("SslVpnClientCertId")?;
    let (app, account_id) = (ctx.app.clone(), ctx.account_id);
    ctx.write_once(move |tx| {
        let c = find(tx, account_id, &region.id, &id)?;
        let mut s = find_server(tx, account_id, &region.id, &c.ssl_vpn_server_id)?;
        let mut gw = vpn_gateways::find(tx, account_id, &region.id, &s.vpn_gateway_id, 404)?;
        vpn_gateways::begin_update(tx, &mut gw, app.config.transition_delay)?;
        let now = now_ms();
        s.revoked.push(Revoked { id: c.id.clone(), serial: c.serial, revoked_ms: now });
        s.reissue_crl(&app.master_key, now)?;
        tx.update_as(&s)?;
        tx.delete(SslVpnClientCert::KIND, account_id, &c.id)?;
        Ok(Body::new())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_end_time() {
        let day = 24 * 3600 * 1000;
        assert_eq!(CertStatus::at(100 * day, 0), CertStatus::Normal);
        assert_eq!(CertStatus::at(7 * day + 1, 0), CertStatus::Normal);
        assert_eq!(CertStatus::at(7 * day, 0), CertStatus::ExpiringSoon);
        assert_eq!(CertStatus::at(1, 0), CertStatus::ExpiringSoon);
        assert_eq!(CertStatus::at(0, 0), CertStatus::Expired);
        assert_eq!(CertStatus::at(5, 10), CertStatus::Expired);
    }
}
