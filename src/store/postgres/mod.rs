//! The shared store: PostgreSQL, for several Gatehouse nodes on one database.
//!
//! Writes carry over the embedded engine's group commit: one writer thread per node takes what
//! is queued and runs it as one SERIALIZABLE transaction, each write in its own savepoint, with
//! one COMMIT (one WAL flush) for the group; a write is answered only after that COMMIT returned
//! (`synchronous_commit` on, unless the whole group is `Durability::Process`: replay-protection
//! nonces). Within a node, writes therefore never collide. Across nodes, what one SQLite writer
//! gave for free — a check and the change it guards (a quota, the "one change at a time per
//! gateway" rule, a free address) atomic — PostgreSQL's serializable snapshot isolation gives: a
//! transaction that could not have run in some serial order is refused with a serialization
//! failure, and the writer runs the group again on a fresh snapshot (every write's closure is
//! re-runnable), where each check sees what the other node committed.
//!
//! Reads run in READ ONLY REPEATABLE READ transactions on pooled connections (`readers`), a
//! round trip per statement (`conn`); a read's COMMIT rides along with the connection's next
//! one. A lost connection (PostgreSQL restarted, the network gone) is replaced on next use;
//! meanwhile requests get `StoreError::Unavailable` (`ServiceUnavailable`), never a
//! panic.

mod conn;
mod migrations;
mod nonces;
mod readers;
mod tx;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::str::FromStr;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;

use super::*;
use conn::Conn;
use migrations::MIGRATIONS;
use tx::PgTx;

/// How long a write keeps being run again after serialization failures (colliding writes take
/// turns) before it is refused as unavailable.
const CONFLICT_PATIENCE: Duration = Duration::from_secs(5);
/// How long a write waits for the database to come back before it is refused as unavailable.
const UNAVAILABLE_PATIENCE: Duration = Duration::from_secs(2);
/// The key of the advisory lock that serializes migrations across nodes starting at once.
const MIGRATION_LOCK: i64 = 0x6761_7465_686f_7573; // "gatehous"
/// The key of the advisory lock every group of writes holds (see `attempt_group`).
const WRITE_LOCK: i64 = 0x6761_7465_7772_6974; // "gatewrit"

pub struct PgStore {
    describe: String,
    readers: Arc<readers::Readers>,
    writes: Mutex<mpsc::Sender<Write>>,
    nonces: Mutex<mpsc::Sender<nonces::Spend>>,
}

impl PgStore {
    /// Connects (waiting while the database cannot be reached), migrates, and starts the
    /// writer. Without `create`, a database that holds no Gatehouse schema is refused.
    pub fn open(url: &str, create: bool) -> anyhow::Result<Self> {
        let config = tokio_postgres::Config::from_str(url).map_err(|e| anyhow::anyhow!("--database-url: {e}"))?;
        Self::open_config(config, create)
    }

    pub fn open_config(mut config: tokio_postgres::Config, create: bool) -> anyhow::Result<Self> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("gatehouse");
        }
        let describe = describe(&config);
        blocking(|| {
            let mut conn = connect_patiently(&config, &describe)?;
            migrate(&mut conn, create).map_err(|e| anyhow::anyhow!("{describe}: {e:#}"))
        })??;
        let (sender, receiver) = mpsc::channel::<Write>();
        let writer_config = config.clone();
        std::thread::Builder::new().name("store-writer".into()).spawn(move || writer(writer_config, receiver))?;
        let (nonce_sender, nonce_receiver) = mpsc::channel();
        let lane_config = config.clone();
        std::thread::Builder::new()
            .name("store-nonces".into())
            .spawn(move || nonces::lane(lane_config, nonce_receiver))?;
        Ok(PgStore {
            describe,
            readers: readers::Readers::start(config)?,
            writes: Mutex::new(sender),
            nonces: Mutex::new(nonce_sender),
        })
    }

    /// One read on one connection; the connection comes back unless it broke.
    fn read_once(&self, f: &mut dyn FnMut(&dyn Tx)) -> Result<(), StoreError> {
        let mut conn = self.readers.take()?;
        conn.begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        let fault = {
            let tx = PgTx::new(&mut conn);
            f(&tx);
            tx.end_read()
        };
        // Nothing was written: the end of the transaction need not be waited for.
        let outcome = match fault {
            Some(e) => conn.finish("ROLLBACK", false).and(Err(e)),
            None => {
                conn.end_read();
                Ok(())
            }
        };
        let broken = matches!(outcome, Err(StoreError::Unavailable(_))) || conn.is_closed();
        self.readers.give_back((!broken).then_some(conn));
        outcome
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Closing a connection blocks on the synchronous client, which cannot happen inside a
        // runtime's context (where a store is usually dropped): close them on a thread of their own.
        let idle = self.readers.drain();
        let _ = std::thread::Builder::new().name("store-close".into()).spawn(move || drop(idle));
    }
}

