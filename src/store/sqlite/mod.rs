//! The embedded store: SQLite in WAL mode with `synchronous=FULL`, so a write is on disk before
//! its request is answered. One writer thread owns the write connection and commits queued
//! writes in groups — each in its own savepoint — so many concurrent requests share one fsync.
//! Reads use a small pool of read-only connections and never wait for the writer.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::sql::{self, Arg, Dialect, RECORD_COLUMNS};
use super::*;

/// The database's file name in the data directory.
pub const DB_FILE: &str = "gatehouse.db";

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

mod migrations;

use migrations::MIGRATIONS;

pub struct SqliteStore {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    writes: Mutex<mpsc::Sender<Write>>,
}

/// The data directory (0700) and the database (0600) are the operator's alone, whatever the
/// umask: they hold names, addresses and topology. SQLite gives its `-wal` and `-shm` files the
/// database's mode; existing ones are tightened too.
fn private_files(data_dir: &Path, db: &Path) -> std::io::Result<()> {
    use std::fs::{set_permissions, OpenOptions, Permissions};
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    crate::config::private_data_dir(data_dir)?;
    OpenOptions::new().create(true).append(true).mode(0o600).open(db)?;
    for file in [db.to_path_buf(), db.with_extension("db-wal"), db.with_extension("db-shm")] {
        if file.exists() {
            set_permissions(&file, Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) `<data_dir>/gatehouse.db`, migrates it and starts the writer.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(DB_FILE);
        private_files(data_dir, &path)?;
        let mut conn = Connection::open(&path)?;
        // The writer never checkpoints (that would stall every queued request behind it); a
        // background thread copies the WAL back into the database instead.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;
             PRAGMA wal_autocheckpoint = 0;",
        )?;
        migrate(&mut conn)?;
        let (sender, receiver) = mpsc::channel::<Write>();
        std::thread::Builder::new().name("store-writer".into()).spawn(move || writer(conn, receiver))?;
        let checkpoints = Connection::open(&path)?;
        checkpoints.execute_batch("PRAGMA busy_timeout = 10000;")?;
        std::thread::Builder::new().name("store-checkpoint".into()).spawn(move || checkpointer(checkpoints))?;
        Ok(SqliteStore { path, readers: Mutex::new(Vec::new()), writes: Mutex::new(sender) })
    }

    fn reader(&self) -> ApiResult<Connection> {
        if let Some(c) = self.readers.lock().expect("reader pool").pop() {
            return Ok(c);
        }
        let c = Connection::open_with_flags(&self.path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(db_err)?;
        c.execute_batch("PRAGMA busy_timeout = 10000;").map_err(db_err)?;
        Ok(c)
    }
}

impl Store for SqliteStore {
    fn read_with(&self, f: &mut dyn FnMut(&dyn Tx)) -> ApiResult<()> {
        let conn = self.reader()?;
        {
            let tx = conn.unchecked_transaction().map_err(db_err)?;
            f(&SqliteTx { conn: &tx });
            tx.finish().map_err(db_err)?;
        }
        self.readers.lock().expect("reader pool").push(conn);
        Ok(())
    }

    fn submit(&self, write: Write) {
        // A send only fails once the writer has died; the dropped reply then reports it.
        let _ = self.writes.lock().expect("write queue").send(write);
    }

    fn shared(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        format!("sqlite {}", self.path.display())
    }
}

fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)",
    )?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let done: i64 = tx.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES (?1, ?2)",
            params![i as i64 + 1, now_ms()],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Copies committed WAL frames into the database file, without ever blocking the writer.
fn checkpointer(conn: Connection) {
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        // PASSIVE does what it can without waiting for readers or the writer.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "checkpoint failed");
        }
    }
}

