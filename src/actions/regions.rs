//! DescribeRegions: the regions this server is configured to serve.

use serde_json::{json, Value};

use crate::api::error::ApiResult;
use crate::api::render::HOST_ID;
use crate::app::{Body, Ctx};

pub async fn describe_regions(ctx: Ctx) -> ApiResult<Body> {
    let english = ctx.params.get("AcceptLanguage").is_some_and(|l| l.starts_with("en"));
    let regions: Vec<Value> = ctx
        .app
        .config
        .regions
        .iter()
        .map(|r| {
            json!({
                "RegionId": r.id,
                "LocalName": if english { r.id.clone() } else { r.local_name.clone() },
                "RegionEndpoint": HOST_ID,
            })
        })
        .collect();
    let mut body = Body::new();
    body.insert("Regions".into(), json!({ "Region": regions }));
    Ok(body)
}
