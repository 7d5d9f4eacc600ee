//! Customer gateways (the on-premises side): CreateCustomerGateway,
//! ModifyCustomerGatewayAttribute, DescribeCustomerGateways, DescribeCustomerGateway,
//! DeleteCustomerGateway. Synchronous: a customer gateway has no status.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::rules::{check_description, check_name, new_id, object, page_body, tags_json};
use super::{vpn_connections, vpn_gateways};
use crate::api::error::{ApiError, ApiResult};
use crate::app::{Body, Ctx};
use crate::secret::{MasterKey, Sealed, Secret};
use crate::store::{now_ms, ListQuery, Resource, Tx, TxExt};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerGateway {
    pub id: String,
    pub account_id: i64,
    pub region_id: String,
    pub ip_address: String,
    pub name: String,
    pub description: String,
    pub asn: Option<u32>,
    /// The BGP authentication key, sealed at rest.
    pub auth_key: Option<Sealed>,
    pub created_ms: i64,
}

crate::resource!(CustomerGateway, "CustomerGateway", {
    /// One customer gateway per IP address in an account and region.
    fn unique_key(&self) -> Option<String> {
        Some(self.ip_address.clone())
    }
    fn name(&self) -> &str {
        &self.name
    }
});

impl CustomerGateway {
    /// The fields Create and Modify answer with.
    fn summary(&self) -> Body {
        object(json!({
            "CustomerGatewayId": self.id,
            "IpAddress": self.ip_address,
            "Name": self.name,
            "Description": self.description,
            "CreateTime": self.created_ms,
        }))
    }

    /// The BGP authentication key in clear ("" when none): the API returns it to its owner.
    pub fn auth_key(&self, key: &MasterKey) -> ApiResult<String> {
        Ok(match &self.auth_key {
            Some(sealed) => sealed.open(key)?.expose().to_string(),
            None => String::new(),
        })
    }

    pub fn describe(&self, key: &MasterKey, tags: Option<&Vec<(String, String)>>) -> ApiResult<Body> {
        let mut b = self.summary();
        if let Some(asn) = self.asn {
            b.insert("Asn".into(), json!(asn));
        }
        b.insert("AuthKey".into(), json!(self.auth_key(key)?));
        b.insert("Tags".into(), tags_json(tags));
        Ok(b)
    }
}

/// The caller's customer gateway in `region`, or `InvalidCustomerGatewayInstanceId.NotFound`.
pub fn find(tx: &dyn Tx, account_id: i64, region: &str, id: &str) -> ApiResult<CustomerGateway> {
    tx.get_in::<CustomerGateway>(account_id, region, id)?.ok_or_else(|| {
        ApiError::not_found(
            "InvalidCustomerGatewayInstanceId.NotFound",
            "The specified customer gateway instance id does not exist.",
        )
    })
}

/// A 4-byte AS number: plain decimal, or `high.low` (asdot) meaning high × 65536 + low.
pub fn parse_asn(s: &str) -> Option<u32> {
    let n: u64 = match s.split_once('.') {
        Some((hi, lo)) => {
            let (hi, lo): (u64, u64) = (hi.parse().ok()?, lo.parse().ok()?);
            if hi > 65535 || lo > 65535 {
                return None;
            }
            hi * 65536 + lo
        }
        None => s.parse().ok()?,
    };
    u32::try_from(n).ok().filter(|n| *n > 0)
}

/// A BGP authentication key: 1-64 printable ASCII characters, no spaces and no `?`.
fn check_auth_key(key: &str) -> ApiResult<()> {
    let ok = (1..=64).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic() && b != b'?');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request("InvalidAuthkey.Malformed", "The specified BGP authentication key is malformed."))
    }
}

/// A usable unicast IPv4 address.
fn parse_ip(s: &str) -> ApiResult<Ipv4Addr> {
    match s.parse::<Ipv4Addr>() {
        Ok(ip) if !(ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || ip.is_broadcast()) => Ok(ip),
        _ => Err(ApiError::bad_request("InvalidIpAddress.WrongFormat", "Specified IpAddress is invalid.")),
    }
}

fn missing_asn() -> ApiError {
    ApiError::bad_request(
        "OperationDenied.MissingAsn",
        "The autonomous system number of the customer gateway is mandatory when BGP authentication key is specified.",
    )
}

pub async fn create(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let ip_address = parse_ip(&p.required("IpAddress")?)?.to_string();
    let name = p.str("Name");
    if let Some(n) = &name {
        check_name(n, 128)?;
    }
    let description = p.str("Description");
    if let Some(d) = &description {
        check_description(d, 100)?;
    }
    let asn = p
        .get("Asn")
        .map(|a| parse_asn(a).ok_or_else(|| ApiError::invalid_parameter("Asn", format!("{a:?} is not an AS number"))))
        .transpose()?;
    let auth_key = p.str("AuthKey");
    if let Some(k) = &auth_key {
        check_auth_key(k)?;
        if asn.is_none() {
            return Err(missing_asn());
        }
    }
    let auth_key = auth_key.map(|k| Sealed::seal(&ctx.app.master_key, &Secret::new(k)));
    let (account_id, quota) = (ctx.account_id, ctx.app.config.quotas.customer_gateways);
    ctx.write_once(move |tx| {
        let in_region = ListQuery {
            kind: CustomerGateway::KIND,
            account_id,
            region_id: Some(region.id.clone()),
            ..Default::default()
        };
        let taken = tx.count(&ListQuery { unique_key: Some(ip_address.clone()), ..in_region.clone() })?;
        if taken > 0 {
            return Err(ApiError::bad_request(
                "InvalidIpAddress.AlreadyExist",
                "Specified IpAddress is already exist.",
            ));
        }
        if tx.count(&in_region)? >= quota {
            return Err(ApiError::bad_request("Resource.QuotaFull", "The quota of resource is full"));
        }
        let cgw = CustomerGateway {
            id: new_id("cgw"),
            account_id,
            region_id: region.id.clone(),
            ip_address: ip_address.clone(),
            name: name.clone().unwrap_or_default(),
            description: description.clone().unwrap_or_default(),
            asn,
            auth_key: auth_key.clone(),
            created_ms: now_ms(),
        };
        tx.insert_as(&cgw)?;
        Ok(cgw.summary())
    })
    .await
}