/// The writer thread: take what is queued, run each in a savepoint, commit once, then answer all.
/// One writer means no write ever collides with another: each runs once.
fn writer(mut conn: Connection, queue: mpsc::Receiver<Write>) {
    let mut synced = true;
    while let Some(mut group) = next_group(&queue) {
        // fsync the commit only when something in the group needs it.
        let sync = group.iter().any(|w| w.durability == Durability::Disk);
        if sync != synced {
            let mode = if sync { "FULL" } else { "NORMAL" };
            if let Err(e) = conn.execute_batch(&format!("PRAGMA synchronous = {mode}")) {
                tracing::error!(error = %e, "setting synchronous mode failed");
            } else {
                synced = sync;
            }
        }
        let mut replies = Vec::with_capacity(group.len());
        let (size, started) = (group.len(), std::time::Instant::now());
        let outcome = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for mut w in group.drain(..) {
                tx.execute_batch("SAVEPOINT w")?;
                let ran = catch_unwind(AssertUnwindSafe(|| (w.run)(&mut SqliteTx { conn: &tx })));
                match ran {
                    Ok(true) => {
                        tx.execute_batch("RELEASE w")?;
                        replies.push(w.done);
                    }
                    Ok(false) => {
                        tx.execute_batch("ROLLBACK TO w; RELEASE w")?;
                        replies.push(w.done);
                    }
                    // A panicking write is dropped with its reply: its caller sees InternalError.
                    Err(_) => tx.execute_batch("ROLLBACK TO w; RELEASE w")?,
                }
            }
            tx.commit()
        })();
        crate::metrics::commit(size, started.elapsed());
        let outcome = outcome.map_err(db_err);
        for reply in replies {
            reply(outcome.clone());
        }
    }
}

fn db_err(e: rusqlite::Error) -> ApiError {
    // SQLITE_CONSTRAINT_UNIQUE and SQLITE_CONSTRAINT_PRIMARYKEY.
    let unique = matches!(&e, rusqlite::Error::SqliteFailure(f, _) if matches!(f.extended_code, 2067 | 1555));
    let busy = matches!(&e, rusqlite::Error::SqliteFailure(f, _)
        if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked));
    ApiError::from(match () {
        _ if unique => StoreError::Unique(e.to_string()),
        _ if busy => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Internal(e.to_string()),
    })
}

fn sql_args(args: Vec<Arg>) -> impl Iterator<Item = Value> {
    args.into_iter().map(|a| match a {
        Arg::Int(i) => Value::Integer(i),
        Arg::Text(t) => Value::Text(t),
    })
}

struct SqliteTx<'c> {
    conn: &'c Connection,
}

impl SqliteTx<'_> {
    /// Makes the record's stored refs exactly `rec.refs` (most updates leave them as they were:
    /// then nothing is written).
    fn set_refs(&self, rec: &Record) -> ApiResult<()> {
        let mut wanted: Vec<&String> = rec.refs.iter().collect();
        wanted.sort();
        wanted.dedup();
        let stored: Vec<String> = self
            .conn
            .prepare_cached(
                "SELECT ref FROM resource_refs WHERE account_id = ?1 AND kind = ?2 AND id = ?3 ORDER BY ref",
            )
            .and_then(|mut st| st.query_map(params![rec.account_id, rec.kind, rec.id], |r| r.get(0))?.collect())
            .map_err(db_err)?;
        if stored.iter().eq(wanted.iter().copied()) {
            return Ok(());
        }
        self.clear_refs(rec.kind, rec.account_id, &rec.id)?;
        let mut st = self
            .conn
            .prepare_cached("INSERT OR IGNORE INTO resource_refs (account_id, kind, ref, id) VALUES (?1, ?2, ?3, ?4)")
            .map_err(db_err)?;
        for r in &rec.refs {
            st.execute(params![rec.account_id, rec.kind, r, rec.id]).map_err(db_err)?;
        }
        Ok(())
    }

    fn clear_refs(&self, kind: &str, account_id: i64, id: &str) -> ApiResult<()> {
        self.conn
            .prepare_cached("DELETE FROM resource_refs WHERE account_id = ?1 AND kind = ?2 AND id = ?3")
            .and_then(|mut st| st.execute(params![account_id, kind, id]))
            .map(drop)
            .map_err(db_err)
    }

    fn adjust_count(&self, account_id: i64, kind: &str, region_id: &str, by: i64) -> ApiResult<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO resource_counts (account_id, kind, region_id, n) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (account_id, kind, region_id) DO UPDATE SET n = n + excluded.n",
            )
            .and_then(|mut st| st.execute(params![account_id, kind, region_id, by]))
            .map_err(db_err)?;
        Ok(())
    }
}