impl Store for PgStore {
    fn read_with(&self, f: &mut dyn FnMut(&dyn Tx)) -> ApiResult<()> {
        blocking(|| {
            // A pooled connection may have died with a restart of the database: one more try on
            // a fresh one before the read is refused.
            match self.read_once(f) {
                Err(StoreError::Unavailable(_)) => self.read_once(f),
                other => other,
            }
        })
        .and_then(|read| read)
        // The closure's own result carries the error it saw; this one is for the caller's
        // `read`, which only looks at it when the closure never ran.
        .or_else(|e| {
            tracing::warn!(error = %e, "a read failed");
            match e {
                StoreError::Unavailable(_) | StoreError::Conflict(_) => Err(e.into()),
                _ => Ok(()),
            }
        })
    }

    fn submit(&self, write: Write) {
        // A send only fails once every writer has died; the dropped reply then reports it.
        let _ = self.writes.lock().expect("write queue").send(write);
    }

    fn shared(&self) -> bool {
        true
    }

    fn spend_nonce(&self, nonce: Nonce) -> BoxFuture<'static, ApiResult<NonceSpend>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        // A send only fails once the lane has died; the dropped reply then reports it.
        let _ = self.nonces.lock().expect("nonce queue").send((nonce, reply));
        Box::pin(
            async move { answer.await.map_err(|_| ApiError::internal("the nonce lane stopped before answering"))? },
        )
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

/// Runs blocking database work from wherever the caller is: inside the server's multi-threaded
/// runtime its worker thread hands its other tasks on meanwhile (the synchronous client cannot
/// run inside a runtime's context otherwise).
fn blocking<T>(f: impl FnOnce() -> T) -> Result<T, StoreError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => Ok(f()),
        Ok(RuntimeFlavor::MultiThread) => Ok(tokio::task::block_in_place(f)),
        Ok(_) => Err(StoreError::Internal("the PostgreSQL store needs a multi-threaded runtime".into())),
    }
}

/// "postgres host/dbname as user", never the password.
fn describe(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let port = config.get_ports().first().map(|p| format!(":{p}")).unwrap_or_default();
    format!(
        "postgres {}{port}/{} as {}",
        hosts.join(","),
        config.get_dbname().unwrap_or("(default)"),
        config.get_user().unwrap_or("(default)")
    )
}

/// At start: wait for the database (it may be starting too), saying so now and then.
fn connect_patiently(config: &tokio_postgres::Config, describe: &str) -> anyhow::Result<Conn> {
    let mut said = Instant::now() - Duration::from_secs(60);
    loop {
        match Conn::open(config) {
            Ok(conn) => return Ok(conn),
            Err(e) => match e {
                StoreError::Unavailable(why) => {
                    if said.elapsed() >= Duration::from_secs(10) {
                        tracing::warn!(store = describe, error = why, "waiting for the database");
                        said = Instant::now();
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
                other => anyhow::bail!("{describe}: {other}"),
            },
        }
    }
}

/// Applies the steps not yet applied, under an advisory lock so that nodes starting at once
/// apply each step once.
fn migrate(conn: &mut Conn, create: bool) -> anyhow::Result<()> {
    conn.batch("BEGIN")?;
    conn.execute("SELECT pg_advisory_xact_lock($1)::text", &[&MIGRATION_LOCK])?;
    let exists: bool = conn.query("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])?[0].get(0);
    if !exists && !create {
        anyhow::bail!("the database holds no Gatehouse data: start `gatehouse serve` on it first");
    }
    conn.batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
    )?;
    let done: i64 = conn.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])?[0].get(0);
    if done as usize > MIGRATIONS.len() {
        anyhow::bail!("the database's schema (version {done}) is newer than this Gatehouse knows: upgrade it");
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
        conn.batch(sql)?;
        conn.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
            &[&(i as i64 + 1), &now_ms()],
        )?;
    }
    Ok(conn.batch("COMMIT")?)
}

