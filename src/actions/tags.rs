//! User tags on any resource kind: TagResources, ListTagResources, UnTagResources. Tags are
//! stored beside resources (one row per binding) and deleted with them.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use serde_json::{json, Value};

use super::customer_gateways::CustomerGateway;
use super::vpn_connections::VpnConnection;
use super::vpn_gateways::VpnGateway;
use crate::api::error::{ApiError, ApiResult};
use crate::app::{Body, Ctx};
use crate::store::{ListQuery, Resource, TagBinding};

/// Wire `ResourceType` → stored kind. Matched case-insensitively (the documented spelling is
/// `VpnGateWay`). Kinds this server does not host (VPC, EIP, ...) are accepted and simply hold
/// no resources.
const RESOURCE_TYPES: &[(&str, &str)] = &[
    ("VpnGateWay", VpnGateway::KIND),
    ("CustomerGateWay", CustomerGateway::KIND),
    ("VpnConnection", VpnConnection::KIND),
    ("VPC", "Vpc"),
    ("VSWITCH", "VSwitch"),
    ("ROUTETABLE", "RouteTable"),
    ("EIP", "Eip"),
    ("NATGATEWAY", "NatGateway"),
    ("COMMONBANDWIDTHPACKAGE", "CommonBandwidthPackage"),
];

/// How many resources one call may name.
const MAX_RESOURCES: usize = 50;

/// (wire spelling, stored kind) of the `ResourceType` parameter.
fn resource_type(ctx: &Ctx) -> ApiResult<(&'static str, &'static str)> {
    let t = ctx.params.required("ResourceType")?;
    RESOURCE_TYPES
        .iter()
        .find(|(wire, _)| wire.eq_ignore_ascii_case(&t))
        .copied()
        .ok_or_else(|| ApiError::invalid_parameter("ResourceType", format!("{t:?} is not a supported resource type")))
}

fn reserved(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    lower.starts_with("aliyun") || lower.starts_with("acs:") || lower.contains("http://") || lower.contains("https://")
}

pub fn check_tag(key: &str, value: &str) -> ApiResult<()> {
    if key.is_empty() || key.chars().count() > 64 || reserved(key) {
        return Err(ApiError::bad_request("InvalidTagKey", format!("The tag key {key:?} is not valid.")));
    }
    if value.chars().count() > 128 || reserved(value) {
        return Err(ApiError::bad_request("InvalidTagValue", format!("The tag value {value:?} is not valid.")));
    }
    Ok(())
}

fn resource_not_found(id: &str) -> ApiError {
    ApiError::not_found("InvalidResourceId.NotFound", format!("The specified resource {id} does not exist."))
}

pub async fn tag_resources(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let (_, kind) = resource_type(&ctx)?;
    let ids = ctx.params.list("ResourceId", MAX_RESOURCES)?;
    if ids.is_empty() {
        return Err(ApiError::missing_parameter("ResourceId.1"));
    }
    let max_tags = ctx.app.config.quotas.tags_per_resource;
    let tags: Vec<(String, String)> =
        ctx.params.tags("Tag", max_tags)?.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect();
    if tags.is_empty() {
        return Err(ApiError::missing_parameter("Tag.1.Key"));
    }
    for (k, v) in &tags {
        check_tag(k, v)?;
    }
    let account_id = ctx.account_id;
    ctx.write_once(move |tx| {
        let existing = tx.tags_of(kind, account_id, &ids)?;
        for id in &ids {
            match tx.get(kind, account_id, id)? {
                Some(r) if r.region_id == region.id => {}
                _ => return Err(resource_not_found(id)),
            }
            let mut keys: Vec<&str> = existing.get(id).into_iter().flatten().map(|(k, _)| k.as_str()).collect();
            keys.extend(tags.iter().map(|(k, _)| k.as_str()));
            keys.sort_unstable();
            keys.dedup();
            if keys.len() > max_tags {
                return Err(ApiError::bad_request(
                    "QuotaExceeded.TagNum",
                    format!("A resource can have at most {max_tags} tags."),
                ));
            }
            for (key, value) in &tags {
                let b = TagBinding {
                    kind: kind.to_string(),
                    resource_id: id.clone(),
                    key: key.clone(),
                    value: value.clone(),
                };
                tx.set_tag(&b, account_id)?;
            }
        }
        Ok(Body::new())
    })
    .await
}

