//! VPN gateway routes: CreateVpnRouteEntry, CreateVpnPbrRouteEntry, PublishVpnRouteEntry,
//! DescribeVpnRouteEntries, DescribeVpnPbrRouteEntries, ModifyVpnRouteEntryWeight,
//! ModifyVpnPbrRouteEntryWeight, DeleteVpnRouteEntry, DeleteVpnPbrRouteEntry; and the routes
//! connections imply (AutoConfigRoute) or learn (BGP).
//!
//! Two kinds of route hang under a VPN gateway:
//! - destination-based routes (`VpnRouteEntry`, "dbr"): a destination CIDR through an IPsec
//!   connection. Users create them (`Origin::Custom`); BGP-learned prefixes are recorded the same
//!   way (`Origin::Bgp`) once the data plane reports them.
//! - policy-based routes (`VpnPbrRouteEntry`, "pbr"): a (source, destination) pair through a
//!   connection, ordered by a priority. Users create them (`Custom`); connections created or
//!   modified with AutoConfigRoute add one per (LocalSubnet, RemoteSubnet) pair (`Auto`).
//!
//! Both are one model, `Route<K>`, and one implementation of each action: the kind `K`
//! (`Destination` or `Policy`) holds the fields only that kind has and states, through
//! `RouteKind`, the few rules in which the two differ.
//!
//! A route is identified by what the API identifies it by — gateway, (source,) destination and
//! next hop — so its store ID is derived from those (`dbr_id`, `pbr_id`) and a duplicate is one
//! `get` away. The kind of origin is kept in the record's status column, so the RouteEntryType
//! filter pages in the store.
//!
//! Rules (the documented ones, and where the documents are silent, the real service's):
//! - Weight is 0 (standby) or 100 (active); anything else is `VpnRouteEntry.InvalidWeight`.
//! - Active/standby: the routes sharing a destination (dbr) or a (source, destination, priority)
//!   (pbr) are at most one active and one standby. A second route with the weight another
//!   connection already holds is `VpnRouteEntry.Conflict`; a third route is
//!   `VpnRouteEntry.BackupRoute`.
//! - The same (source,) destination and next hop twice is `VpnRouteEntry.AlreadyExists`.
//! - The next hop is an IPsec connection of the same gateway that is not being deleted.
//! - Publishing puts the route into the VPC's route table: another VPN gateway of the same VPC
//!   already publishing that CIDR is `OperationFailed.RouteConflict`; at most
//!   `quotas.destination_routes` CIDRs of one gateway are published (`QuotaExceeded.VpnRouteEntry`).
//! - Every change puts the gateway in `updating` until the reconciler has applied it; a gateway
//!   that is not `active` refuses changes with `VpnGateway.Configuring`.

use std::collections::BTreeSet;

use ipnet::Ipv4Net;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::customer_gateways::CustomerGateway;
use super::rules::{object, page_body};
use super::vpn_connections::{ConnectionState, VpnConnection};
use super::vpn_gateways::{self, VpnGateway};
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::app::{Body, Ctx};
use crate::config::{Quotas, Region};
use crate::store::{now_ms, ListQuery, Resource, Tx, TxExt};

/// The two documented weights: 0 = low priority (standby), 100 = high priority (active).
pub const WEIGHTS: [u32; 2] = [0, 100];
/// A policy-based route's priority when none is given (1-100; smaller matches first).
pub const DEFAULT_PRIORITY: u32 = 10;
const PRIORITIES: std::ops::RangeInclusive<i64> = 1..=100;
/// The one tunnel protocol.
const OVERLAY_MODES: &[&str] = &["Ipsec"];

/// Who made a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Created through the API.
    Custom,
    /// Added by a connection's AutoConfigRoute; removed with it.
    Auto,
    /// Learned from the peer over BGP, as the data plane reported it.
    Bgp,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Custom => "custom",
            Origin::Auto => "auto",
            Origin::Bgp => "bgp",
        }
    }
}

fn state(published: bool) -> &'static str {
    if published {
        "published"
    } else {
        "normal"
    }
}

// ---------------------------------------------------------------------------------------------
// The route model.

