//! Persistence. `Store` is the one seam between the service and its database, with two engines
//! behind it: embedded SQLite (`sqlite`, the default: one node, one writer thread that commits
//! writes in groups) and PostgreSQL (`postgres`: several nodes on one database, each node's
//! writer committing its groups in SERIALIZABLE transactions). `open` picks one.
//!
//! Resources are stored as documents (`Record.body`, the domain type serialized as JSON) with the
//! few columns lists filter and sort on pulled out beside them. Domain code works on typed
//! resources through `Resource` and the typed helpers at the bottom of this file.
//!
//! Every multi-step change (check a quota, allocate an address, insert, queue a task, remember the
//! ClientToken) runs as one closure inside one transaction: `Store::write`. The closure may run
//! more than once: an engine whose transactions can collide (PostgreSQL) runs it again from a
//! clean transaction when the database says the two could not both be serialized, so a check and
//! the change it guards stay atomic across nodes. A closure therefore does nothing but read and
//! write through its `Tx`.

#[cfg(test)]
mod conformance;
pub mod postgres;
mod sql;
pub mod sqlite;

use std::collections::HashMap;
use std::future::Future;

use futures_util::future::BoxFuture;
use serde::{de::DeserializeOwned, Serialize};

use crate::api::error::{ApiError, ApiResult};

/// What can go wrong in the database itself, whatever the engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The transaction collided with a concurrent one (serialization failure, deadlock): running
    /// it again may succeed.
    #[error("conflict with a concurrent transaction: {0}")]
    Conflict(String),
    /// A unique constraint refused the change.
    #[error("unique violation: {0}")]
    Unique(String),
    /// The database cannot be reached (or is restarting).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database: {0}")]
    Internal(String),
}

impl StoreError {
    /// Worth running the transaction again: a conflict, or a unique violation that a concurrent
    /// insert caused after this transaction had looked (the re-run sees that row).
    pub fn retryable(&self) -> bool {
        matches!(self, StoreError::Conflict(_) | StoreError::Unique(_))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            // Both pass: the client's retry (which every SDK does on 503) will find it healthy.
            StoreError::Unavailable(_) | StoreError::Conflict(_) => ApiError::unavailable(),
            StoreError::Unique(_) | StoreError::Internal(_) => ApiError::internal(e),
        }
    }
}

/// Tags of resources: resource id → its (key, value) pairs, by key.
pub type TagMap = HashMap<String, Vec<(String, String)>>;

/// One page of a list (`Tx::page`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// Newest first.
    pub records: Vec<Record>,
    /// The records' tags, when asked for.
    pub tags: TagMap,
    /// How many records the query matches in all.
    pub total: u64,
}

/// A stored resource, kind-agnostic.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub kind: &'static str,
    pub account_id: i64,
    pub region_id: String,
    pub id: String,
    /// The resource this one hangs under (a gateway's VPC, a connection's gateway), if any.
    pub parent_id: Option<String>,
    /// A value unique among live resources of this kind in one account and region (a customer
    /// gateway's IP address), if the kind has one.
    pub unique_key: Option<String>,
    pub status: String,
    pub name: String,
    pub created_ms: i64,
    pub body: String,
    /// Keys lists can find the record by (`ListQuery::refers_to`), such as the other resources it
    /// uses. Written with the record; a record read back leaves them empty.
    pub refs: Vec<String>,
}

/// Which records a list wants. Empty/None fields match everything.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub kind: &'static str,
    pub account_id: i64,
    pub region_id: Option<String>,
    pub ids: Vec<String>,
    pub parent_id: Option<String>,
    pub unique_key: Option<String>,
    pub status: Option<String>,
    /// Records with any of these `refs` (empty: no such filter).
    pub refers_to: Vec<String>,
    /// Every (key, value) must be bound; a `None` value matches any value of the key.
    pub tags: Vec<(String, Option<String>)>,
    pub offset: u64,
    /// `None` = no limit.
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub created_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyRow {
    pub id: String,
    pub account_id: i64,
    pub account_name: String,
    /// Sealed with the master key (see `secret::MasterKey`).
    pub sealed_secret: String,
    pub enabled: bool,
    pub created_ms: i64,
}

