//! The route actions: what each reads from a request, checks and changes.

use super::*;

// ---------------------------------------------------------------------------------------------
// Parameters.

fn weight_param(p: &Params, name: &str) -> ApiResult<u32> {
    check_weight(p.required_parse::<i64>(name)?)
}

pub(super) fn cidr_param(p: &Params, name: &str) -> ApiResult<String> {
    Ok(parse_cidr(name, &p.required(name)?)?.to_string())
}

pub(super) fn priority_param(p: &Params) -> ApiResult<Option<u32>> {
    match p.parse::<i64>("Priority")? {
        Some(n) if PRIORITIES.contains(&n) => Ok(Some(n as u32)),
        Some(n) => Err(ApiError::invalid_parameter("Priority", format!("{n} is not between 1 and 100"))),
        None => Ok(None),
    }
}

fn publish_param(p: &Params) -> ApiResult<bool> {
    p.bool("PublishVpc")?.ok_or_else(|| ApiError::missing_parameter("PublishVpc"))
}

fn overlay_mode(p: &Params) -> ApiResult<String> {
    Ok(p.enumeration("OverlayMode", OVERLAY_MODES)?.unwrap_or("Ipsec").to_string())
}

fn description_param(p: &Params) -> ApiResult<String> {
    let d = p.str("Description").unwrap_or_default();
    if !d.is_empty() {
        check_route_description(&d)?;
    }
    Ok(d)
}

/// What a request names a route by: (RouteSource,) RouteDest, NextHop, Weight (, Priority).
struct Key<K> {
    /// The kind's fields as named (a priority not given is the default).
    kind: K,
    dest: String,
    hop: String,
    weight: u32,
    /// The priority, as given.
    priority: Option<u32>,
}

impl<K: RouteKind> Key<K> {
    /// Reads the key; for a `new` route, checks that its kind may lead to the destination.
    fn read(p: &Params, new: bool) -> ApiResult<Self> {
        let source = K::read_source(p)?;
        let dest = parse_cidr("RouteDest", &p.required("RouteDest")?)?;
        if new {
            K::check_new_dest(dest)?;
        }
        let hop = p.required("NextHop")?;
        let weight = weight_param(p, "Weight")?;
        let priority = K::read_priority(p)?;
        Ok(Key { kind: K::named(source, priority), dest: dest.to_string(), hop, weight, priority })
    }

    /// The user's route the key names, whatever its weight.
    fn get(&self, tx: &dyn Tx, gw: &VpnGateway) -> ApiResult<Option<Route<K>>> {
        tx.get_as(gw.account_id, &self.kind.id(&gw.id, Origin::Custom, &self.dest, &self.hop))
    }

    /// Whether the route has the weight (and priority, if given) the request says it has.
    fn matches(&self, r: &Route<K>) -> bool {
        r.weight == self.weight && self.priority.is_none_or(|p| r.kind.priority() == Some(p))
    }
}

// ---------------------------------------------------------------------------------------------
// The actions: CreateVpnRouteEntry and CreateVpnPbrRouteEntry are `create_route` of one kind and
// the other, and so on.

pub async fn create(ctx: Ctx) -> ApiResult<Body> {
    create_route::<Destination>(ctx).await
}

pub async fn create_pbr(ctx: Ctx) -> ApiResult<Body> {
    create_route::<Policy>(ctx).await
}

pub async fn describe_many(ctx: Ctx) -> ApiResult<Body> {
    describe_routes::<Destination>(ctx).await
}

pub async fn describe_pbr(ctx: Ctx) -> ApiResult<Body> {
    describe_routes::<Policy>(ctx).await
}

pub async fn modify_weight(ctx: Ctx) -> ApiResult<Body> {
    modify_route_weight::<Destination>(ctx).await
}

pub async fn modify_pbr_weight(ctx: Ctx) -> ApiResult<Body> {
    modify_route_weight::<Policy>(ctx).await
}

pub async fn delete(ctx: Ctx) -> ApiResult<Body> {
    delete_route::<Destination>(ctx).await
}

pub async fn delete_pbr(ctx: Ctx) -> ApiResult<Body> {
    delete_route::<Policy>(ctx).await
}