pub async fn untag_resources(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let (_, kind) = resource_type(&ctx)?;
    let ids = ctx.params.list("ResourceId", MAX_RESOURCES)?;
    if ids.is_empty() {
        return Err(ApiError::missing_parameter("ResourceId.1"));
    }
    let keys = ctx.params.list("TagKey", ctx.app.config.quotas.tags_per_resource)?;
    let all = ctx.params.bool("All")?.unwrap_or(false);
    let account_id = ctx.account_id;
    ctx.write_once(move |tx| {
        // As TagResources: every resource must be the caller's, in the region, or nothing changes.
        for id in &ids {
            if tx.get(kind, account_id, id)?.is_none_or(|r| r.region_id != region.id) {
                return Err(resource_not_found(id));
            }
        }
        for id in &ids {
            if !keys.is_empty() {
                tx.remove_tags(kind, account_id, id, Some(&keys))?;
            } else if all {
                tx.remove_tags(kind, account_id, id, None)?;
            }
        }
        Ok(Body::new())
    })
    .await
}

pub async fn list_tag_resources(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let (wire_type, kind) = resource_type(&ctx)?;
    let p = &ctx.params;
    let ids = p.list("ResourceId", MAX_RESOURCES)?;
    let filter = p.tags("Tag", 20)?;
    if ids.is_empty() && filter.is_empty() {
        return Err(ApiError::bad_request(
            "MissingParameter",
            "The input parameter \"ResourceId.N\" or \"Tag.N\" that is mandatory for processing this request is not supplied.",
        ));
    }
    let max = p.parse::<u64>("MaxResults")?.unwrap_or(50);
    if !(1..=50).contains(&max) {
        return Err(ApiError::invalid_parameter("MaxResults", "it must be between 1 and 50"));
    }
    let after = p.get("NextToken").map(decode_token).transpose()?;
    let query = ListQuery {
        kind,
        account_id: ctx.account_id,
        region_id: Some(region.id),
        ids,
        tags: filter.clone(),
        ..Default::default()
    };
    let mut bindings: Vec<(String, String, String)> = ctx.store().read(|tx| {
        let matching: Vec<String> = tx.list(&query)?.into_iter().map(|r| r.id).collect();
        let tags = tx.tags_of(kind, ctx.account_id, &matching)?;
        Ok(tags.into_iter().flat_map(|(id, kv)| kv.into_iter().map(move |(k, v)| (id.clone(), k, v))).collect())
    })?;
    // With a tag filter, the bindings shown are the ones that matched.
    if !filter.is_empty() {
        bindings.retain(|(_, k, v)| filter.iter().any(|(fk, fv)| fk == k && fv.as_ref().is_none_or(|fv| fv == v)));
    }
    bindings.sort();
    if let Some((rid, key)) = &after {
        bindings.retain(|(r, k, _)| (r, k) > (rid, key));
    }
    let more = bindings.len() as u64 > max;
    bindings.truncate(max as usize);
    let next = match bindings.last() {
        Some((r, k, _)) if more => encode_token(r, k),
        _ => String::new(),
    };
    let items: Vec<Value> = bindings
        .into_iter()
        .map(|(id, k, v)| json!({"ResourceType": wire_type, "ResourceId": id, "TagKey": k, "TagValue": v}))
        .collect();
    let mut body = Body::new();
    body.insert("NextToken".into(), json!(next));
    body.insert("TagResources".into(), super::rules::wrapped("TagResource", items));
    Ok(body)
}

/// NextToken: the last (resource, key) shown, opaque to the caller.
fn encode_token(resource_id: &str, key: &str) -> String {
    B64.encode(format!("{resource_id}\n{key}"))
}

fn decode_token(token: &str) -> ApiResult<(String, String)> {
    B64.decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once('\n').map(|(r, k)| (r.to_string(), k.to_string())))
        .ok_or_else(|| ApiError::invalid_parameter("NextToken", "it is not a token this server issued"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_rules() {
        assert!(check_tag("env", "").is_ok());
        assert_eq!(check_tag("", "v").unwrap_err().code, "InvalidTagKey");
        assert_eq!(check_tag("aliyun:x", "v").unwrap_err().code, "InvalidTagKey");
        assert_eq!(check_tag("ACS:x", "v").unwrap_err().code, "InvalidTagKey");
        assert_eq!(check_tag("k", "see https://x").unwrap_err().code, "InvalidTagValue");
        assert_eq!(check_tag(&"k".repeat(65), "v").unwrap_err().code, "InvalidTagKey");
    }

    #[test]
    fn tokens_roundtrip() {
        let t = encode_token("vpn-abc", "env");
        assert_eq!(decode_token(&t).unwrap(), ("vpn-abc".to_string(), "env".to_string()));
        assert!(decode_token("not a token!").is_err());
    }
}
