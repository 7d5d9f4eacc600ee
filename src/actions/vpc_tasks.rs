//! Tasks: the handle Tencent's dialect gives for a change a gateway applies in the background
//! (`taskId` of AddVpnConnEx), and DescribeVpcTaskResult, which reports how it went.
//!
//! A task is recorded with the change, numbered per account from 1 (so one account's numbers say
//! nothing about another's), and remembers the gateway generation the change produced. Its
//! status is read, not stored: running while the gateway is still `updating` at that generation;
//! then failed if the data plane could not run the connection as configured, else succeeded.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::vpn_connections::VpnConnection;
use super::vpn_gateways::{GatewayStatus, VpnGateway};
use crate::api::error::{ApiError, ApiResult};
use crate::api::tencent::{self, Common, TencentError};
use crate::app::{Body, Ctx};
use crate::store::{now_ms, ListQuery, Resource, Tx, TxExt};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VpcTask {
    /// The task's number, as text.
    pub id: String,
    pub account_id: i64,
    pub region_id: String,
    pub vpn_gateway_id: String,
    /// The gateway's generation once the change was recorded.
    pub generation: u64,
    /// What the change was about (a connection).
    pub resource_id: String,
    pub created_ms: i64,
}

crate::resource!(VpcTask, "VpcTask", {
    fn parent_id(&self) -> Option<&str> {
        Some(&self.vpn_gateway_id)
    }
});

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Succeeded,
    Failed,
    Running,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TaskError {
    NotFound,
    Rule(ApiError),
}

impl From<ApiError> for TaskError {
    fn from(e: ApiError) -> Self {
        TaskError::Rule(e)
    }
}

/// Records the change `gw` has just begun (after `vpn_gateways::begin_update`) for `resource_id`;
/// returns the task's number.
pub fn record(tx: &mut dyn Tx, gw: &VpnGateway, resource_id: &str) -> ApiResult<u64> {
    let count = ListQuery { kind: VpcTask::KIND, account_id: gw.account_id, ..Default::default() };
    let number = tx.count(&count)? + 1;
    tx.insert_as(&VpcTask {
        id: number.to_string(),
        account_id: gw.account_id,
        region_id: gw.region_id.clone(),
        vpn_gateway_id: gw.id.clone(),
        generation: gw.generation,
        resource_id: resource_id.to_string(),
        created_ms: now_ms(),
    })?;
    Ok(number)
}

/// How the caller's task `number` in `region` stands.
pub fn status(tx: &dyn Tx, account_id: i64, region: &str, number: u64) -> Result<TaskStatus, TaskError> {
    let task = tx.get_in::<VpcTask>(account_id, region, &number.to_string())?.ok_or(TaskError::NotFound)?;
    let gw = tx.get_as::<VpnGateway>(account_id, &task.vpn_gateway_id)?;
    if gw.is_some_and(|g| g.status == GatewayStatus::Updating && g.generation == task.generation) {
        return Ok(TaskStatus::Running);
    }
    let conn = tx.get_as::<VpnConnection>(account_id, &task.resource_id)?;
    Ok(if conn.is_some_and(|c| !c.dataplane_error.is_empty()) { TaskStatus::Failed } else { TaskStatus::Succeeded })
}

// ---------------------------------------------------------------------------------------------
// Tencent's dialect: DescribeVpcTaskResult.

/// `taskId` → `data.status`: 0 succeeded, 1 failed, 2 running.
pub async fn describe_result(ctx: Ctx) -> Result<Body, TencentError> {
    let region = tencent::region(&ctx)?;
    let raw = ctx.params.str("taskId").ok_or_else(|| TencentError::missing_parameter("taskId"))?;
    let number = raw
        .trim()
        .parse::<u64>()
        .map_err(|_| TencentError::invalid_parameter("taskId", format!("{raw:?} is not a task number")))?;
    let status =
        ctx.store().read(|tx| Ok(status(tx, ctx.account_id, &region.id, number))).map_err(TencentError::from)?;
    let code = match status {
        Ok(TaskStatus::Succeeded) => 0,
        Ok(TaskStatus::Failed) => 1,
        Ok(TaskStatus::Running) => 2,
        Err(TaskError::NotFound) => {
            return Err(TencentError::new(
                Common::ResourceNotFound,
                "InvalidTaskId.NotFound",
                format!("The task {number} does not exist."),
            ))
        }
        Err(TaskError::Rule(e)) => return Err(e.into()),
    };
    let mut data = Body::new();
    data.insert("status".into(), json!(code));
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::test_support::{connection, spec, world};
    use crate::store::Store;
    use std::sync::Arc;

    async fn set_gateway(store: &Arc<dyn Store>, gw: &VpnGateway) {
        let gw = gw.clone();
        store.write(move |tx| tx.update_as(&gw)).await.unwrap();
    }

    #[tokio::test]
    async fn numbered_per_account_running_then_succeeded_or_failed() {
        let (store, mut gw, dir) = world().await;
        let conn = connection("vco-a", spec("cgw-1", None, None), "10.0.0.0/16", "192.168.0.0/24");
        let stored = conn.clone();
        store.write(move |tx| tx.insert_as(&stored)).await.unwrap();
        gw.status = GatewayStatus::Updating;
        gw.generation += 1;
        set_gateway(&store, &gw).await;
        let (g, id) = (gw.clone(), conn.id.clone());
        let first = store.write(move |tx| record(tx, &g, &id)).await.unwrap();
        let (g, id) = (gw.clone(), conn.id.clone());
        let second = store.write(move |tx| record(tx, &g, &id)).await.unwrap();
        assert_eq!((first, second), (1, 2));
        let other_account = VpnGateway { account_id: gw.account_id + 1, ..gw.clone() };
        assert_eq!(store.write(move |tx| record(tx, &other_account, "vco-x")).await.unwrap(), 1);

        let read = |n: u64, account: i64| store.read(|tx| Ok(status(tx, account, &gw.region_id, n))).unwrap();
        assert_eq!(read(first, gw.account_id), Ok(TaskStatus::Running));
        assert_eq!(read(3, gw.account_id), Err(TaskError::NotFound));
        assert_eq!(read(2, gw.account_id + 2), Err(TaskError::NotFound));
        let elsewhere = store.read(|tx| Ok(status(tx, gw.account_id, "cn-beijing", first))).unwrap();
        assert_eq!(elsewhere, Err(TaskError::NotFound));

        gw.status = GatewayStatus::Active;
        set_gateway(&store, &gw).await;
        assert_eq!(read(first, gw.account_id), Ok(TaskStatus::Succeeded));
        let failed = VpnConnection { dataplane_error: "charon said no".into(), ..conn.clone() };
        store.write(move |tx| tx.update_as(&failed)).await.unwrap();
        assert_eq!(read(first, gw.account_id), Ok(TaskStatus::Failed));
        // A later change of the same gateway is not this task.
        gw.status = GatewayStatus::Updating;
        gw.generation += 1;
        set_gateway(&store, &gw).await;
        assert_eq!(read(first, gw.account_id), Ok(TaskStatus::Failed));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
