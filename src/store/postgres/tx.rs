//! `Tx` on one PostgreSQL connection inside an open transaction. Statements are prepared once
//! per connection. The first database error is kept (`take_fault`): after it the transaction is
//! aborted, and the engine decides whether to run the write again.

use std::cell::{Cell, RefCell, RefMut};

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::super::sql::{self, Arg, Dialect, RECORD_COLUMNS};
use super::super::*;
use super::conn::{Conn, Params};

pub(super) struct PgTx<'c> {
    conn: RefCell<&'c mut Conn>,
    fault: RefCell<Option<StoreError>>,
    /// Whether the transaction plans generically (see `page`) until this is put back.
    generic: Cell<bool>,
}

/// Puts back what `page` set, before any later statement of the transaction.
const CUSTOM_PLANS: &str = "SET LOCAL plan_cache_mode TO DEFAULT";

impl<'c> PgTx<'c> {
    pub fn new(conn: &'c mut Conn) -> Self {
        PgTx { conn: RefCell::new(conn), fault: RefCell::new(None), generic: Cell::new(false) }
    }

    pub fn take_fault(&self) -> Option<StoreError> {
        self.fault.borrow_mut().take()
    }

    /// Ends a read's use of the transaction, which ends next: what `page` set goes with it.
    pub fn end_read(self) -> Option<StoreError> {
        self.generic.set(false);
        self.take_fault()
    }

    /// The connection, for the next statement.
    fn conn(&self) -> RefMut<'_, &'c mut Conn> {
        let mut conn = self.conn.borrow_mut();
        if self.generic.replace(false) {
            conn.queue(CUSTOM_PLANS);
        }
        conn
    }

    fn fail(&self, e: StoreError) -> ApiError {
        self.fault.borrow_mut().get_or_insert(e.clone());
        e.into()
    }

    fn query(&self, sql: &str, params: Params) -> ApiResult<Vec<Row>> {
        self.conn().query(sql, params).map_err(|e| self.fail(e))
    }

    fn execute(&self, sql: &str, params: Params) -> ApiResult<u64> {
        self.conn().execute(sql, params).map_err(|e| self.fail(e))
    }

    fn query_opt(&self, sql: &str, params: Params) -> ApiResult<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    fn query_one(&self, sql: &str, params: Params) -> ApiResult<Row> {
        self.query_opt(sql, params)?.ok_or_else(|| ApiError::internal(format!("no row from {sql}")))
    }

    /// Runs statements built at run time (`sql::Sql`), in one round trip.
    fn query_built(&self, built: &[sql::Sql]) -> ApiResult<Vec<Vec<Row>>> {
        let args: Vec<Vec<Box<dyn ToSql + Sync>>> = built
            .iter()
            .map(|b| {
                b.args
                    .iter()
                    .map(|a| -> Box<dyn ToSql + Sync> {
                        match a {
                            Arg::Int(i) => Box::new(*i),
                            Arg::Text(t) => Box::new(t.clone()),
                        }
                    })
                    .collect()
            })
            .collect();
        let refs: Vec<Vec<&(dyn ToSql + Sync)>> = args.iter().map(|a| a.iter().map(|a| &**a).collect()).collect();
        let statements: Vec<(&str, Params)> = built.iter().zip(&refs).map(|(b, r)| (b.text.as_str(), &r[..])).collect();
        self.conn().query_all(&statements).map_err(|e| self.fail(e))
    }

    /// Makes the record's stored refs exactly `rec.refs` (most updates leave them as they were:
    /// then nothing is written).
    fn set_refs(&self, rec: &Record) -> ApiResult<()> {
        let mut wanted: Vec<&String> = rec.refs.iter().collect();
        wanted.sort();
        wanted.dedup();
        let stored = self.query(
            "SELECT ref FROM resource_refs WHERE account_id = $1 AND kind = $2 AND id = $3 ORDER BY ref",
            &[&rec.account_id, &rec.kind, &rec.id],
        )?;
        if stored.iter().map(|r| r.get::<_, String>(0)).eq(wanted.iter().map(|s| s.to_string())) {
            return Ok(());
        }
        self.clear_refs(rec.kind, rec.account_id, &rec.id)?;
        self.add_refs(rec)
    }