/// Sorts a database error into the kinds the store seam knows.
fn classify(e: tokio_postgres::Error) -> StoreError {
    let text = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => format!("{e:#}"),
    };
    if e.is_closed() {
        return StoreError::Unavailable(text);
    }
    match e.code() {
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED => {
            StoreError::Conflict(text)
        }
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => StoreError::Unique(text),
        // Class 08 (connection exception), 57P0x (shutting down, cannot connect now), 53 (out of
        // resources, e.g. too many connections), a lock not granted in time (the write lock).
        Some(c)
            if c.code().starts_with("08")
                || c.code().starts_with("57P")
                || c.code().starts_with("53")
                || *c == SqlState::LOCK_NOT_AVAILABLE =>
        {
            StoreError::Unavailable(text)
        }
        Some(_) => StoreError::Internal(text),
        // No SQLSTATE: the connection or its socket failed.
        None => StoreError::Unavailable(text),
    }
}

/// The writer thread: takes what is queued and runs it as one group (see `run_group`), then
/// answers each write.
fn writer(config: tokio_postgres::Config, queue: mpsc::Receiver<Write>) {
    let mut conn: Option<Conn> = None;
    while let Some(mut group) = next_group(&queue) {
        let started = Instant::now();
        let outcomes = run_group(&config, &mut conn, &mut group);
        crate::metrics::commit(group.len(), started.elapsed());
        for (write, outcome) in group.into_iter().zip(outcomes) {
            (write.done)(outcome);
        }
    }
}

/// Runs a group of writes in one transaction, each in its own savepoint, until it commits (or
/// fails for good): one commit, one WAL flush, for many requests. Returns each write's outcome.
fn run_group(config: &tokio_postgres::Config, conn: &mut Option<Conn>, group: &mut [Write]) -> Vec<ApiResult<()>> {
    // A node that stalls holding the write lock cannot stall the others for long.
    let session = format!("SET lock_timeout = '{}ms'", UNAVAILABLE_PATIENCE.as_millis());
    match patiently(config, conn, &session, |c, alone| attempt_group(c, group, alone)) {
        Ok(outcomes) => outcomes,
        Err(failure) => {
            tracing::warn!(error = %failure, writes = group.len(), "a group of writes failed");
            group.iter().map(|_| Err(failure.clone().into())).collect()
        }
    }
}

/// Runs `attempt` on `conn` (opened anew, with `session` settings, when it is missing or lost)
/// until it succeeds or fails for good. A serialization failure (another node's transaction
/// collided with this one) runs it again, told that it collided (`attempt`'s flag); a lost
/// connection runs it again on a new one.
fn patiently<T>(
    config: &tokio_postgres::Config,
    conn: &mut Option<Conn>,
    session: &str,
    mut attempt: impl FnMut(&mut Conn, bool) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    let (mut attempts, mut collided) = (0u32, false);
    loop {
        attempts += 1;
        let failure = match connected(config, conn, session).and_then(|c| attempt(c, collided)) {
            Ok(done) => return Ok(done),
            Err(e) => e,
        };
        collided |= failure.retryable();
        let unavailable = matches!(failure, StoreError::Unavailable(_));
        if unavailable {
            *conn = None;
        }
        let patience = if unavailable { UNAVAILABLE_PATIENCE } else { CONFLICT_PATIENCE };
        if !(unavailable || failure.retryable()) || started.elapsed() >= patience {
            return Err(failure);
        }
        // Spread the retries of colliding nodes apart.
        let spread = rand::random::<u64>() % (1 << attempts.min(5));
        std::thread::sleep(Duration::from_millis(if unavailable { 100 } else { spread }));
    }
}

/// `conn`, opened first (with `session` settings) when it is missing or lost.
fn connected<'c>(
    config: &tokio_postgres::Config,
    conn: &'c mut Option<Conn>,
    session: &str,
) -> Result<&'c mut Conn, StoreError> {
    if conn.as_ref().is_none_or(|c| c.is_closed()) {
        let mut c = Conn::open(config)?;
        c.batch(session)?;
        *conn = Some(c);
    }
    Ok(conn.as_mut().expect("connected"))
}