/// A route under a VPN gateway. `kind` holds what only routes of kind `K` have; it is stored
/// flat, beside the common fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route<K> {
    pub id: String,
    pub account_id: i64,
    pub region_id: String,
    pub vpn_gateway_id: String,
    #[serde(flatten)]
    pub kind: K,
    pub route_dest: String,
    /// The IPsec connection the route leads through.
    pub next_hop: String,
    pub weight: u32,
    /// Published into the VPC's route table (State `published`), or not (`normal`).
    pub published: bool,
    pub origin: Origin,
    pub description: String,
    pub overlay_mode: String,
    pub created_ms: i64,
}

/// A destination-based route.
pub type VpnRouteEntry = Route<Destination>;
/// A policy-based route.
pub type VpnPbrRouteEntry = Route<Policy>;

/// What only destination-based routes have: for BGP routes, the AS path and communities they
/// were learned with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Destination {
    pub as_path: String,
    pub community: String,
}

/// What only policy-based routes have: the source the route matches, and its priority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub route_source: String,
    pub priority: u32,
}

/// Where the two kinds of route differ; a default is a kind having nothing of its own there.
pub trait RouteKind: std::fmt::Debug + Clone + Serialize + DeserializeOwned + Send + 'static {
    /// The store kind; also the wire name of one entry of the Describe list.
    const KIND: &'static str;
    /// The wire name of the list Describe answers.
    const LIST: &'static str;
    /// What a request names before RouteDest: a policy route's RouteSource.
    type Source;

    fn read_source(p: &Params) -> ApiResult<Self::Source>;
    /// What a request names after Weight: a policy route's Priority.
    fn read_priority(_: &Params) -> ApiResult<Option<u32>> {
        Ok(None)
    }
    /// The kind's fields of the route a request names; a new route takes the default priority.
    fn named(source: Self::Source, priority: Option<u32>) -> Self;
    /// Whether a new route may lead to `dest`.
    fn check_new_dest(_dest: Ipv4Net) -> ApiResult<()> {
        Ok(())
    }
    /// The store ID of the route to `dest` through `next_hop`.
    fn id(&self, gw_id: &str, origin: Origin, dest: &str, next_hop: &str) -> String;
    /// Whether routes of `origin` count: against the gateway's quota (`quota`) and in
    /// active/standby groups.
    fn counts(origin: Origin) -> bool;
    fn quota(quotas: &Quotas) -> u64;
    /// Whether two routes to the same destination match the same traffic the same way (are one
    /// active/standby group).
    fn same_group(&self, _other: &Self) -> bool {
        true
    }
    fn priority(&self) -> Option<u32> {
        None
    }
    /// The error a Delete that names an existing route by the wrong weight (or priority) gets.
    fn mismatch() -> ApiError;
    /// The list filter Describe reads (RouteEntryType).
    fn origin_filter(_: &Params) -> ApiResult<Option<Origin>> {
        Ok(None)
    }
    /// The fields that name the traffic beside RouteDest, in both views.
    fn traffic_fields(&self, _out: &mut Body) {}
    /// The fields a Describe entry adds for a route of `origin`.
    fn describe_fields(&self, _origin: Origin, _out: &mut Body) {}
}

impl RouteKind for Destination {
    const KIND: &'static str = "VpnRouteEntry";
    const LIST: &'static str = "VpnRouteEntries";
    type Source = ();