pub async fn modify(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let id = p.required("CustomerGatewayId")?;
    let name = p.str("Name");
    if let Some(n) = &name {
        check_name(n, 128)?;
    }
    let description = p.str("Description");
    if let Some(d) = &description {
        check_description(d, 100)?;
    }
    let auth_key = p.str("AuthKey");
    if let Some(k) = &auth_key {
        check_auth_key(k)?;
    }
    let auth_key = auth_key.map(|k| Sealed::seal(&ctx.app.master_key, &Secret::new(k)));
    let account_id = ctx.account_id;
    ctx.write_once(move |tx| {
        let mut cgw = find(tx, account_id, &region.id, &id)?;
        for conn in vpn_connections::using_customer_gateway(tx, account_id, &region.id, &cgw.id)? {
            let gw = vpn_gateways::find(tx, account_id, &region.id, &conn.vpn_gateway_id, 404)?;
            if gw.status != super::vpn_gateways::GatewayStatus::Active {
                return Err(ApiError::customer_gateway_configuring());
            }
        }
        if auth_key.is_some() && cgw.asn.is_none() {
            return Err(missing_asn());
        }
        if let Some(n) = &name {
            cgw.name = n.clone();
        }
        if let Some(d) = &description {
            cgw.description = d.clone();
        }
        if auth_key.is_some() {
            cgw.auth_key = auth_key.clone();
        }
        tx.update_as(&cgw)?;
        Ok(cgw.summary())
    })
    .await
}

pub async fn describe_one(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let id = ctx.params.required("CustomerGatewayId")?;
    ctx.store().read(|tx| {
        let cgw = find(tx, ctx.account_id, &region.id, &id)?;
        let tags = tx.tags_of(CustomerGateway::KIND, ctx.account_id, std::slice::from_ref(&cgw.id))?;
        cgw.describe(&ctx.app.master_key, tags.get(&cgw.id))
    })
}

pub async fn describe_many(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let page = ctx.params.page(50)?;
    let query = ListQuery {
        kind: CustomerGateway::KIND,
        account_id: ctx.account_id,
        region_id: Some(region.id),
        ids: ctx.params.str("CustomerGatewayId").into_iter().collect(),
        tags: ctx.params.tags("Tag", 20)?,
        offset: page.offset(),
        limit: Some(page.size),
        ..Default::default()
    };
    let (total, items) = ctx.store().read(|tx| {
        let (cgws, tags, total) = tx.page_as::<CustomerGateway>(&query, true)?;
        let items = cgws
            .iter()
            .map(|c| c.describe(&ctx.app.master_key, tags.get(&c.id)).map(Value::Object))
            .collect::<ApiResult<Vec<_>>>()?;
        Ok((total, items))
    })?;
    Ok(page_body(total, page, "CustomerGateways", "CustomerGateway", items))
}

pub async fn delete(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let id = ctx.params.required("CustomerGatewayId")?;
    let account_id = ctx.account_id;
    ctx.write_once(move |tx| {
        let cgw = find(tx, account_id, &region.id, &id)?;
        if !vpn_connections::using_customer_gateway(tx, account_id, &region.id, &cgw.id)?.is_empty() {
            return Err(ApiError::bad_request(
                "DependencyViolation.VpnConnection",
                "The specified customer gateway is used by an IPsec connection.",
            ));
        }
        tx.delete(CustomerGateway::KIND, account_id, &cgw.id)?;
        Ok(Body::new())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asn_forms() {
        assert_eq!(parse_asn("65000"), Some(65000));
        assert_eq!(parse_asn("123.456"), Some(8_061_384));
        assert_eq!(parse_asn("4294967295"), Some(u32::MAX));
        assert_eq!(parse_asn("4294967296"), None);
        assert_eq!(parse_asn("0"), None);
        assert_eq!(parse_asn("65536.0"), None);
        assert_eq!(parse_asn("abc"), None);
    }

    #[test]
    fn auth_keys_and_ips() {
        assert!(check_auth_key("Abc-123!").is_ok());
        assert_eq!(check_auth_key("has space").unwrap_err().code, "InvalidAuthkey.Malformed");
        assert!(check_auth_key("what?").is_err());
        assert!(check_auth_key(&"k".repeat(65)).is_err());
        assert!(check_auth_key("密钥").is_err());
        assert!(parse_ip("203.0.113.7").is_ok());
        for bad in ["1.2.3", "1.2.3.256", "0.0.0.0", "127.0.0.1", "224.0.0.1", "255.255.255.255", "::1"] {
            assert_eq!(parse_ip(bad).unwrap_err().code, "InvalidIpAddress.WrongFormat", "{bad}");
        }
    }
}