    /// Stores `rec.refs` (a new record has none yet), in one statement.
    fn add_refs(&self, rec: &Record) -> ApiResult<()> {
        if rec.refs.is_empty() {
            return Ok(());
        }
        self.execute(
            "INSERT INTO resource_refs (account_id, kind, ref, id) SELECT $1, $2, unnest($3::text[]), $4
             ON CONFLICT DO NOTHING",
            &[&rec.account_id, &rec.kind, &rec.refs, &rec.id],
        )
        .map(drop)
    }

    fn clear_refs(&self, kind: &str, account_id: i64, id: &str) -> ApiResult<()> {
        self.execute(
            "DELETE FROM resource_refs WHERE account_id = $1 AND kind = $2 AND id = $3",
            &[&account_id, &kind, &id],
        )
        .map(drop)
    }

    fn adjust_count(&self, account_id: i64, kind: &str, region_id: &str, by: i64) -> ApiResult<()> {
        self.execute(
            "INSERT INTO resource_counts (account_id, kind, region_id, n) VALUES ($1, $2, $3, $4)
             ON CONFLICT (account_id, kind, region_id) DO UPDATE SET n = resource_counts.n + EXCLUDED.n",
            &[&account_id, &kind, &region_id, &by],
        )
        .map(drop)
    }
}

impl Drop for PgTx<'_> {
    /// A write's transaction goes on with the group's next write.
    fn drop(&mut self) {
        if self.generic.get() {
            self.conn.get_mut().queue(CUSTOM_PLANS);
        }
    }
}

fn record_from_row(kind: &'static str, row: &Row) -> Record {
    Record {
        kind,
        account_id: row.get(1),
        region_id: row.get(2),
        id: row.get(3),
        parent_id: row.get(4),
        unique_key: row.get(5),
        status: row.get(6),
        name: row.get(7),
        created_ms: row.get(8),
        body: row.get(9),
        refs: Vec::new(),
    }
}

fn task_from_row(r: &Row) -> Task {
    Task {
        id: r.get(0),
        account_id: r.get(1),
        kind: r.get(2),
        resource_id: r.get(3),
        op: r.get(4),
        step: r.get(5),
        due_ms: r.get(6),
        expedited: r.get(7),
        node: r.get(8),
    }
}

fn account_from_row(r: &Row) -> Account {
    Account { id: r.get(0), name: r.get(1), created_ms: r.get(2) }
}

fn key_from_row(r: &Row) -> AccessKeyRow {
    AccessKeyRow {
        id: r.get(0),
        account_id: r.get(1),
        account_name: r.get(2),
        sealed_secret: r.get(3),
        enabled: r.get(4),
        created_ms: r.get(5),
    }
}

const KEY_SELECT: &str = "SELECT k.id, k.account_id, a.name, k.sealed_secret, k.enabled, k.created_ms
     FROM access_keys k JOIN accounts a ON a.id = k.account_id";