    fn read_source(_: &Params) -> ApiResult<()> {
        Ok(())
    }
    fn named((): (), _: Option<u32>) -> Self {
        Destination::default()
    }
    fn check_new_dest(dest: Ipv4Net) -> ApiResult<()> {
        check_destination(dest)
    }
    fn id(&self, gw_id: &str, origin: Origin, dest: &str, next_hop: &str) -> String {
        dbr_id(gw_id, origin, dest, next_hop)
    }
    /// BGP-learned routes do not.
    fn counts(origin: Origin) -> bool {
        origin == Origin::Custom
    }
    fn quota(quotas: &Quotas) -> u64 {
        quotas.destination_routes
    }
    fn mismatch() -> ApiError {
        route_not_found()
    }
    /// Documented: Custom | System; the current service: custom | bgp. Absent or All: both.
    fn origin_filter(p: &Params) -> ApiResult<Option<Origin>> {
        Ok(match p.enumeration("RouteEntryType", &["Custom", "System", "Bgp", "All"])? {
            Some("Custom") => Some(Origin::Custom),
            Some("System") | Some("Bgp") => Some(Origin::Bgp),
            _ => None,
        })
    }
    fn describe_fields(&self, origin: Origin, out: &mut Body) {
        let bgp = origin == Origin::Bgp;
        out.insert("RouteEntryType".into(), json!(if bgp { "System" } else { "Custom" }));
        out.insert("Source".into(), json!(if bgp { "BGP" } else { "CUSTOM" }));
        if bgp {
            out.insert("AsPath".into(), json!(self.as_path));
            out.insert("Community".into(), json!(self.community));
        }
    }
}

impl RouteKind for Policy {
    const KIND: &'static str = "VpnPbrRouteEntry";
    const LIST: &'static str = "VpnPbrRouteEntries";
    type Source = String;

    fn read_source(p: &Params) -> ApiResult<String> {
        cidr_param(p, "RouteSource")
    }
    fn read_priority(p: &Params) -> ApiResult<Option<u32>> {
        priority_param(p)
    }
    fn named(route_source: String, priority: Option<u32>) -> Self {
        Policy { route_source, priority: priority.unwrap_or(DEFAULT_PRIORITY) }
    }
    fn id(&self, gw_id: &str, _: Origin, dest: &str, next_hop: &str) -> String {
        pbr_id(gw_id, &self.route_source, dest, next_hop)
    }
    /// Auto-configured routes count as the user's do.
    fn counts(_: Origin) -> bool {
        true
    }
    fn quota(quotas: &Quotas) -> u64 {
        quotas.policy_routes
    }
    fn same_group(&self, other: &Self) -> bool {
        self.route_source == other.route_source && self.priority == other.priority
    }
    fn priority(&self) -> Option<u32> {
        Some(self.priority)
    }
    /// The route exists but not as described (its weight or priority differ).
    fn mismatch() -> ApiError {
        conflict()
    }
    fn traffic_fields(&self, out: &mut Body) {
        out.insert("RouteSource".into(), json!(self.route_source));
        out.insert("Priority".into(), json!(self.priority));
    }
}

crate::resource!(<K: RouteKind> Route<K>, K::KIND, {
    fn parent_id(&self) -> Option<&str> {
        Some(&self.vpn_gateway_id)
    }
    /// The origin, so that lists filter on it.
    fn status(&self) -> &str {
        self.origin.as_str()
    }
});

impl<K: RouteKind> Route<K> {
    /// A route of gateway `scope` to `dest` through `next_hop`: active, not published, without
    /// description, over IPsec.
    pub fn new(scope: &Scope, kind: K, origin: Origin, dest: String, next_hop: String, created_ms: i64) -> Self {
        Route {
            id: kind.id(&scope.gateway_id, origin, &dest, &next_hop),
            account_id: scope.account_id,
            region_id: scope.region_id.clone(),
            vpn_gateway_id: scope.gateway_id.clone(),
            kind,
            route_dest: dest,
            next_hop,
            weight: 100,
            published: false,
            origin,
            description: String::new(),
            overlay_mode: "Ipsec".into(),
            created_ms,
        }
    }

    /// What CreateVpn(Pbr)RouteEntry answers.
    fn created(&self) -> Body {
        let mut map = self.view();
        map.insert("Description".into(), json!(self.description));
        map.insert("OverlayMode".into(), json!(self.overlay_mode));
        map
    }

    /// One entry of DescribeVpn(Pbr)RouteEntries.
    pub fn describe(&self) -> Value {
        let mut map = self.view();
        self.kind.describe_fields(self.origin, &mut map);
        Value::Object(map)
    }

