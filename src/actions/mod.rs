//! The API's actions, one function each, grouped by resource family. An action decodes its
//! parameters with `Params`' typed getters (which carry the wire names and the documented
//! errors), applies the family's rules in one store transaction, and returns its answer's fields.
//! Adding an action = one function + one line in the table below, under its dialect and version.
//!
//! Two dialects reach the same families: Alibaba's RPC API (`2016-04-28`) and Tencent's legacy
//! API 2.0 (`v2`). A family that both reach splits each action in three (see `vpn_connections`):
//! a typed input that each dialect decodes from its own parameters, one operation returning a
//! typed output or the family's error enum, and a renderer per dialect (its answer's fields, its
//! codes for each of the family's errors, mapped in one place).

pub mod certificates;
pub mod customer_gateways;
pub mod gateway_sync;
pub mod ipsec;
pub mod ipsec_server;
pub mod regions;
pub mod rules;
pub mod ssl_vpn;
pub mod tags;
#[cfg(test)]
pub(crate) mod test_support;
pub mod vpc_tasks;
pub mod vpn_connections;
pub mod vpn_gateways;
pub mod vpn_routes;

use crate::api::error::{ApiError, ApiResult};
use crate::api::tencent::{self, TencentError};
use crate::app::{Body, Ctx};

/// The API an action belongs to: how its requests are signed, named and answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Alibaba,
    Tencent,
}

macro_rules! actions {
    (
        Alibaba $alibaba:literal { $($a:literal => $arun:path),* $(,)? }
        Tencent $tencent:expr, { $($t:literal => $trun:path),* $(,)? }
    ) => {
        /// Every action this server answers: dialect, version, action.
        pub const ALL: &[(Dialect, &str, &str)] =
            &[$((Dialect::Alibaba, $alibaba, $a),)* $((Dialect::Tencent, $tencent, $t),)*];

        /// Runs an action of the Alibaba dialect.
        pub async fn run(ctx: Ctx) -> ApiResult<Body> {
            match ctx.action.as_str() {
                $($a => $arun(ctx).await,)*
                other => Err(ApiError::not_found("InvalidAction.NotFound", format!("Specified api {other} is not found."))),
            }
        }

        /// Runs an action of the Tencent dialect.
        pub async fn run_tencent(ctx: Ctx) -> Result<Body, TencentError> {
            match ctx.action.as_str() {
                $($t => $trun(ctx).await,)*
                other => Err(TencentError::new(
                    tencent::Common::InvalidParameter,
                    "InvalidAction",
                    format!("The action {other} is not supported."),
                )),
            }
        }
    };
}

actions! {
    Alibaba "2016-04-28" {
    "DescribeRegions" => regions::describe_regions,
    "CreateVpnGateway" => vpn_gateways::create,
    "ModifyVpnGatewayAttribute" => vpn_gateways::modify,
    "DescribeVpnGateways" => vpn_gateways::describe_many,
    "DescribeVpnGateway" => vpn_gateways::describe_one,
    "DeleteVpnGateway" => vpn_gateways::delete,
    "CreateCustomerGateway" => customer_gateways::create,
    "ModifyCustomerGatewayAttribute" => customer_gateways::modify,
    "DescribeCustomerGateways" => customer_gateways::describe_many,
    "DescribeCustomerGateway" => customer_gateways::describe_one,
    "DeleteCustomerGateway" => customer_gateways::delete,
    "CreateVpnConnection" => vpn_connections::alibaba::create,
    "ModifyVpnConnectionAttribute" => vpn_connections::alibaba::modify,
    "DescribeVpnConnections" => vpn_connections::alibaba::describe_many,
    "DescribeVpnConnection" => vpn_connections::alibaba::describe_one,
    "DownloadVpnConnectionConfig" => vpn_connections::alibaba::download_config,
    "DeleteVpnConnection" => vpn_connections::alibaba::delete,
    "CreateVpnRouteEntry" => vpn_routes::create,
    "CreateVpnPbrRouteEntry" => vpn_routes::create_pbr,
    "PublishVpnRouteEntry" => vpn_routes::publish,
    "DescribeVpnRouteEntries" => vpn_routes::describe_many,
    "DescribeVpnPbrRouteEntries" => vpn_routes::describe_pbr,
    "ModifyVpnRouteEntryWeight" => vpn_routes::modify_weight,
    "ModifyVpnPbrRouteEntryWeight" => vpn_routes::modify_pbr_weight,
    "DeleteVpnRouteEntry" => vpn_routes::delete,
    "DeleteVpnPbrRouteEntry" => vpn_routes::delete_pbr,
    "CreateSslVpnServer" => ssl_vpn::create,
    "ModifySslVpnServer" => ssl_vpn::modify,
    "DescribeSslVpnServers" => ssl_vpn::describe_many,
    "DeleteSslVpnServer" => ssl_vpn::delete,
    "CreateSslVpnClientCert" => ssl_vpn::certs::create,
    "ModifySslVpnClientCert" => ssl_vpn::certs::modify,
    "DescribeSslVpnClientCerts" => ssl_vpn::certs::describe_many,
    "DescribeSslVpnClientCert" => ssl_vpn::certs::describe_one,
    "DeleteSslVpnClientCert" => ssl_vpn::certs::delete,
    "DescribeVpnSslServerLogs" => ssl_vpn::logs::describe,
    "CreateIpsecServer" => ipsec_server::create,
    "UpdateIpsecServer" => ipsec_server::update,
    "ListIpsecServers" => ipsec_server::list,
    "DeleteIpsecServer" => ipsec_server::delete,
    "AssociateVpnGatewayWithCertificate" => certificates::associate,
    "DissociateVpnGatewayWithCertificate" => certificates::dissociate,
    "ListVpnCertificateAssociations" => certificates::list,
    "TagResources" => tags::tag_resources,
    "ListTagResources" => tags::list_tag_resources,
    "UnTagResources" => tags::untag_resources,
    }
    Tencent tencent::VERSION, {
    "AddVpnConnEx" => vpn_connections::tencent::add_vpn_conn_ex,
    "DescribeVpcTaskResult" => vpc_tasks::describe_result,
    }
}

pub fn exists(dialect: Dialect, version: &str, action: &str) -> bool {
    ALL.contains(&(dialect, version, action))
}

/// Whether any action of `dialect` has `version`.
pub fn has_version(dialect: Dialect, version: &str) -> bool {
    ALL.iter().any(|(d, v, _)| *d == dialect && *v == version)
}

/// Rewrites the stored records of every kind a migration queued (`Tx::take_reindex`), so that
/// their derived data (`Resource::refs`) is current. One transaction: all or nothing.
pub async fn reindex(store: &dyn crate::store::Store) -> ApiResult<()> {
    use crate::store::Resource;
    store
        .write(|tx| {
            for kind in tx.take_reindex()? {
                match kind.as_str() {
                    vpn_connections::VpnConnection::KIND => rewrite::<vpn_connections::VpnConnection>(tx)?,
                    other => return Err(ApiError::internal(format!("no reindexing for kind {other}"))),
                }
            }
            Ok(())
        })
        .await
}

fn rewrite<R: crate::store::Resource>(tx: &mut dyn crate::store::Tx) -> ApiResult<()> {
    use crate::store::{ListQuery, TxExt};
    for account in tx.accounts()? {
        for r in tx.list_as::<R>(&ListQuery { kind: R::KIND, account_id: account.id, ..Default::default() })? {
            tx.update_as(&r)?;
        }
    }
    Ok(())
}