/// One attempt at a group. `Err`: nothing committed, and running the group again may succeed.
///
/// Every group holds the cluster's write lock (`WRITE_LOCK`, an advisory lock) while it runs:
/// shared normally, so nodes' groups run side by side; exclusive for a group that lost a
/// serialization conflict, which then runs alone. Without that, a node whose groups keep
/// colliding with another's on a hot row (one account's quota count) could lose every time.
fn attempt_group(c: &mut Conn, group: &mut [Write], alone: bool) -> Result<Vec<ApiResult<()>>, StoreError> {
    let mode = if alone { "" } else { "_shared" };
    // Its own round trip: the transaction's snapshot must be taken after the lock is held.
    c.batch(&format!("SELECT pg_advisory_lock{mode}({WRITE_LOCK})"))?;
    let outcome = run_group_once(c, group);
    // Lost with a broken connection anyway (the lock goes with its session).
    c.send(&format!("SELECT pg_advisory_unlock{mode}({WRITE_LOCK})"));
    outcome
}

fn run_group_once(c: &mut Conn, group: &mut [Write]) -> Result<Vec<ApiResult<()>>, StoreError> {
    // fsync the commit only when something in the group needs it.
    c.begin(if group.iter().any(|w| w.durability == Durability::Disk) {
        "BEGIN ISOLATION LEVEL SERIALIZABLE"
    } else {
        "BEGIN ISOLATION LEVEL SERIALIZABLE; SET LOCAL synchronous_commit = off"
    });
    let mut outcomes = Vec::with_capacity(group.len());
    for write in group.iter_mut() {
        outcomes.push(run_one(c, write).inspect_err(|_| drop(c.finish("ROLLBACK", false)))?);
    }
    match c.finish("COMMIT", true) {
        Ok(()) => Ok(outcomes),
        // A commit refused for serialization committed nothing: run the group again.
        Err(e @ StoreError::Conflict(_)) => Err(e),
        // Lost with the connection: whether it committed is unknown, so it is not run again (it
        // might apply twice); the callers hear that it failed.
        Err(e) => {
            tracing::warn!(error = %e, writes = group.len(), "a commit's outcome is unknown");
            Ok(group.iter().map(|_| Err(e.clone().into())).collect())
        }
    }
}

/// Runs one write of a group in its savepoint. `Ok`: the write's own outcome (its closure's
/// result is in its slot); `Err`: the whole transaction is lost.
fn run_one(c: &mut Conn, write: &mut Write) -> Result<ApiResult<()>, StoreError> {
    let mut collisions = 0;
    loop {
        c.queue("SAVEPOINT w");
        let (ran, fault) = {
            let mut tx = PgTx::new(c);
            let ran = catch_unwind(AssertUnwindSafe(|| (write.run)(&mut tx)));
            (ran, tx.take_fault())
        };
        match (fault, ran) {
            (None, Ok(true)) => {
                c.queue("RELEASE w");
                return Ok(Ok(()));
            }
            // Its closure said no (its error is in its slot): only its own changes go.
            (None, Ok(false)) => {
                c.queue("ROLLBACK TO w; RELEASE w");
                return Ok(Ok(()));
            }
            (None, Err(_)) => {
                c.queue("ROLLBACK TO w; RELEASE w");
                return Ok(Err(ApiError::internal("a write panicked")));
            }
            // Another node inserted the same key after this write looked: run it again, and it
            // sees that row.
            (Some(StoreError::Unique(_)), _) if collisions < 3 => {
                collisions += 1;
                c.queue("ROLLBACK TO w; RELEASE w");
            }
            (Some(e @ (StoreError::Internal(_) | StoreError::Unique(_))), _) => {
                c.queue("ROLLBACK TO w; RELEASE w");
                return Ok(Err(e.into()));
            }
            (Some(e), _) => return Err(e),
        }
    }
}

/// Runs simple statements on the database at `url` (the conformance tests' schemas).
#[cfg(test)]
pub(super) fn admin(url: &str, sql: &str) -> Result<(), StoreError> {
    let config = tokio_postgres::Config::from_str(url).map_err(|e| StoreError::Internal(e.to_string()))?;
    Conn::open(&config)?.batch(sql)
}