    /// What both views show.
    fn view(&self) -> Body {
        let mut map = object(json!({
            "NextHop": self.next_hop,
            "Weight": self.weight,
            "RouteDest": self.route_dest,
            "State": state(self.published),
            "CreateTime": self.created_ms,
            "VpnInstanceId": self.vpn_gateway_id,
        }));
        self.kind.traffic_fields(&mut map);
        map
    }

    /// Routes in one active/standby group match the same traffic the same way.
    fn same_group(&self, other: &Self) -> bool {
        self.route_dest == other.route_dest && self.kind.same_group(&other.kind)
    }
}

/// The active/standby rule (`check_active_standby`) for `route` taking weight `weight` among
/// `routes`, the gateway's routes of its kind.
fn check_group<K: RouteKind>(routes: &[Route<K>], route: &Route<K>, weight: u32) -> ApiResult<()> {
    let others: Vec<u32> = routes
        .iter()
        .filter(|r| r.id != route.id && K::counts(r.origin) && r.same_group(route))
        .map(|r| r.weight)
        .collect();
    check_active_standby(&others, weight)
}

// ---------------------------------------------------------------------------------------------
// Identity.

/// The store ID of a destination-based route: gateway, destination and next hop. Custom and
/// BGP-learned routes to the same place are different routes.
pub fn dbr_id(gw_id: &str, origin: Origin, dest: &str, next_hop: &str) -> String {
    let family = if origin == Origin::Bgp { "bgp" } else { "dbr" };
    format!("{gw_id}|{family}|{dest}|{next_hop}")
}

/// The store ID of a policy-based route: gateway, source, destination and next hop. A user's
/// route and an auto-configured one for the same traffic are the same route.
pub fn pbr_id(gw_id: &str, source: &str, dest: &str, next_hop: &str) -> String {
    format!("{gw_id}|pbr|{source}|{dest}|{next_hop}")
}

// ---------------------------------------------------------------------------------------------
// Errors.

fn gateway_not_found() -> ApiError {
    ApiError::not_found("InvalidVpnGatewayInstanceId.NotFound", "The specified vpn gateway instance id does not exist.")
}

fn connection_not_found() -> ApiError {
    ApiError::not_found(
        "InvalidVpnConnectionInstanceId.NotFound",
        "The specified vpn connection instance id does not exist.",
    )
}

/// A route the request identifies does not exist (undocumented: the documents list no code).
fn route_not_found() -> ApiError {
    ApiError::not_found("VpnRouteEntry.NotFound", "The specified route entry does not exist.")
}

fn already_exists() -> ApiError {
    ApiError::bad_request("VpnRouteEntry.AlreadyExists", "The specified route entry is already exist.")
}

fn conflict() -> ApiError {
    ApiError::bad_request("VpnRouteEntry.Conflict", "The specified route entry has conflict.")
}

fn backup_route() -> ApiError {
    ApiError::bad_request("VpnRouteEntry.BackupRoute", "Validate backup route entry failed.")
}

fn invalid_weight() -> ApiError {
    ApiError::bad_request("VpnRouteEntry.InvalidWeight", "Invalid route entry weight value.")
}

fn quota_full() -> ApiError {
    ApiError::bad_request("Resource.QuotaFull", "The quota of resource is full")
}

fn vpc_route_conflict() -> ApiError {
    ApiError::bad_request(
        "OperationFailed.RouteConflict",
        "Operation failed because there is already a route in VPC route table to another VPN on the same network block.",
    )
}

fn vpc_route_quota() -> ApiError {
    ApiError::bad_request(
        "QuotaExceeded.VpnRouteEntry",
        "The number of route entries to the VPN gateway in the VPC routing table has reached the quota limit.",
    )
}

fn dry_run_passed() -> ApiError {
    ApiError::bad_request("DryRunOperation", "Request validation has been passed with DryRun flag set.")
}