/// One tag bound to one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagBinding {
    pub kind: String,
    pub resource_id: String,
    pub key: String,
    pub value: String,
}

/// A durable unit of background work: "move resource X of kind K through operation OP". A node
/// runs a step only while it holds the task's lease (`Tx::claim_tasks`); advancing or finishing
/// the task checks that the lease is still its own, so a step whose node was presumed dead and
/// taken over is rolled back rather than applied twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: i64,
    pub account_id: i64,
    pub kind: String,
    pub resource_id: String,
    pub op: String,
    /// How far the operation has come; the reconciler advances it.
    pub step: i64,
    pub due_ms: i64,
    /// Asked to complete now (`Tx::expedite_tasks`): its remaining steps take no time.
    pub expedited: bool,
    /// The node holding the lease this task was claimed with.
    pub node: String,
}

/// A gateway host: a node that runs the data plane of the gateways assigned to it, known by the
/// name it registered (`Tx::host_heartbeat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRow {
    pub name: String,
    /// The host id (`config::host_id`) of the node that last renewed it.
    pub node: String,
    pub heartbeat_ms: i64,
    /// When another node found its heartbeat stale and reported its gateways down.
    pub down_ms: Option<i64>,
}

/// What renewing a host's heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    Renewed,
    /// Renewed, but the host had been marked down meanwhile: what its gateways run must be
    /// reported again.
    Revived,
    /// Another node holds the name (its heartbeat is fresh).
    Taken,
}

/// What a heartbeat of `node` makes of the row it found: `held` is that row's node, heartbeat
/// and down mark.
pub(crate) fn heartbeat_outcome(
    held: Option<(String, i64, Option<i64>)>,
    node: &str,
    stale_before_ms: i64,
) -> Heartbeat {
    match held {
        Some((other, beat, _)) if other != node && beat >= stale_before_ms => Heartbeat::Taken,
        Some((_, _, Some(_))) => Heartbeat::Revived,
        _ => Heartbeat::Renewed,
    }
}

/// The reconciler's queue at one moment (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskStats {
    pub queued: u64,
    /// Of those, the ones due now.
    pub due: u64,
    /// When the longest-waiting due task fell due.
    pub oldest_due_ms: Option<i64>,
}

/// A resource dropped by `Tx::drop_resources`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub account_id: i64,
    pub kind: String,
    pub id: String,
}

/// What spending a nonce found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceSpend {
    Spent,
    /// Used by this key already.
    Replayed,
    /// The key is disabled, or unknown.
    KeyDisabled,
}

/// A replay-protection nonce to spend: key `access_key_id`'s `nonce`, kept until `expires_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nonce {
    pub access_key_id: String,
    pub nonce: String,
    pub expires_ms: i64,
}

/// A stored ClientToken answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentAnswer {
    pub params_hash: String,
    pub response: String,
}