impl Tx for PgTx<'_> {
    fn get(&self, kind: &'static str, account_id: i64, id: &str) -> ApiResult<Option<Record>> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM resources WHERE kind = $1 AND account_id = $2 AND id = $3");
        Ok(self.query_opt(&sql, &[&kind, &account_id, &id])?.map(|r| record_from_row(kind, &r)))
    }

    fn list(&self, q: &ListQuery) -> ApiResult<Vec<Record>> {
        let rows = self.query_built(&[sql::list_query(Dialect::Postgres, q, false, false)])?.remove(0);
        Ok(rows.iter().map(|r| record_from_row(q.kind, r)).collect())
    }

    fn count(&self, q: &ListQuery) -> ApiResult<u64> {
        let rows = self.query_built(&[sql::count_query(Dialect::Postgres, q)])?.remove(0);
        Ok(rows.first().map(|r| r.get::<_, i64>(0)).unwrap_or(0).max(0) as u64)
    }

    /// The page, its total and its tags (as columns), in one statement.
    fn page(&self, q: &ListQuery, tags: bool) -> ApiResult<Page> {
        // An unfiltered page's best plan is the same for any values (the region's index walked
        // backwards for LIMIT rows): planned once per connection it spares every request the
        // planner, which PostgreSQL would otherwise run each time (its custom plans look cheaper).
        // Filtered pages keep custom plans: how selective a filter is depends on its value.
        let generic = sql::whole_region(q);
        if generic {
            self.conn().queue("SET LOCAL plan_cache_mode = force_generic_plan");
        }
        let rows = self.query_built(&[sql::list_query(Dialect::Postgres, q, true, tags)]).map(|mut r| r.remove(0));
        // Put back before the transaction's next statement, if it has one (`conn`); only after a
        // success: after a failure the transaction is aborted (the setting goes with it), and a
        // statement queued ahead of the ROLLBACK would fail and take the ROLLBACK along.
        self.generic.set(generic && rows.is_ok());
        let rows = rows?;
        let total = match rows.first() {
            Some(row) => row.get::<_, i64>(10).max(0) as u64,
            // A page past the end (or of nothing) carries no total.
            None => self.count(q)?,
        };
        let mut page =
            Page { records: rows.iter().map(|r| record_from_row(q.kind, r)).collect(), tags: TagMap::new(), total };
        if tags {
            for (rec, row) in page.records.iter().zip(&rows) {
                let pairs: Vec<(String, String)> =
                    serde_json::from_str(row.get::<_, &str>(11)).map_err(ApiError::internal)?;
                if !pairs.is_empty() {
                    page.tags.insert(rec.id.clone(), pairs);
                }
            }
        }
        Ok(page)
    }

    fn insert(&mut self, rec: &Record) -> ApiResult<()> {
        let sql = format!("INSERT INTO resources ({RECORD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
        self.execute(
            &sql,
            &[
                &rec.kind,
                &rec.account_id,
                &rec.region_id,
                &rec.id,
                &rec.parent_id,
                &rec.unique_key,
                &rec.status,
                &rec.name,
                &rec.created_ms,
                &rec.body,
            ],
        )?;
        self.add_refs(rec)?;
        self.adjust_count(rec.account_id, rec.kind, &rec.region_id, 1)
    }

    fn update(&mut self, rec: &Record) -> ApiResult<()> {
        let n = self.execute(
            "UPDATE resources SET parent_id = $4, unique_key = $5, status = $6, name = $7, body = $8
             WHERE kind = $1 AND account_id = $2 AND id = $3",
            &[&rec.kind, &rec.account_id, &rec.id, &rec.parent_id, &rec.unique_key, &rec.status, &rec.name, &rec.body],
        )?;
        if n == 0 {
            return Err(ApiError::internal(format!("update of missing {} {}", rec.kind, rec.id)));
        }
        self.set_refs(rec)
    }

    fn delete(&mut self, kind: &'static str, account_id: i64, id: &str) -> ApiResult<()> {
        let region = self.query_opt(
            "DELETE FROM resources WHERE kind = $1 AND account_id = $2 AND id = $3 RETURNING region_id",
            &[&kind, &account_id, &id],
        )?;
        if let Some(region) = region {
            self.adjust_count(account_id, kind, &region.get::<_, String>(0), -1)?;
        }
        self.clear_refs(kind, account_id, id)?;
        self.remove_tags(kind, account_id, id, None)
    }

    fn tags_of(&self, kind: &str, account_id: i64, ids: &[String]) -> ApiResult<TagMap> {
        let mut out = TagMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        for r in self.query_built(&[sql::tags_query(Dialect::Postgres, kind, account_id, ids)])?.remove(0) {
            out.entry(r.get(0)).or_default().push((r.get(1), r.get(2)));
        }
        Ok(out)
    }

    fn set_tag(&mut self, b: &TagBinding, account_id: i64) -> ApiResult<()> {
        self.execute(
            "INSERT INTO tags (account_id, kind, resource_id, key, value) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (account_id, kind, resource_id, key) DO UPDATE SET value = EXCLUDED.value",
            &[&account_id, &b.kind, &b.resource_id, &b.key, &b.value],
        )
        .map(drop)
    }

    fn remove_tags(&mut self, kind: &str, account_id: i64, id: &str, keys: Option<&[String]>) -> ApiResult<()> {
        match keys {
            None => self.execute(
                "DELETE FROM tags WHERE account_id = $1 AND kind = $2 AND resource_id = $3",
                &[&account_id, &kind, &id],
            )?,
            Some(keys) => self.execute(
                "DELETE FROM tags WHERE account_id = $1 AND kind = $2 AND resource_id = $3 AND key = ANY($4)",
                &[&account_id, &kind, &id, &keys],
            )?,
        };
        Ok(())
    }

    fn add_task(
        &mut self,
        account_id: i64,
        kind: &str,
        resource_id: &str,
        op: &str,
        due_ms: i64,
        host: &str,
    ) -> ApiResult<()> {
        self.execute(
            "INSERT INTO tasks (account_id, kind, resource_id, op, step, due_ms, host)
             VALUES ($1, $2, $3, $4, 0, $5, $6)",
            &[&account_id, &kind, &resource_id, &op, &due_ms, &host],
        )
        .map(drop)
    }

    fn claim_tasks(
        &mut self,
        node: &str,
        host: &str,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u64,
    ) -> ApiResult<Vec<Task>> {
        // SKIP LOCKED: a task another node is claiming right now is left to it.
        let rows = self.query(
            "UPDATE tasks SET lease_owner = $1, lease_until_ms = $3 WHERE id IN
               (SELECT id FROM tasks WHERE due_ms <= $2 AND (lease_until_ms IS NULL OR lease_until_ms < $2)
                  AND host IN ('', $5)
                ORDER BY due_ms, id LIMIT $4 FOR UPDATE SKIP LOCKED)
             RETURNING id, account_id, kind, resource_id, op, step, due_ms, expedited, lease_owner",
            &[&node, &now_ms, &lease_until_ms, &(limit.min(i64::MAX as u64) as i64), &host],
        )?;
        let mut tasks: Vec<Task> = rows.iter().map(task_from_row).collect();
        tasks.sort_by_key(|t| (t.due_ms, t.id));
        Ok(tasks)
    }

    fn next_due_ms(&self, host: &str) -> ApiResult<Option<i64>> {
        let sql = "SELECT MIN(GREATEST(due_ms, COALESCE(lease_until_ms, 0))) FROM tasks WHERE host IN ('', $1)";
        Ok(self.query_one(sql, &[&host])?.get(0))
    }

    fn move_tasks(&mut self, resource_ids: &[String], host: &str) -> ApiResult<()> {
        self.execute("UPDATE tasks SET host = $2 WHERE resource_id = ANY($1)", &[&resource_ids, &host]).map(drop)
    }

    fn advance_task(&mut self, task: &Task, step: i64, due_ms: i64) -> ApiResult<()> {
        let n = self.execute(
            "UPDATE tasks SET step = $3, due_ms = $4, lease_owner = NULL, lease_until_ms = NULL
             WHERE id = $1 AND lease_owner = $2",
            &[&task.id, &task.node, &step, &due_ms],
        )?;
        lease_held(n as usize, task)
    }

    fn finish_task(&mut self, task: &Task) -> ApiResult<()> {
        let n = self.execute("DELETE FROM tasks WHERE id = $1 AND lease_owner = $2", &[&task.id, &task.node])?;
        lease_held(n as usize, task)
    }

    fn host_heartbeat(&mut self, name: &str, node: &str, now_ms: i64, stale_before_ms: i64) -> ApiResult<Heartbeat> {
        let held = self
            .query("SELECT node, heartbeat_ms, down_ms FROM hosts WHERE name = $1 FOR UPDATE", &[&name])?
            .first()
            .map(|r| (r.get(0), r.get(1), r.get(2)));
        let outcome = heartbeat_outcome(held, node, stale_before_ms);
        if outcome != Heartbeat::Taken {
            self.execute(
                "INSERT INTO hosts (name, node, heartbeat_ms, down_ms) VALUES ($1, $2, $3, NULL)
                 ON CONFLICT (name) DO UPDATE SET node = $2, heartbeat_ms = $3, down_ms = NULL",
                &[&name, &node, &now_ms],
            )?;
        }
        Ok(outcome)
    }

    fn hosts(&self) -> ApiResult<Vec<HostRow>> {
        let rows = self.query("SELECT name, node, heartbeat_ms, down_ms FROM hosts ORDER BY name", &[])?;
        Ok(rows
            .iter()
            .map(|r| HostRow { name: r.get(0), node: r.get(1), heartbeat_ms: r.get(2), down_ms: r.get(3) })
            .collect())
    }

    fn mark_host_down(&mut self, name: &str, stale_before_ms: i64, now_ms: i64) -> ApiResult<bool> {
        let n = self.execute(
            "UPDATE hosts SET down_ms = $3 WHERE name = $1 AND heartbeat_ms < $2 AND down_ms IS NULL",
            &[&name, &stale_before_ms, &now_ms],
        )?;
        Ok(n == 1)
    }

    fn release_leases(&mut self) -> ApiResult<()> {
        self.execute("UPDATE tasks SET lease_owner = NULL, lease_until_ms = NULL WHERE lease_owner IS NOT NULL", &[])
            .map(drop)
    }

    fn expedite_tasks(&mut self, account_id: Option<i64>, now_ms: i64) -> ApiResult<u64> {
        self.execute(
            "UPDATE tasks SET expedited = TRUE, due_ms = LEAST(due_ms, $2)
             WHERE $1::BIGINT IS NULL OR account_id = $1",
            &[&account_id, &now_ms],
        )
    }

    fn task_stats(&self, now_ms: i64) -> ApiResult<TaskStats> {
        let r = self.query_one(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE due_ms <= $1), MIN(due_ms) FILTER (WHERE due_ms <= $1)
             FROM tasks",
            &[&now_ms],
        )?;
        Ok(TaskStats { queued: r.get::<_, i64>(0) as u64, due: r.get::<_, i64>(1) as u64, oldest_due_ms: r.get(2) })
    }

    fn drop_resources(&mut self, account_id: Option<i64>) -> ApiResult<Vec<Dropped>> {
        let filter = "WHERE $1::BIGINT IS NULL OR account_id = $1";
        let rows =
            self.query(&format!("DELETE FROM resources {filter} RETURNING account_id, kind, id"), &[&account_id])?;
        for table in ["tags", "resource_refs", "resource_counts", "tasks", "client_tokens"] {
            self.execute(&format!("DELETE FROM {table} {filter}"), &[&account_id])?;
        }
        Ok(rows.iter().map(|r| Dropped { account_id: r.get(0), kind: r.get(1), id: r.get(2) }).collect())
    }

    fn resource_statuses(&self) -> ApiResult<Vec<(String, String, u64)>> {
        let rows = self.query("SELECT kind, status, COUNT(*) FROM resources GROUP BY kind, status", &[])?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2) as u64)).collect())
    }

    fn idempotent_answer(&self, account_id: i64, action: &str, token: &str) -> ApiResult<Option<IdempotentAnswer>> {
        let row = self.query_opt(
            "SELECT params_hash, response FROM client_tokens WHERE account_id = $1 AND action = $2 AND token = $3",
            &[&account_id, &action, &token],
        )?;
        Ok(row.map(|r| IdempotentAnswer { params_hash: r.get(0), response: r.get(1) }))
    }

    fn remember_answer(
        &mut self,
        account_id: i64,
        action: &str,
        token: &str,
        a: &IdempotentAnswer,
        now_ms: i64,
    ) -> ApiResult<()> {
        self.execute(
            "INSERT INTO client_tokens (account_id, action, token, params_hash, response, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&account_id, &action, &token, &a.params_hash, &a.response, &now_ms],
        )
        .map(drop)
    }

    fn spend_nonce(&mut self, access_key_id: &str, nonce: &str, expires_ms: i64) -> ApiResult<NonceSpend> {
        let nonce = Nonce { access_key_id: access_key_id.into(), nonce: nonce.into(), expires_ms };
        let spent = super::nonces::spend(&mut self.conn(), &[&nonce]).map_err(|e| self.fail(e))?;
        Ok(spent[0])
    }

    fn purge_expired(&mut self, now_ms: i64, token_ttl_ms: i64) -> ApiResult<()> {
        self.execute("DELETE FROM nonces WHERE expires_ms < $1", &[&now_ms])?;
        self.execute("DELETE FROM client_tokens WHERE created_ms < $1", &[&(now_ms - token_ttl_ms)]).map(drop)
    }

    fn allocate_address(&mut self, pool: &str, size: u64, owner: &str) -> ApiResult<Option<u64>> {
        // Reuse the lowest released index, else take the pool's next never-used one.
        let freed = self.query_opt(
            "DELETE FROM address_free WHERE pool = $1 AND idx = (SELECT MIN(idx) FROM address_free WHERE pool = $1)
             RETURNING idx",
            &[&pool],
        )?;
        let idx: i64 = match freed {
            Some(r) => r.get(0),
            None => {
                let next: i64 = self
                    .query_one(
                        "INSERT INTO address_pools (pool, next_idx) VALUES ($1, 1)
                         ON CONFLICT (pool) DO UPDATE SET next_idx = address_pools.next_idx + 1 RETURNING next_idx",
                        &[&pool],
                    )?
                    .get(0);
                if next as u64 > size {
                    // Leave the mark where it was, so the pool stays exactly full.
                    self.execute("UPDATE address_pools SET next_idx = next_idx - 1 WHERE pool = $1", &[&pool])?;
                    return Ok(None);
                }
                next - 1
            }
        };
        self.execute("INSERT INTO address_leases (pool, idx, owner) VALUES ($1, $2, $3)", &[&pool, &idx, &owner])?;
        Ok(Some(idx as u64))
    }

    fn release_addresses(&mut self, owner: &str) -> ApiResult<()> {
        self.execute(
            "INSERT INTO address_free (pool, idx) SELECT pool, idx FROM address_leases WHERE owner = $1",
            &[&owner],
        )?;
        self.execute("DELETE FROM address_leases WHERE owner = $1", &[&owner]).map(drop)
    }

    fn create_account(&mut self, name: &str, now_ms: i64) -> ApiResult<Account> {
        let r = self.query_one(
            "INSERT INTO accounts (name, created_ms) VALUES ($1, $2) RETURNING id, name, created_ms",
            &[&name, &now_ms],
        )?;
        Ok(account_from_row(&r))
    }

    fn account_by_name(&self, name: &str) -> ApiResult<Option<Account>> {
        Ok(self
            .query_opt("SELECT id, name, created_ms FROM accounts WHERE name = $1", &[&name])?
            .map(|r| account_from_row(&r)))
    }

    fn accounts(&self) -> ApiResult<Vec<Account>> {
        Ok(self
            .query("SELECT id, name, created_ms FROM accounts ORDER BY id", &[])?
            .iter()
            .map(account_from_row)
            .collect())
    }

    fn insert_key(&mut self, k: &AccessKeyRow) -> ApiResult<()> {
        self.execute(
            "INSERT INTO access_keys (id, account_id, sealed_secret, enabled, created_ms) VALUES ($1, $2, $3, $4, $5)",
            &[&k.id, &k.account_id, &k.sealed_secret, &k.enabled, &k.created_ms],
        )
        .map(drop)
    }

    fn key(&self, id: &str) -> ApiResult<Option<AccessKeyRow>> {
        Ok(self.query_opt(&format!("{KEY_SELECT} WHERE k.id = $1"), &[&id])?.map(|r| key_from_row(&r)))
    }

    fn keys(&self) -> ApiResult<Vec<AccessKeyRow>> {
        Ok(self.query(&format!("{KEY_SELECT} ORDER BY k.created_ms, k.id"), &[])?.iter().map(key_from_row).collect())
    }

    fn set_key_enabled(&mut self, id: &str, enabled: bool) -> ApiResult<bool> {
        Ok(self.execute("UPDATE access_keys SET enabled = $2 WHERE id = $1", &[&id, &enabled])? == 1)
    }

    fn take_reindex(&mut self) -> ApiResult<Vec<String>> {
        Ok(self.query("DELETE FROM reindex RETURNING kind", &[])?.iter().map(|r| r.get(0)).collect())
    }
}