/// AutoConfigRoute would take the gateway past its policy-based route quota.
fn policy_quota_exceeded(existing: u64, to_create: u64, max: u64) -> ApiError {
    if to_create > max {
        // The connection alone needs more routes than a gateway may hold.
        return ApiError::bad_request(
            "CreatePbrRoutesQuotaFull.QuotaFull",
            "The number of policy routes exceeds the quota limit.",
        );
    }
    ApiError::bad_request(
        "QuotaExceeded.PolicyBasedRoute",
        format!(
            "The maximum number of policy-based routes is exceeded. Existing routes: {existing}. \
             Routes to be created: {to_create}. Maximum routes: {max}."
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Pure rules.

/// 0 or 100, else `VpnRouteEntry.InvalidWeight`.
pub fn check_weight(w: i64) -> ApiResult<u32> {
    match u32::try_from(w) {
        Ok(w) if WEIGHTS.contains(&w) => Ok(w),
        _ => Err(invalid_weight()),
    }
}

/// The active/standby rule for a route of weight `weight` joining a group whose other routes
/// (other next hops) have `others` weights: one active (100) and one standby (0) at most.
pub fn check_active_standby(others: &[u32], weight: u32) -> ApiResult<()> {
    if others.len() >= 2 {
        return Err(backup_route());
    }
    if others.contains(&weight) {
        return Err(conflict());
    }
    Ok(())
}

/// An IPv4 CIDR block in canonical form (no host bits).
pub fn parse_cidr(name: &str, v: &str) -> ApiResult<Ipv4Net> {
    let net: Ipv4Net =
        v.trim().parse().map_err(|_| ApiError::invalid_parameter(name, format!("{v:?} is not an IPv4 CIDR block")))?;
    if net.trunc() != net {
        return Err(ApiError::invalid_parameter(
            name,
            format!("{v:?} has host bits set (the block is {})", net.trunc()),
        ));
    }
    Ok(net)
}

/// A destination-based route's destination: not the default route, which is not supported.
pub fn check_destination(net: Ipv4Net) -> ApiResult<()> {
    if net.prefix_len() == 0 {
        return Err(ApiError::invalid_parameter("RouteDest", "destination routes to 0.0.0.0/0 are not supported"));
    }
    Ok(())
}

/// 1-100 characters, not starting with `http://` or `https://`.
pub fn check_route_description(d: &str) -> ApiResult<()> {
    let n = d.chars().count();
    if (1..=100).contains(&n) && !d.starts_with("http://") && !d.starts_with("https://") {
        Ok(())
    } else {
        Err(ApiError::bad_request("InvalidDescription", "The description is not valid"))
    }
}

/// The (source, destination) pairs a connection's traffic selectors imply, without repeats.
pub fn subnet_pairs(local: &[Ipv4Net], remote: &[Ipv4Net]) -> Vec<(Ipv4Net, Ipv4Net)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for l in local {
        for r in remote {
            let pair = (l.trunc(), r.trunc());
            if seen.insert(pair) {
                out.push(pair);
            }
        }
    }
    out
}

/// Where new routes go: one gateway of one account.
#[derive(Debug, Clone)]
pub struct Scope {
    pub account_id: i64,
    pub region_id: String,
    pub gateway_id: String,
}

impl Scope {
    pub fn of(gw: &VpnGateway) -> Self {
        Scope { account_id: gw.account_id, region_id: gw.region_id.clone(), gateway_id: gw.id.clone() }
    }
}

/// The policy-based routes AutoConfigRoute adds for connection `conn_id` with the given traffic
/// pairs, next to the gateway's `existing` ones: active (100), priority 10, published. A pair
/// already routed through this connection is kept as it is.
pub fn plan_connection_routes(
    scope: &Scope,
    existing: &[VpnPbrRouteEntry],
    conn_id: &str,
    pairs: &[(Ipv4Net, Ipv4Net)],
    max: u64,
    now: i64,
) -> ApiResult<Vec<VpnPbrRouteEntry>> {
    let mut planned = Vec::new();
    for (source, dest) in pairs {
        let kind = Policy { route_source: source.to_string(), priority: DEFAULT_PRIORITY };
        let route = Route {
            published: true,
            ..Route::new(scope, kind, Origin::Auto, dest.to_string(), conn_id.to_string(), now)
        };
        if existing.iter().any(|r| r.id == route.id) {
            continue;
        }
        check_group(existing, &route, route.weight)?;
        planned.push(route);
    }
    let (have, adding) = (existing.len() as u64, planned.len() as u64);
    if adding > 0 && have + adding > max {
        return Err(policy_quota_exceeded(have, adding, max));
    }
    Ok(planned)
}

// ---------------------------------------------------------------------------------------------
// Store helpers.

/// The next hop: a connection of this gateway that is not being deleted.
fn next_hop(tx: &dyn Tx, gw: &VpnGateway, id: &str) -> ApiResult<VpnConnection> {
    tx.get_as::<VpnConnection>(gw.account_id, id)?
        .filter(|c| c.vpn_gateway_id == gw.id && c.state != ConnectionState::Deleting)
        .ok_or_else(connection_not_found)
}

/// Applies `change` to gateway `gw_id` of the caller in `region`, which must be active, in one
/// write, and puts the gateway in `updating` until the reconciler has applied it.
async fn change_gateway(
    ctx: &Ctx,
    region: Region,
    gw_id: String,
    mut change: impl FnMut(&mut dyn Tx, &VpnGateway) -> ApiResult<Body> + Send + 'static,
) -> ApiResult<Body> {
    let (account_id, delay) = (ctx.account_id, ctx.app.config.transition_delay);
    ctx.write_once(move |tx| {
        let mut gw = vpn_gateways::find(tx, account_id, &region.id, &gw_id, 404)?;
        gw.ensure_active()?;
        let body = change(tx, &gw)?;
        vpn_gateways::begin_update(tx, &mut gw, delay)?;
        Ok(body)
    })
    .await
}

/// A gateway's routes of kind `K`.
/// The gateway's routes of kind `K`.
pub fn routes<K: RouteKind>(tx: &dyn Tx, account_id: i64, gw_id: &str) -> ApiResult<Vec<Route<K>>> {
    tx.list_as(&ListQuery { kind: K::KIND, account_id, parent_id: Some(gw_id.to_string()), ..Default::default() })
}

/// Deletes a gateway's routes of kind `K` that `doomed` picks.
fn delete_routes<K: RouteKind>(
    tx: &mut dyn Tx,
    account_id: i64,
    gw_id: &str,
    doomed: impl Fn(&Route<K>) -> bool,
) -> ApiResult<()> {
    for r in routes::<K>(tx, account_id, gw_id)? {
        if doomed(&r) {
            tx.delete(K::KIND, account_id, &r.id)?;
        }
    }
    Ok(())
}

/// The CIDR blocks a gateway has published into its VPC's route table.
fn published_dests(tx: &dyn Tx, account_id: i64, gw_id: &str) -> ApiResult<BTreeSet<String>> {
    let mut out: BTreeSet<String> = routes::<Destination>(tx, account_id, gw_id)?
        .into_iter()
        .filter(|r| r.published)
        .map(|r| r.route_dest)
        .collect();
    out.extend(routes::<Policy>(tx, account_id, gw_id)?.into_iter().filter(|r| r.published).map(|r| r.route_dest));
    Ok(out)
}

/// Whether `gw` may publish `dest` into its VPC's route table: no other VPN gateway of the VPC
/// publishes the same block, and the table's entries toward this gateway stay within `quota`.
fn check_vpc_publish(tx: &dyn Tx, gw: &VpnGateway, dest: &str, quota: u64) -> ApiResult<()> {
    let neighbours: Vec<VpnGateway> = tx.list_as(&ListQuery {
        kind: VpnGateway::KIND,
        account_id: gw.account_id,
        region_id: Some(gw.region_id.clone()),
        parent_id: Some(gw.vpc_id.clone()),
        ..Default::default()
    })?;
    for other in neighbours.iter().filter(|o| o.id != gw.id) {
        if published_dests(tx, gw.account_id, &other.id)?.contains(dest) {
            return Err(vpc_route_conflict());
        }
    }
    let mine = published_dests(tx, gw.account_id, &gw.id)?;
    if !mine.contains(dest) && mine.len() as u64 >= quota {
        return Err(vpc_route_quota());
    }
    Ok(())
}

mod actions;
mod connections;
#[cfg(test)]
mod tests;

pub use actions::*;
pub use connections::*;