fn record_from_row(kind: &'static str, row: &Row) -> rusqlite::Result<Record> {
    Ok(Record {
        kind,
        account_id: row.get(1)?,
        region_id: row.get(2)?,
        id: row.get(3)?,
        parent_id: row.get(4)?,
        unique_key: row.get(5)?,
        status: row.get(6)?,
        name: row.get(7)?,
        created_ms: row.get(8)?,
        body: row.get(9)?,
        refs: Vec::new(),
    })
}

fn key_from_row(row: &Row) -> rusqlite::Result<AccessKeyRow> {
    Ok(AccessKeyRow {
        id: row.get(0)?,
        account_id: row.get(1)?,
        account_name: row.get(2)?,
        sealed_secret: row.get(3)?,
        enabled: row.get(4)?,
        created_ms: row.get(5)?,
    })
}

const KEY_SELECT: &str = "SELECT k.id, k.account_id, a.name, k.sealed_secret, k.enabled, k.created_ms
     FROM access_keys k JOIN accounts a ON a.id = k.account_id";

impl Tx for SqliteTx<'_> {
    fn get(&self, kind: &'static str, account_id: i64, id: &str) -> ApiResult<Option<Record>> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM resources WHERE kind = ?1 AND account_id = ?2 AND id = ?3"
            ))
            .map_err(db_err)?;
        st.query_row(params![kind, account_id, id], |row| record_from_row(kind, row)).optional().map_err(db_err)
    }

    fn list(&self, q: &ListQuery) -> ApiResult<Vec<Record>> {
        let sql = sql::list_query(Dialect::Sqlite, q, false, false);
        let mut st = self.conn.prepare_cached(&sql.text).map_err(db_err)?;
        let rows =
            st.query_map(params_from_iter(sql_args(sql.args)), |row| record_from_row(q.kind, row)).map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }

    fn count(&self, q: &ListQuery) -> ApiResult<u64> {
        let sql = sql::count_query(Dialect::Sqlite, q);
        let mut st = self.conn.prepare_cached(&sql.text).map_err(db_err)?;
        st.query_row(params_from_iter(sql_args(sql.args)), |r| r.get::<_, i64>(0)).map(|n| n as u64).map_err(db_err)
    }

    fn insert(&mut self, rec: &Record) -> ApiResult<()> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "INSERT INTO resources ({RECORD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ))
            .map_err(db_err)?;
        st.execute(params![
            rec.kind,
            rec.account_id,
            rec.region_id,
            rec.id,
            rec.parent_id,
            rec.unique_key,
            rec.status,
            rec.name,
            rec.created_ms,
            rec.body
        ])
        .map_err(db_err)?;
        self.set_refs(rec)?;
        self.adjust_count(rec.account_id, rec.kind, &rec.region_id, 1)
    }

    fn update(&mut self, rec: &Record) -> ApiResult<()> {
        let mut st = self
            .conn
            .prepare_cached(
                "UPDATE resources SET parent_id = ?4, unique_key = ?5, status = ?6, name = ?7, body = ?8
                 WHERE kind = ?1 AND account_id = ?2 AND id = ?3",
            )
            .map_err(db_err)?;
        let n = st
            .execute(params![
                rec.kind,
                rec.account_id,
                rec.id,
                rec.parent_id,
                rec.unique_key,
                rec.status,
                rec.name,
                rec.body
            ])
            .map_err(db_err)?;
        if n == 0 {
            return Err(ApiError::internal(format!("update of missing {} {}", rec.kind, rec.id)));
        }
        self.set_refs(rec)
    }

    fn delete(&mut self, kind: &'static str, account_id: i64, id: &str) -> ApiResult<()> {
        let region: Option<String> = self
            .conn
            .prepare_cached("DELETE FROM resources WHERE kind = ?1 AND account_id = ?2 AND id = ?3 RETURNING region_id")
            .and_then(|mut st| st.query_row(params![kind, account_id, id], |r| r.get(0)).optional())
            .map_err(db_err)?;
        if let Some(region) = region {
            self.adjust_count(account_id, kind, &region, -1)?;
        }
        self.clear_refs(kind, account_id, id)?;
        self.remove_tags(kind, account_id, id, None)
    }

    fn tags_of(&self, kind: &str, account_id: i64, ids: &[String]) -> ApiResult<TagMap> {
        let mut out = TagMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let sql = sql::tags_query(Dialect::Sqlite, kind, account_id, ids);
        let mut st = self.conn.prepare_cached(&sql.text).map_err(db_err)?;
        let rows = st
            .query_map(params_from_iter(sql_args(sql.args)), |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db_err)?;
        for row in rows {
            let (id, k, v) = row.map_err(db_err)?;
            out.entry(id).or_default().push((k, v));
        }
        Ok(out)
    }

    fn set_tag(&mut self, b: &TagBinding, account_id: i64) -> ApiResult<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO tags (account_id, kind, resource_id, key, value) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (account_id, kind, resource_id, key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut st| st.execute(params![account_id, b.kind, b.resource_id, b.key, b.value]))
            .map_err(db_err)?;
        Ok(())
    }

    fn remove_tags(&mut self, kind: &str, account_id: i64, id: &str, keys: Option<&[String]>) -> ApiResult<()> {
        match keys {
            None => self
                .conn
                .prepare_cached("DELETE FROM tags WHERE account_id = ?1 AND kind = ?2 AND resource_id = ?3")
                .and_then(|mut st| st.execute(params![account_id, kind, id])),
            Some(keys) => {
                let mut st = self
                    .conn
                    .prepare_cached(
                        "DELETE FROM tags WHERE account_id = ?1 AND kind = ?2 AND resource_id = ?3 AND key = ?4",
                    )
                    .map_err(db_err)?;
                for k in keys {
                    st.execute(params![account_id, kind, id, k]).map_err(db_err)?;
                }
                Ok(0)
            }
        }
        .map_err(db_err)?;
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
        self.conn
            .prepare_cached(
                "INSERT INTO tasks (account_id, kind, resource_id, op, step, due_ms, host)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6)",
            )
            .and_then(|mut st| st.execute(params![account_id, kind, resource_id, op, due_ms, host]))
            .map_err(db_err)?;
        Ok(())
    }

    fn claim_tasks(
        &mut self,
        node: &str,
        host: &str,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u64,
    ) -> ApiResult<Vec<Task>> {
        let mut st = self
            .conn
            .prepare_cached(
                "UPDATE tasks SET lease_owner = ?1, lease_until_ms = ?3 WHERE id IN
                   (SELECT id FROM tasks WHERE due_ms <= ?2 AND (lease_until_ms IS NULL OR lease_until_ms < ?2)
                      AND host IN ('', ?5)
                    ORDER BY due_ms, id LIMIT ?4)
                 RETURNING id, account_id, kind, resource_id, op, step, due_ms, expedited, lease_owner",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map(params![node, now_ms, lease_until_ms, limit as i64, host], |r| {
                Ok(Task {
                    id: r.get(0)?,
                    account_id: r.get(1)?,
                    kind: r.get(2)?,
                    resource_id: r.get(3)?,
                    op: r.get(4)?,
                    step: r.get(5)?,
                    due_ms: r.get(6)?,
                    expedited: r.get(7)?,
                    node: r.get(8)?,
                })
            })
            .map_err(db_err)?;
        let mut tasks = rows.collect::<Result<Vec<_>, _>>().map_err(db_err)?;
        tasks.sort_by_key(|t| (t.due_ms, t.id));
        Ok(tasks)
    }

    fn next_due_ms(&self, host: &str) -> ApiResult<Option<i64>> {
        self.conn
            .prepare_cached("SELECT MIN(MAX(due_ms, COALESCE(lease_until_ms, 0))) FROM tasks WHERE host IN ('', ?1)")
            .and_then(|mut st| st.query_row([host], |r| r.get(0)))
            .map_err(db_err)
    }

    fn move_tasks(&mut self, resource_ids: &[String], host: &str) -> ApiResult<()> {
        let mut st = self.conn.prepare_cached("UPDATE tasks SET host = ?2 WHERE resource_id = ?1").map_err(db_err)?;
        for id in resource_ids {
            st.execute(params![id, host]).map_err(db_err)?;
        }
        Ok(())
    }

    fn advance_task(&mut self, task: &Task, step: i64, due_ms: i64) -> ApiResult<()> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE tasks SET step = ?3, due_ms = ?4, lease_owner = NULL, lease_until_ms = NULL
                 WHERE id = ?1 AND lease_owner = ?2",
            )
            .and_then(|mut st| st.execute(params![task.id, task.node, step, due_ms]))
            .map_err(db_err)?;
        lease_held(n, task)
    }

    fn finish_task(&mut self, task: &Task) -> ApiResult<()> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM tasks WHERE id = ?1 AND lease_owner = ?2")
            .and_then(|mut st| st.execute(params![task.id, task.node]))
            .map_err(db_err)?;
        lease_held(n, task)
    }

    fn host_heartbeat(&mut self, name: &str, node: &str, now_ms: i64, stale_before_ms: i64) -> ApiResult<Heartbeat> {
        let held: Option<(String, i64, Option<i64>)> = self
            .conn
            .query_row("SELECT node, heartbeat_ms, down_ms FROM hosts WHERE name = ?1", [name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
            .map_err(db_err)?;
        let outcome = heartbeat_outcome(held, node, stale_before_ms);
        if outcome != Heartbeat::Taken {
            self.conn
                .execute(
                    "INSERT INTO hosts (name, node, heartbeat_ms, down_ms) VALUES (?1, ?2, ?3, NULL)
                     ON CONFLICT (name) DO UPDATE SET node = ?2, heartbeat_ms = ?3, down_ms = NULL",
                    params![name, node, now_ms],
                )
                .map_err(db_err)?;
        }
        Ok(outcome)
    }

    fn hosts(&self) -> ApiResult<Vec<HostRow>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT name, node, heartbeat_ms, down_ms FROM hosts ORDER BY name")
            .map_err(db_err)?;
        let rows = st
            .query_map([], |r| {
                Ok(HostRow { name: r.get(0)?, node: r.get(1)?, heartbeat_ms: r.get(2)?, down_ms: r.get(3)? })
            })
            .map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }

    fn mark_host_down(&mut self, name: &str, stale_before_ms: i64, now_ms: i64) -> ApiResult<bool> {
        let n = self
            .conn
            .execute(
                "UPDATE hosts SET down_ms = ?3 WHERE name = ?1 AND heartbeat_ms < ?2 AND down_ms IS NULL",
                params![name, stale_before_ms, now_ms],
            )
            .map_err(db_err)?;
        Ok(n == 1)
    }

    fn release_leases(&mut self) -> ApiResult<()> {
        self.conn.execute("UPDATE tasks SET lease_owner = NULL, lease_until_ms = NULL", []).map_err(db_err)?;
        Ok(())
    }

    fn expedite_tasks(&mut self, account_id: Option<i64>, now_ms: i64) -> ApiResult<u64> {
        let n = self
            .conn
            .execute(
                "UPDATE tasks SET expedited = 1, due_ms = MIN(due_ms, ?2) WHERE ?1 IS NULL OR account_id = ?1",
                params![account_id, now_ms],
            )
            .map_err(db_err)?;
        Ok(n as u64)
    }

    fn task_stats(&self, now_ms: i64) -> ApiResult<TaskStats> {
        self.conn
            .query_row(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE due_ms <= ?1), MIN(due_ms) FILTER (WHERE due_ms <= ?1)
                 FROM tasks",
                params![now_ms],
                |r| {
                    Ok(TaskStats {
                        queued: r.get::<_, i64>(0)? as u64,
                        due: r.get::<_, i64>(1)? as u64,
                        oldest_due_ms: r.get(2)?,
                    })
                },
            )
            .map_err(db_err)
    }

    fn drop_resources(&mut self, account_id: Option<i64>) -> ApiResult<Vec<Dropped>> {
        let filter = "WHERE ?1 IS NULL OR account_id = ?1";
        let dropped = {
            let mut st = self
                .conn
                .prepare(&format!("DELETE FROM resources {filter} RETURNING account_id, kind, id"))
                .map_err(db_err)?;
            let rows = st
                .query_map(params![account_id], |r| {
                    Ok(Dropped { account_id: r.get(0)?, kind: r.get(1)?, id: r.get(2)? })
                })
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)?
        };
        for table in ["tags", "resource_refs", "resource_counts", "tasks", "client_tokens"] {
            self.conn.execute(&format!("DELETE FROM {table} {filter}"), params![account_id]).map_err(db_err)?;
        }
        Ok(dropped)
    }

    fn resource_statuses(&self) -> ApiResult<Vec<(String, String, u64)>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT kind, status, COUNT(*) FROM resources GROUP BY kind, status")
            .map_err(db_err)?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))).map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }

    fn idempotent_answer(&self, account_id: i64, action: &str, token: &str) -> ApiResult<Option<IdempotentAnswer>> {
        self.conn
            .prepare_cached(
                "SELECT params_hash, response FROM client_tokens WHERE account_id = ?1 AND action = ?2 AND token = ?3",
            )
            .and_then(|mut st| {
                st.query_row(params![account_id, action, token], |r| {
                    Ok(IdempotentAnswer { params_hash: r.get(0)?, response: r.get(1)? })
                })
                .optional()
            })
            .map_err(db_err)
    }

    fn remember_answer(
        &mut self,
        account_id: i64,
        action: &str,
        token: &str,
        a: &IdempotentAnswer,
        now_ms: i64,
    ) -> ApiResult<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO client_tokens (account_id, action, token, params_hash, response, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut st| st.execute(params![account_id, action, token, a.params_hash, a.response, now_ms]))
            .map_err(db_err)?;
        Ok(())
    }

    fn spend_nonce(&mut self, access_key_id: &str, nonce: &str, expires_ms: i64) -> ApiResult<NonceSpend> {
        let enabled: Option<bool> = self
            .conn
            .prepare_cached("SELECT enabled FROM access_keys WHERE id = ?1")
            .and_then(|mut st| st.query_row(params![access_key_id], |r| r.get(0)).optional())
            .map_err(db_err)?;
        if enabled != Some(true) {
            return Ok(NonceSpend::KeyDisabled);
        }
        let n = self
            .conn
            .prepare_cached(
                "INSERT INTO nonces (access_key_id, nonce, expires_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (access_key_id, nonce) DO NOTHING",
            )
            .and_then(|mut st| st.execute(params![access_key_id, nonce, expires_ms]))
            .map_err(db_err)?;
        Ok(if n == 1 { NonceSpend::Spent } else { NonceSpend::Replayed })
    }

    fn purge_expired(&mut self, now_ms: i64, token_ttl_ms: i64) -> ApiResult<()> {
        self.conn
            .execute("DELETE FROM nonces WHERE expires_ms < ?1", params![now_ms])
            .and_then(|_| {
                self.conn.execute("DELETE FROM client_tokens WHERE created_ms < ?1", params![now_ms - token_ttl_ms])
            })
            .map_err(db_err)?;
        Ok(())
    }

    fn allocate_address(&mut self, pool: &str, size: u64, owner: &str) -> ApiResult<Option<u64>> {
        // Reuse the lowest released index, else take the pool's next never-used one.
        let freed: Option<i64> = self
            .conn
            .prepare_cached("SELECT MIN(idx) FROM address_free WHERE pool = ?1")
            .and_then(|mut st| st.query_row(params![pool], |r| r.get(0)))
            .map_err(db_err)?;
        let idx = match freed {
            Some(idx) => {
                self.conn
                    .prepare_cached("DELETE FROM address_free WHERE pool = ?1 AND idx = ?2")
                    .and_then(|mut st| st.execute(params![pool, idx]))
                    .map_err(db_err)?;
                idx
            }
            None => {
                let next: i64 = self
                    .conn
                    .prepare_cached(
                        "INSERT INTO address_pools (pool, next_idx) VALUES (?1, 1)
                         ON CONFLICT (pool) DO UPDATE SET next_idx = next_idx + 1 RETURNING next_idx",
                    )
                    .and_then(|mut st| st.query_row(params![pool], |r| r.get(0)))
                    .map_err(db_err)?;
                if next as u64 > size {
                    // Leave the mark where it was, so the pool stays exactly full.
                    self.conn
                        .prepare_cached("UPDATE address_pools SET next_idx = next_idx - 1 WHERE pool = ?1")
                        .and_then(|mut st| st.execute(params![pool]))
                        .map_err(db_err)?;
                    return Ok(None);
                }
                next - 1
            }
        };
        self.conn
            .prepare_cached("INSERT INTO address_leases (pool, idx, owner) VALUES (?1, ?2, ?3)")
            .and_then(|mut st| st.execute(params![pool, idx, owner]))
            .map_err(db_err)?;
        Ok(Some(idx as u64))
    }

    fn release_addresses(&mut self, owner: &str) -> ApiResult<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO address_free (pool, idx) SELECT pool, idx FROM address_leases WHERE owner = ?1",
            )
            .and_then(|mut st| st.execute(params![owner]))
            .and_then(|_| self.conn.prepare_cached("DELETE FROM address_leases WHERE owner = ?1"))
            .and_then(|mut st| st.execute(params![owner]))
            .map_err(db_err)?;
        Ok(())
    }

    fn create_account(&mut self, name: &str, now_ms: i64) -> ApiResult<Account> {
        self.conn
            .execute("INSERT INTO accounts (name, created_ms) VALUES (?1, ?2)", params![name, now_ms])
            .map_err(db_err)?;
        Ok(Account { id: self.conn.last_insert_rowid(), name: name.to_string(), created_ms: now_ms })
    }

    fn account_by_name(&self, name: &str) -> ApiResult<Option<Account>> {
        self.conn
            .query_row("SELECT id, name, created_ms FROM accounts WHERE name = ?1", params![name], |r| {
                Ok(Account { id: r.get(0)?, name: r.get(1)?, created_ms: r.get(2)? })
            })
            .optional()
            .map_err(db_err)
    }

    fn accounts(&self) -> ApiResult<Vec<Account>> {
        let mut st = self.conn.prepare("SELECT id, name, created_ms FROM accounts ORDER BY id").map_err(db_err)?;
        let rows = st
            .query_map([], |r| Ok(Account { id: r.get(0)?, name: r.get(1)?, created_ms: r.get(2)? }))
            .map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }

    fn insert_key(&mut self, k: &AccessKeyRow) -> ApiResult<()> {
        self.conn
            .execute(
                "INSERT INTO access_keys (id, account_id, sealed_secret, enabled, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![k.id, k.account_id, k.sealed_secret, k.enabled, k.created_ms],
            )
            .map_err(db_err)?;
        Ok(())
    }

    fn key(&self, id: &str) -> ApiResult<Option<AccessKeyRow>> {
        self.conn
            .prepare_cached(&format!("{KEY_SELECT} WHERE k.id = ?1"))
            .and_then(|mut st| st.query_row(params![id], key_from_row).optional())
            .map_err(db_err)
    }

    fn keys(&self) -> ApiResult<Vec<AccessKeyRow>> {
        let mut st = self.conn.prepare(&format!("{KEY_SELECT} ORDER BY k.created_ms, k.id")).map_err(db_err)?;
        let rows = st.query_map([], key_from_row).map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }

    fn take_reindex(&mut self) -> ApiResult<Vec<String>> {
        let mut st = self.conn.prepare_cached("DELETE FROM reindex RETURNING kind").map_err(db_err)?;
        let kinds = st.query_map([], |r| r.get(0)).map_err(db_err)?;
        kinds.collect::<Result<_, _>>().map_err(db_err)
    }

    fn set_key_enabled(&mut self, id: &str, enabled: bool) -> ApiResult<bool> {
        let n = self
            .conn
            .execute("UPDATE access_keys SET enabled = ?2 WHERE id = ?1", params![id, enabled])
            .map_err(db_err)?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests;