/// What one transaction can do. Errors are `ApiError`s so that domain checks made inside a
/// transaction (quota full, already exists) abort it with the code the caller will see.
pub trait Tx {
    // Resources.
    fn get(&self, kind: &'static str, account_id: i64, id: &str) -> ApiResult<Option<Record>>;
    fn list(&self, q: &ListQuery) -> ApiResult<Vec<Record>>;
    fn count(&self, q: &ListQuery) -> ApiResult<u64>;
    fn insert(&mut self, rec: &Record) -> ApiResult<()>;
    fn update(&mut self, rec: &Record) -> ApiResult<()>;
    /// Deletes the record and every tag bound to it.
    fn delete(&mut self, kind: &'static str, account_id: i64, id: &str) -> ApiResult<()>;

    // Tags.
    fn tags_of(&self, kind: &str, account_id: i64, ids: &[String]) -> ApiResult<TagMap>;
    /// A page of `q` (its `offset` and `limit`) with the total it matches and, with `tags`, the
    /// page's tags: what every Describe… list reads. An engine may answer it in one round trip.
    fn page(&self, q: &ListQuery, tags: bool) -> ApiResult<Page> {
        let records = self.list(q)?;
        let tags = match tags {
            true => self.tags_of(q.kind, q.account_id, &records.iter().map(|r| r.id.clone()).collect::<Vec<_>>())?,
            false => TagMap::new(),
        };
        Ok(Page { records, tags, total: self.count(q)? })
    }
    fn set_tag(&mut self, b: &TagBinding, account_id: i64) -> ApiResult<()>;
    /// Removes the given keys (all keys when `keys` is None) from one resource.
    fn remove_tags(&mut self, kind: &str, account_id: i64, id: &str, keys: Option<&[String]>) -> ApiResult<()>;

    // Background tasks.
    /// Queues a task. One with a `host` (a gateway host's name) is claimed only by that host's
    /// node; one without (`""`) by any node.
    fn add_task(
        &mut self,
        account_id: i64,
        kind: &str,
        resource_id: &str,
        op: &str,
        due_ms: i64,
        host: &str,
    ) -> ApiResult<()>;
    /// Leases up to `limit` due tasks that no node holds (or whose lease ran out) to `node` until
    /// `lease_until_ms`: tasks without a host and those of `host`. Concurrent claims on several
    /// nodes never hand out one task twice.
    fn claim_tasks(
        &mut self,
        node: &str,
        host: &str,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u64,
    ) -> ApiResult<Vec<Task>>;
    /// When the next task `host` can claim (its due time, or its lease's end if later).
    fn next_due_ms(&self, host: &str) -> ApiResult<Option<i64>>;
    /// Hands the queued tasks of these resources to `host`.
    fn move_tasks(&mut self, resource_ids: &[String], host: &str) -> ApiResult<()>;
    /// Moves a claimed task to `step`, due at `due_ms`, and gives its lease back. Fails
    /// (`StoreError::Conflict`) when the lease is no longer `task.node`'s.
    fn advance_task(&mut self, task: &Task, step: i64, due_ms: i64) -> ApiResult<()>;
    /// Ends a claimed task; fails like `advance_task`.
    fn finish_task(&mut self, task: &Task) -> ApiResult<()>;
    /// Voids every lease (a lone node's start: whoever held them is gone).
    fn release_leases(&mut self) -> ApiResult<()>;
    /// Makes the tasks of one account (or all) due now, and every later step of theirs too;
    /// returns how many.
    fn expedite_tasks(&mut self, account_id: Option<i64>, now_ms: i64) -> ApiResult<u64>;
    fn task_stats(&self, now_ms: i64) -> ApiResult<TaskStats>;

    /// Drops every resource of one account (or of all) with its tags, refs, queued tasks and
    /// ClientToken answers; accounts, keys and address leases stay (the caller releases the
    /// leases of what went). Returns what went.
    fn drop_resources(&mut self, account_id: Option<i64>) -> ApiResult<Vec<Dropped>>;
    /// Live resources by kind and status (for metrics).
    fn resource_statuses(&self) -> ApiResult<Vec<(String, String, u64)>>;

    // ClientToken idempotency.
    fn idempotent_answer(&self, account_id: i64, action: &str, token: &str) -> ApiResult<Option<IdempotentAnswer>>;
    fn remember_answer(
        &mut self,
        account_id: i64,
        action: &str,
        token: &str,
        answer: &IdempotentAnswer,
        now_ms: i64,
    ) -> ApiResult<()>;

    /// Replay protection: spends `nonce` of key `access_key_id` until `expires_ms`, if that key is
    /// (still) enabled — so a key disabled on any node is refused by every node at once, even one
    /// that remembers the key's secret.
    fn spend_nonce(&mut self, access_key_id: &str, nonce: &str, expires_ms: i64) -> ApiResult<NonceSpend>;
    /// Drops nonces and ClientTokens whose time is up.
    fn purge_expired(&mut self, now_ms: i64, token_ttl_ms: i64) -> ApiResult<()>;

    // Gateway hosts.
    /// Renews host `name` for `node` at `now_ms`; a name whose heartbeat is older than
    /// `stale_before_ms` is taken over. Clears the host's down mark.
    fn host_heartbeat(&mut self, name: &str, node: &str, now_ms: i64, stale_before_ms: i64) -> ApiResult<Heartbeat>;
    fn hosts(&self) -> ApiResult<Vec<HostRow>>;
    /// Marks host `name` down at `now_ms` if its heartbeat is older than `stale_before_ms` and it
    /// is not marked yet; whether this call marked it (one node reports its gateways down).
    fn mark_host_down(&mut self, name: &str, stale_before_ms: i64, now_ms: i64) -> ApiResult<bool>;

    // Address pools: the lowest free index of `pool`, bound to `owner`.
    fn allocate_address(&mut self, pool: &str, size: u64, owner: &str) -> ApiResult<Option<u64>>;
    fn release_addresses(&mut self, owner: &str) -> ApiResult<()>;

    // Accounts and keys.
    fn create_account(&mut self, name: &str, now_ms: i64) -> ApiResult<Account>;
    fn account_by_name(&self, name: &str) -> ApiResult<Option<Account>>;
    fn accounts(&self) -> ApiResult<Vec<Account>>;
    fn insert_key(&mut self, key: &AccessKeyRow) -> ApiResult<()>;
    fn key(&self, id: &str) -> ApiResult<Option<AccessKeyRow>>;
    fn keys(&self) -> ApiResult<Vec<AccessKeyRow>>;
    fn set_key_enabled(&mut self, id: &str, enabled: bool) -> ApiResult<bool>;

    // Derived data: the kinds whose stored records a migration asks to rewrite (their `refs`
    // changed), handed out once.
    fn take_reindex(&mut self) -> ApiResult<Vec<String>>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Survives the loss of the process, not of the machine (no fsync): replay-protection nonces.
    Process,
    /// On disk before it is answered: everything a client created or changed.
    Disk,
}

/// A queued write. `run` may be called more than once (see the module doc), each time on a clean
/// transaction, and says whether to keep what it did; `done` is called once, with the outcome of
/// the commit that carried the kept run.
pub struct Write {
    pub durability: Durability,
    pub run: RunFn,
    pub done: Box<dyn FnOnce(ApiResult<()>) + Send>,
}

/// A write's body: runs on a transaction, says whether to keep what it did.
pub type RunFn = Box<dyn FnMut(&mut dyn Tx) -> bool + Send>;

/// The database. Reads see a consistent snapshot; a write is answered only once it committed
/// with its durability.
pub trait Store: Send + Sync + 'static {
    /// Runs `f` against a consistent snapshot.
    fn read_with(&self, f: &mut dyn FnMut(&dyn Tx)) -> ApiResult<()>;
    /// Queues a write. A `Durability::Process` write survives a crash of the process (kill -9)
    /// but not of the machine; a `Durability::Disk` write is on disk before it is answered.
    fn submit(&self, write: Write);
    /// Whether other nodes may share this database (their tasks and changes are then seen by
    /// polling, not by in-process wake-ups).
    fn shared(&self) -> bool;
    /// Which engine and where, for the start-up line (never a password).
    fn describe(&self) -> String;
    /// Spends a nonce as `Tx::spend_nonce` does, in a write of its own with
    /// `Durability::Process`. Every signed request spends one, so this is the hottest write
    /// there is: an engine may carry many at once more cheaply than as general writes.
    fn spend_nonce(&self, nonce: Nonce) -> BoxFuture<'static, ApiResult<NonceSpend>> {
        let (write, answer) = write_job(Durability::Process, move |tx| {
            tx.spend_nonce(&nonce.access_key_id, &nonce.nonce, nonce.expires_ms)
        });
        self.submit(write);
        Box::pin(answer)
    }
}