async fn create_route<K: RouteKind>(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let gw_id = p.required("VpnGatewayId")?;
    let key = Key::<K>::read(p, true)?;
    let publish = publish_param(p)?;
    let description = description_param(p)?;
    let overlay_mode = overlay_mode(p)?;
    let dry_run = p.bool("DryRun")?.unwrap_or(false);
    let quotas = ctx.app.config.quotas.clone();
    change_gateway(&ctx, region, gw_id, move |tx, gw| {
        let conn = next_hop(tx, gw, &key.hop)?;
        let route = Route {
            weight: key.weight,
            published: publish,
            description: description.clone(),
            overlay_mode: overlay_mode.clone(),
            ..Route::new(&Scope::of(gw), key.kind.clone(), Origin::Custom, key.dest.clone(), conn.id, now_ms())
        };
        if tx.get_as::<Route<K>>(gw.account_id, &route.id)?.is_some() {
            return Err(already_exists());
        }
        if let Ok(dest) = route.route_dest.parse() {
            crate::actions::ssl_vpn::check_route_conflict(tx, gw, dest)?;
        }
        let routes = routes::<K>(tx, gw.account_id, &gw.id)?;
        check_group(&routes, &route, route.weight)?;
        if routes.iter().filter(|r| K::counts(r.origin)).count() as u64 >= K::quota(&quotas) {
            return Err(quota_full());
        }
        if publish {
            check_vpc_publish(tx, gw, &route.route_dest, quotas.destination_routes)?;
        }
        if dry_run {
            return Err(dry_run_passed());
        }
        tx.insert_as(&route)?;
        Ok(route.created())
    })
    .await
}

async fn describe_routes<K: RouteKind>(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let gw_id = p.required("VpnGatewayId")?;
    let page = p.page(50)?;
    let origin = K::origin_filter(p)?;
    let (total, items) = ctx.store().read(|tx| {
        let gw = vpn_gateways::find(tx, ctx.account_id, &region.id, &gw_id, 404)?;
        let query = ListQuery {
            kind: K::KIND,
            account_id: ctx.account_id,
            parent_id: Some(gw.id.clone()),
            status: origin.map(|o| o.as_str().to_string()),
            offset: page.offset(),
            limit: Some(page.size),
            ..Default::default()
        };
        let (routes, _, total) = tx.page_as::<Route<K>>(&query, false)?;
        Ok((total, routes.iter().map(Route::describe).collect::<Vec<_>>()))
    })?;
    Ok(page_body(total, page, K::LIST, K::KIND, items))
}

async fn modify_route_weight<K: RouteKind>(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let gw_id = p.required("VpnGatewayId")?;
    let key = Key::<K>::read(p, false)?;
    let new_weight = weight_param(p, "NewWeight")?;
    overlay_mode(p)?;
    change_gateway(&ctx, region, gw_id, move |tx, gw| {
        let mut route = key.get(tx, gw)?.filter(|r| key.matches(r)).ok_or_else(route_not_found)?;
        if new_weight != route.weight {
            check_group(&routes::<K>(tx, gw.account_id, &gw.id)?, &route, new_weight)?;
            route.weight = new_weight;
            tx.update_as(&route)?;
        }
        Ok(Body::new())
    })
    .await
}

async fn delete_route<K: RouteKind>(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let gw_id = p.required("VpnGatewayId")?;
    let key = Key::<K>::read(p, false)?;
    overlay_mode(p)?;
    change_gateway(&ctx, region, gw_id, move |tx, gw| {
        let route = key.get(tx, gw)?.ok_or_else(route_not_found)?;
        if !key.matches(&route) {
            return Err(K::mismatch());
        }
        tx.delete(K::KIND, gw.account_id, &route.id)?;
        Ok(Body::new())
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Publishing.

pub async fn publish(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let gw_id = p.required("VpnGatewayId")?;
    let dest = cidr_param(p, "RouteDest")?;
    let hop = p.required("NextHop")?;
    // Documented in lower case; the documented example sends `PBR`.
    let route_type =
        p.enumeration("RouteType", &["pbr", "dbr"])?.ok_or_else(|| ApiError::missing_parameter("RouteType"))?;
    let publish = publish_param(p)?;
    let quota = ctx.app.config.quotas.destination_routes;
    change_gateway(&ctx, region, gw_id, move |tx, gw| {
        if route_type == "dbr" {
            set_published::<Destination>(tx, gw, &dest, &hop, publish, quota)?;
        } else {
            set_published::<Policy>(tx, gw, &dest, &hop, publish, quota)?;
        }
        Ok(Body::new())
    })
    .await
}

/// Publishes (or withdraws) every route of kind `K` to `dest` through `hop`: policy routes are
/// named without their source, so the change applies to every match.
fn set_published<K: RouteKind>(
    tx: &mut dyn Tx,
    gw: &VpnGateway,
    dest: &str,
    hop: &str,
    publish: bool,
    quota: u64,
) -> ApiResult<()> {
    let hits: Vec<Route<K>> = routes::<K>(tx, gw.account_id, &gw.id)?
        .into_iter()
        .filter(|r| r.route_dest == dest && r.next_hop == hop)
        .collect();
    if hits.is_empty() {
        return Err(route_not_found());
    }
    if publish && hits.iter().any(|r| !r.published) {
        check_vpc_publish(tx, gw, dest, quota)?;
    }
    for mut r in hits.into_iter().filter(|r| r.published != publish) {
        r.published = publish;
        tx.update_as(&r)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// For connections and the reconciler.
