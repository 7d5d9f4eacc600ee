//! The API's actions, one function each, grouped by resource family. An action decodes its
//! parameters with `Params`' typed getters (which carry the wire names and the documented
//! errors), applies the family's rules in one store transaction, and returns its answer's fields.
//! Adding an action = one function + one line in the table below, under its dialect and version,
//! with the seed that documents it.
//!
//! Two dialects reach the same families: Alibaba's RPC API (`2016-04-28`) and Tencent's legacy
//! API 2.0 (`v2`). A family that both reach splits each action in three (see `vpn_connections`):
//! a typed input that each dialect decodes from its own parameters, one operation returning a
//! typed output or the family's error enum, and a renderer per dialect (its answer's fields, its
//! codes for each of the family's errors, mapped in one place).

pub mod certificates;
pub mod customer_gateways;
pub mod gateway_hosts;
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

/// The version of Alibaba's VPC API this server speaks.
pub const ALIBABA_VERSION: &str = "2016-04-28";

/// The API an action belongs to: how its requests are signed, named and answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Alibaba,
    Tencent,
}

macro_rules! actions {
    (
        Alibaba $alibaba:expr, { $($a:literal => $arun:path, $aseed:literal),* $(,)? }
        Tencent $tencent:expr, { $($t:literal => $trun:path, $tseed:literal),* $(,)? }
    ) => {
        /// Every action this server answers: dialect, version, action.
        pub const ALL: &[(Dialect, &str, &str)] =
            &[$((Dialect::Alibaba, $alibaba, $a),)* $((Dialect::Tencent, $tencent, $t),)*];
        /// Every action with the seed document (and its lines) that documents it: the coverage
        /// table the control API serves.
        pub const COVERAGE: &[(Dialect, &str, &str)] =
            &[$((Dialect::Alibaba, $a, $aseed),)* $((Dialect::Tencent, $t, $tseed),)*];

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
    Alibaba ALIBABA_VERSION, {
    "DescribeRegions" => regions::describe_regions, "none: the seeds only refer to it (004_0ebe6af7f32410f5.txt line 417); the common Alibaba Cloud action",
    "CreateVpnGateway" => vpn_gateways::create, "004_0ebe6af7f32410f5.txt lines 398-594",
    "ModifyVpnGatewayAttribute" => vpn_gateways::modify, "004_0ebe6af7f32410f5.txt lines 596-858",
    "DescribeVpnGateways" => vpn_gateways::describe_many, "004_0ebe6af7f32410f5.txt lines 861-1311",
    "DescribeVpnGateway" => vpn_gateways::describe_one, "004_0ebe6af7f32410f5.txt lines 1313-1704",
    "DeleteVpnGateway" => vpn_gateways::delete, "004_0ebe6af7f32410f5.txt line 106 (overview only)",
    "CreateCustomerGateway" => customer_gateways::create, "004_0ebe6af7f32410f5.txt lines 2665-2881",
    "ModifyCustomerGatewayAttribute" => customer_gateways::modify, "004_0ebe6af7f32410f5.txt lines 2883-3105",
    "DescribeCustomerGateways" => customer_gateways::describe_many, "004_0ebe6af7f32410f5.txt lines 3107-3277",
    "DescribeCustomerGateway" => customer_gateways::describe_one, "004_0ebe6af7f32410f5.txt lines 3279-3431",
    "DeleteCustomerGateway" => customer_gateways::delete, "004_0ebe6af7f32410f5.txt lines 3433-3548",
    "CreateVpnConnection" => vpn_connections::alibaba::create, "004_0ebe6af7f32410f5.txt lines 5310-5807 (section 7.1); 000_a8dfb6f03ef4b31c.txt (newest: dual-tunnel); 002_cb2d1d2936541a36.txt",
    "ModifyVpnConnectionAttribute" => vpn_connections::alibaba::modify, "004_0ebe6af7f32410f5.txt lines 5808-6513 (section 7.2)",
    "DescribeVpnConnections" => vpn_connections::alibaba::describe_many, "004_0ebe6af7f32410f5.txt lines 6514-6953 (section 7.3)",
    "DescribeVpnConnection" => vpn_connections::alibaba::describe_one, "004_0ebe6af7f32410f5.txt lines 6954-7364 (section 7.4); 003_a1089f79b9878aa4.txt",
    "DownloadVpnConnectionConfig" => vpn_connections::alibaba::download_config, "004_0ebe6af7f32410f5.txt lines 7365-7565 (section 7.5)",
    "DeleteVpnConnection" => vpn_connections::alibaba::delete, "004_0ebe6af7f32410f5.txt lines 7566-7694 (section 7.6)",
    "CreateVpnRouteEntry" => vpn_routes::create, "004_0ebe6af7f32410f5.txt lines 3549-3799 (section 6.1)",
    "CreateVpnPbrRouteEntry" => vpn_routes::create_pbr, "004_0ebe6af7f32410f5.txt lines 3800-4053 (section 6.2)",
    "PublishVpnRouteEntry" => vpn_routes::publish, "004_0ebe6af7f32410f5.txt lines 4054-4250 (section 6.3)",
    "DescribeVpnRouteEntries" => vpn_routes::describe_many, "004_0ebe6af7f32410f5.txt lines 4251-4449 (section 6.4)",
    "DescribeVpnPbrRouteEntries" => vpn_routes::describe_pbr, "004_0ebe6af7f32410f5.txt lines 4450-4628 (section 6.5)",
    "ModifyVpnRouteEntryWeight" => vpn_routes::modify_weight, "004_0ebe6af7f32410f5.txt lines 4629-4798 (section 6.6)",
    "ModifyVpnPbrRouteEntryWeight" => vpn_routes::modify_pbr_weight, "004_0ebe6af7f32410f5.txt lines 4799-4972 (section 6.7)",
    "DeleteVpnRouteEntry" => vpn_routes::delete, "004_0ebe6af7f32410f5.txt lines 4973-5132 (section 6.8)",
    "DeleteVpnPbrRouteEntry" => vpn_routes::delete_pbr, "004_0ebe6af7f32410f5.txt lines 5133-5307 (section 6.9)",
    "CreateSslVpnServer" => ssl_vpn::create, "004_0ebe6af7f32410f5.txt lines 7695-7968",
    "ModifySslVpnServer" => ssl_vpn::modify, "004_0ebe6af7f32410f5.txt lines 7969-8262",
    "DescribeSslVpnServers" => ssl_vpn::describe_many, "004_0ebe6af7f32410f5.txt lines 8264-8494",
    "DeleteSslVpnServer" => ssl_vpn::delete, "004_0ebe6af7f32410f5.txt lines 8496-8620",
    "CreateSslVpnClientCert" => ssl_vpn::certs::create, "004_0ebe6af7f32410f5.txt lines 8622-8776",
    "ModifySslVpnClientCert" => ssl_vpn::certs::modify, "004_0ebe6af7f32410f5.txt lines 8777-8917",
    "DescribeSslVpnClientCerts" => ssl_vpn::certs::describe_many, "004_0ebe6af7f32410f5.txt lines 8919-9119",
    "DescribeSslVpnClientCert" => ssl_vpn::certs::describe_one, "none: the seeds document only its list form (DescribeSslVpnClientCerts); the public API reference",
    "DeleteSslVpnClientCert" => ssl_vpn::certs::delete, "004_0ebe6af7f32410f5.txt lines 9368-9496",
    "DescribeVpnSslServerLogs" => ssl_vpn::logs::describe, "004_0ebe6af7f32410f5.txt lines 9121-9366",
    "CreateIpsecServer" => ipsec_server::create, "004_0ebe6af7f32410f5.txt lines 9498-9876",
    "UpdateIpsecServer" => ipsec_server::update, "004_0ebe6af7f32410f5.txt lines 10193-10483",
    "ListIpsecServers" => ipsec_server::list, "004_0ebe6af7f32410f5.txt lines 9878-10192",
    "DeleteIpsecServer" => ipsec_server::delete, "004_0ebe6af7f32410f5.txt lines 10485-10594",
    "AssociateVpnGatewayWithCertificate" => certificates::associate, "004_0ebe6af7f32410f5.txt lines 2145-2307",
    "DissociateVpnGatewayWithCertificate" => certificates::dissociate, "004_0ebe6af7f32410f5.txt lines 2309-2462",
    "ListVpnCertificateAssociations" => certificates::list, "004_0ebe6af7f32410f5.txt lines 2464-2664",
    "TagResources" => tags::tag_resources, "004_0ebe6af7f32410f5.txt lines 1706-1844",
    "ListTagResources" => tags::list_tag_resources, "004_0ebe6af7f32410f5.txt lines 1846-2046",
    "UnTagResources" => tags::untag_resources, "004_0ebe6af7f32410f5.txt lines 2048-2143",
    }
    Tencent tencent::VERSION, {
    "AddVpnConnEx" => vpn_connections::tencent::add_vpn_conn_ex, "001_151d47202a51cbfe.txt (the whole seed)",
    "DescribeVpcTaskResult" => vpc_tasks::describe_result, "none: 001_151d47202a51cbfe.txt line 54 refers to it (query a task's result by taskId)",
    }
}

pub fn exists(dialect: Dialect, version: &str, action: &str) -> bool {
    ALL.contains(&(dialect, version, action))
}

/// Whether some dialect has an action of this name.
pub fn named(action: &str) -> bool {
    ALL.iter().any(|(_, _, a)| *a == action)
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