/// Opens the store a node is configured with: PostgreSQL at `database_url`, else the embedded
/// SQLite database in `data_dir`. `create` says whether a missing SQLite database may be made
/// (the server) or not (the admin commands, which refuse a directory without data).
pub fn open(
    database_url: Option<&str>,
    data_dir: &std::path::Path,
    create: bool,
) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    Ok(match database_url {
        Some(url) => std::sync::Arc::new(postgres::PgStore::open(url, create)?),
        None => {
            if !create && !data_dir.join(sqlite::DB_FILE).exists() {
                anyhow::bail!(
                    "{} holds no Gatehouse data (no {}): start `gatehouse serve --data-dir {0}` first",
                    data_dir.display(),
                    sqlite::DB_FILE
                );
            }
            std::sync::Arc::new(sqlite::SqliteStore::open(data_dir)?)
        }
    })
}

impl dyn Store {
    /// Runs `f` against a consistent snapshot. `f` may run more than once (an engine may run it
    /// again on a fresh connection).
    pub fn read<T>(&self, mut f: impl FnMut(&dyn Tx) -> ApiResult<T>) -> ApiResult<T> {
        let mut out = None;
        self.read_with(&mut |tx| out = Some(f(tx)))?;
        out.unwrap_or_else(|| Err(ApiError::internal("read did not run")))
    }

    /// Runs `f` as a durable write and waits until it has committed. An `Err` from `f` rolls
    /// back only what `f` did. `f` may run more than once (see the module doc).
    pub fn write<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut dyn Tx) -> ApiResult<T> + Send + 'static,
    ) -> impl Future<Output = ApiResult<T>> + Send + 'static {
        self.write_with(Durability::Disk, f)
    }

    pub fn write_with<T: Send + 'static>(
        &self,
        durability: Durability,
        f: impl FnMut(&mut dyn Tx) -> ApiResult<T> + Send + 'static,
    ) -> impl Future<Output = ApiResult<T>> + Send + 'static {
        let (write, answer) = write_job(durability, f);
        self.submit(write);
        answer
    }
}

/// How many queued writes one commit may carry.
const MAX_GROUP: usize = 512;

/// A writer thread's next group: waits for one queued item, then takes what else is queued, up
/// to `MAX_GROUP`. `None` once every sender is gone.
fn next_group<T>(queue: &std::sync::mpsc::Receiver<T>) -> Option<Vec<T>> {
    let mut group = vec![queue.recv().ok()?];
    group.extend(queue.try_iter().take(MAX_GROUP - 1));
    Some(group)
}

/// `f` as a `Write`, and the future of its answer.
fn write_job<T: Send + 'static>(
    durability: Durability,
    mut f: impl FnMut(&mut dyn Tx) -> ApiResult<T> + Send + 'static,
) -> (Write, impl Future<Output = ApiResult<T>> + Send + 'static) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    // The last run's result: the one whose transaction committed (or failed to).
    let result = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = result.clone();
    let write = Write {
        durability,
        run: Box::new(move |t: &mut dyn Tx| {
            let r = f(t);
            let keep = r.is_ok();
            *slot.lock().expect("write result") = Some(r);
            keep
        }),
        done: Box::new(move |committed| {
            let ran = result.lock().expect("write result").take();
            let ran = ran.unwrap_or_else(|| Err(ApiError::internal("the write did not run")));
            let _ = tx.send(committed.and(ran));
        }),
    };
    (write, async move { rx.await.map_err(|_| ApiError::internal("the writer stopped before answering"))? })
}

/// A domain type kept as a `Record`.
pub trait Resource: Serialize + DeserializeOwned {
    const KIND: &'static str;
    fn id(&self) -> &str;
    fn account_id(&self) -> i64;
    fn region_id(&self) -> &str;
    fn parent_id(&self) -> Option<&str> {
        None
    }
    fn unique_key(&self) -> Option<String> {
        None
    }
    fn status(&self) -> &str {
        ""
    }
    fn name(&self) -> &str {
        ""
    }
    /// See `Record::refs`.
    fn refs(&self) -> Vec<String> {
        Vec::new()
    }
    fn created_ms(&self) -> i64;

    fn to_record(&self) -> Record {
        Record {
            kind: Self::KIND,
            account_id: self.account_id(),
            region_id: self.region_id().to_string(),
            id: self.id().to_string(),
            parent_id: self.parent_id().map(str::to_string),
            unique_key: self.unique_key(),
            status: self.status().to_string(),
            name: self.name().to_string(),
            created_ms: self.created_ms(),
            body: serde_json::to_string(self).expect("resources serialize"),
            refs: self.refs(),
        }
    }
    fn from_record(rec: &Record) -> ApiResult<Self> {
        serde_json::from_str(&rec.body).map_err(|e| ApiError::internal(format!("corrupt {} {}: {e}", rec.kind, rec.id)))
    }
}

/// Implements `Resource` for a struct with `id`, `account_id`, `region_id` and `created_ms`
/// fields: `resource!(Type, "Kind", { other methods })` states only what differs; a generic type
/// reads `resource!(<K: Bound> Type<K>, K::KIND, { ... })`.
#[macro_export]
macro_rules! resource {
    (@impl [$($generics:tt)*] $ty:ty, $kind:expr, { $($methods:tt)* }) => {
        impl<$($generics)*> $crate::store::Resource for $ty {
            const KIND: &'static str = $kind;
            fn id(&self) -> &str {
                &self.id
            }
            fn account_id(&self) -> i64 {
                self.account_id
            }
            fn region_id(&self) -> &str {
                &self.region_id
            }
            fn created_ms(&self) -> i64 {
                self.created_ms
            }
            $($methods)*
        }
    };
    (<$g:ident: $bound:path> $ty:ty, $kind:expr, { $($methods:tt)* }) => {
        $crate::resource!(@impl [$g: $bound] $ty, $kind, { $($methods)* });
    };
    ($ty:ty, $kind:expr, { $($methods:tt)* }) => {
        $crate::resource!(@impl [] $ty, $kind, { $($methods)* });
    };
}

/// Typed access on top of `Tx`.
pub trait TxExt: Tx {
    fn get_as<R: Resource>(&self, account_id: i64, id: &str) -> ApiResult<Option<R>> {
        self.get(R::KIND, account_id, id)?.map(|r| R::from_record(&r)).transpose()
    }
    /// The caller's resource `id`, if it lives in `region` (resources are not shared across regions).
    fn get_in<R: Resource>(&self, account_id: i64, region: &str, id: &str) -> ApiResult<Option<R>> {
        Ok(self.get_as::<R>(account_id, id)?.filter(|r| r.region_id() == region))
    }
    fn list_as<R: Resource>(&self, q: &ListQuery) -> ApiResult<Vec<R>> {
        self.list(q)?.iter().map(R::from_record).collect()
    }
    /// `Tx::page`, typed: the page's resources, their tags (with `tags`) and the total.
    fn page_as<R: Resource>(&self, q: &ListQuery, tags: bool) -> ApiResult<(Vec<R>, TagMap, u64)> {
        let page = self.page(q, tags)?;
        let items = page.records.iter().map(R::from_record).collect::<ApiResult<_>>()?;
        Ok((items, page.tags, page.total))
    }
    /// The account's resources of kind `R` that hang under `parent_id`.
    fn children_as<R: Resource>(&self, account_id: i64, parent_id: &str) -> ApiResult<Vec<R>> {
        self.list_as(&ListQuery {
            kind: R::KIND,
            account_id,
            parent_id: Some(parent_id.to_string()),
            ..Default::default()
        })
    }
    fn insert_as<R: Resource>(&mut self, r: &R) -> ApiResult<()> {
        self.insert(&r.to_record())
    }
    fn update_as<R: Resource>(&mut self, r: &R) -> ApiResult<()> {
        self.update(&r.to_record())
    }
}

impl<T: Tx + ?Sized> TxExt for T {}

/// An advance or finish that found its task no longer leased to its node.
fn lease_held(rows: usize, task: &Task) -> ApiResult<()> {
    if rows == 1 {
        return Ok(());
    }
    Err(StoreError::Conflict(format!(
        "task {} ({} {}) is no longer leased to {}",
        task.id, task.op, task.resource_id, task.node
    ))
    .into())
}

pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}
