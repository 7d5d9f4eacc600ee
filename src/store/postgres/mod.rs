//! The shared store: PostgreSQL, for several Gatehouse nodes on one database.
//!
//! Every write is its own SERIALIZABLE transaction, run by one of a pool of writer threads. What
//! one SQLite writer gave for free — a check and the change it guards (a quota, the "one change
//! at a time per gateway" rule, a free address) atomic — PostgreSQL's serializable snapshot
//! isolation gives across nodes: a transaction that could not have run in some serial order is
//! refused with a serialization failure, and the writer runs the write's closure again on a fresh
//! snapshot (up to `ATTEMPTS` times), where the check sees what the other committed. A write is
//! answered only after its COMMIT returned (`synchronous_commit` on; replay-protection nonces,
//! `Durability::Process`, commit without waiting for the WAL flush). Concurrent commits share
//! WAL flushes inside PostgreSQL: its own group commit.
//!
//! Reads run in READ ONLY REPEATABLE READ transactions on pooled connections. A lost connection
//! (PostgreSQL restarted, the network gone) is replaced on next use; meanwhile requests get
//! `StoreError::Unavailable` (`ServiceUnavailable`), never a panic.

mod migrations;
mod tx;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::str::FromStr;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ::postgres::error::SqlState;
use ::postgres::{Client, NoTls, Statement};

use super::*;
use migrations::MIGRATIONS;
use tx::PgTx;

/// Writer threads, each with its own connection: how many writes run at once on this node.
const WRITERS: usize = 16;
/// Connections for reads, at most.
const READERS: usize = 24;
/// How long a write keeps being run again after serialization failures (colliding writes take
/// turns) before it is refused as unavailable.
const CONFLICT_PATIENCE: Duration = Duration::from_secs(5);
/// How long a write waits for the database to come back before it is refused as unavailable.
const UNAVAILABLE_PATIENCE: Duration = Duration::from_secs(2);
/// The key of the advisory lock that serializes migrations across nodes starting at once.
const MIGRATION_LOCK: i64 = 0x6761_7465_686f_7573; // "gatehous"

/// One connection and the statements prepared on it.
struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

pub struct PgStore {
    config: ::postgres::Config,
    describe: String,
    readers: Mutex<(Vec<Conn>, usize)>,
    reader_freed: Condvar,
    writes: Mutex<mpsc::Sender<Write>>,
}

impl PgStore {
    /// Connects (waiting while the database cannot be reached), migrates, and starts the
    /// writers. Without `create`, a database that holds no Gatehouse schema is refused.
    pub fn open(url: &str, create: bool) -> anyhow::Result<Self> {
        let config = ::postgres::Config::from_str(url).map_err(|e| anyhow::anyhow!("--database-url: {e}"))?;
        Self::open_config(config, create)
    }

    pub fn open_config(mut config: ::postgres::Config, create: bool) -> anyhow::Result<Self> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("gatehouse");
        }
        let describe = describe(&config);
        let mut opened = None;
        blocking(|| {
            opened =
                Some(connect_patiently(&config, &describe).and_then(|mut client| {
                    migrate(&mut client, create).map_err(|e| anyhow::anyhow!("{describe}: {e:#}"))
                }));
            Ok(())
        })?;
        opened.expect("ran")?;
        let (sender, receiver) = mpsc::channel::<Write>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..WRITERS {
            let (config, receiver) = (config.clone(), receiver.clone());
            std::thread::Builder::new().name(format!("store-writer-{i}")).spawn(move || writer(config, receiver))?;
        }
        Ok(PgStore {
            config,
            describe,
            readers: Mutex::new((Vec::new(), 0)),
            reader_freed: Condvar::new(),
            writes: Mutex::new(sender),
        })
    }

    /// A pooled read connection, or a new one while fewer than `READERS` are out.
    fn take_reader(&self) -> Result<Conn, StoreError> {
        let deadline = Instant::now() + UNAVAILABLE_PATIENCE;
        let mut pool = self.readers.lock().expect("reader pool");
        loop {
            if let Some(conn) = pool.0.pop() {
                return Ok(conn);
            }
            if pool.1 < READERS {
                pool.1 += 1;
                drop(pool);
                return connect(&self.config).inspect_err(|_| self.readers.lock().expect("reader pool").1 -= 1);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::Unavailable("every read connection is busy".into()));
            }
            pool = self.reader_freed.wait_timeout(pool, left).expect("reader pool").0;
        }
    }

    fn give_back(&self, conn: Option<Conn>) {
        let mut pool = self.readers.lock().expect("reader pool");
        match conn {
            Some(conn) if !conn.client.is_closed() => pool.0.push(conn),
            _ => pool.1 -= 1,
        }
        self.reader_freed.notify_one();
    }

    /// One read on one connection; the connection comes back unless it broke.
    fn read_once(&self, f: &mut dyn FnMut(&dyn Tx)) -> Result<(), StoreError> {
        let mut conn = self.take_reader()?;
        let outcome = (|| {
            conn.client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").map_err(classify)?;
            let fault = {
                let tx = PgTx::new(&mut conn);
                f(&tx);
                tx.take_fault()
            };
            match fault {
                Some(e) => {
                    let _ = conn.client.batch_execute("ROLLBACK");
                    Err(e)
                }
                None => conn.client.batch_execute("COMMIT").map_err(classify),
            }
        })();
        let broken = matches!(outcome, Err(StoreError::Unavailable(_))) || conn.client.is_closed();
        self.give_back((!broken).then_some(conn));
        outcome
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Closing a connection blocks on the synchronous client, which cannot happen inside a
        // runtime's context (where a store is usually dropped): close them on a thread of their own.
        let idle = std::mem::take(&mut self.readers.get_mut().expect("reader pool").0);
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
        // The closure's own result carries the error it saw; this one is for the caller's
        // `read`, which only looks at it when the closure never ran.
        .or_else(|e| match e {
            StoreError::Unavailable(_) | StoreError::Conflict(_) => Err(e.into()),
            _ => Ok(()),
        })
    }

    fn submit(&self, write: Write) {
        // A send only fails once every writer has died; the dropped reply then reports it.
        let _ = self.writes.lock().expect("write queue").send(write);
    }

    fn shared(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

/// Runs blocking database work from wherever the caller is: inside the server's multi-threaded
/// runtime its worker thread hands its other tasks on meanwhile (the synchronous client cannot
/// run inside a runtime's context otherwise).
fn blocking<T>(f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => f(),
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        Ok(_) => Err(StoreError::Internal("the PostgreSQL store needs a multi-threaded runtime".into())),
    }
}

/// "postgres host/dbname as user", never the password.
fn describe(config: &::postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            ::postgres::config::Host::Tcp(name) => name.clone(),
            ::postgres::config::Host::Unix(path) => path.display().to_string(),
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

fn connect(config: &::postgres::Config) -> Result<Conn, StoreError> {
    let client = config.connect(NoTls).map_err(classify)?;
    Ok(Conn { client, statements: HashMap::new() })
}

/// At start: wait for the database (it may be starting too), saying so now and then.
fn connect_patiently(config: &::postgres::Config, describe: &str) -> anyhow::Result<Client> {
    let mut said = Instant::now() - Duration::from_secs(60);
    loop {
        match config.connect(NoTls) {
            Ok(client) => return Ok(client),
            Err(e) => match classify(e) {
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
fn migrate(client: &mut Client, create: bool) -> anyhow::Result<()> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    let exists: bool = tx.query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])?.get(0);
    if !exists && !create {
        anyhow::bail!("the database holds no Gatehouse data: start `gatehouse serve` on it first");
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
    )?;
    let done: i64 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])?.get(0);
    if done as usize > MIGRATIONS.len() {
        anyhow::bail!("the database's schema (version {done}) is newer than this Gatehouse knows: upgrade it");
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
            &[&(i as i64 + 1), &now_ms()],
        )?;
    }
    Ok(tx.commit()?)
}

/// Sorts a database error into the kinds the store seam knows.
fn classify(e: ::postgres::Error) -> StoreError {
    let text = e.to_string();
    if e.is_closed() {
        return StoreError::Unavailable(text);
    }
    match e.code() {
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED => {
            StoreError::Conflict(text)
        }
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => StoreError::Unique(text),
        // Class 08 (connection exception), 57P0x (shutting down, cannot connect now), 53 (out of
        // resources, e.g. too many connections).
        Some(c) if c.code().starts_with("08") || c.code().starts_with("57P") || c.code().starts_with("53") => {
            StoreError::Unavailable(text)
        }
        Some(_) => StoreError::Internal(text),
        // No SQLSTATE: the connection or its socket failed.
        None => StoreError::Unavailable(text),
    }
}

/// A writer thread: takes one write at a time and runs it to its answer.
fn writer(config: ::postgres::Config, queue: Arc<Mutex<mpsc::Receiver<Write>>>) {
    let mut conn: Option<Conn> = None;
    loop {
        let next = queue.lock().expect("write queue").recv();
        let Ok(mut write) = next else { return };
        let started = Instant::now();
        let outcome = run_write(&config, &mut conn, &mut write);
        crate::metrics::commit(1, started.elapsed());
        (write.done)(outcome);
    }
}

/// Runs one write until it commits, is rolled back by its closure, or fails for good.
fn run_write(config: &::postgres::Config, conn: &mut Option<Conn>, write: &mut Write) -> ApiResult<()> {
    let started = Instant::now();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let failure = match attempt_write(config, conn, write) {
            Attempt::Done(outcome) => return outcome,
            Attempt::Failed(e) => e,
        };
        let unavailable = matches!(failure, StoreError::Unavailable(_));
        if unavailable {
            *conn = None;
        }
        let patience = if unavailable { UNAVAILABLE_PATIENCE } else { CONFLICT_PATIENCE };
        if !(unavailable || failure.retryable()) || started.elapsed() >= patience {
            return Err(failure.into());
        }
        // Spread the retries of colliding writes apart.
        let spread = rand::random::<u64>() % (1 << attempt.min(5));
        std::thread::sleep(Duration::from_millis(if unavailable { 100 } else { spread }));
    }
}

enum Attempt {
    Done(ApiResult<()>),
    /// Nothing committed: safe to run again.
    Failed(StoreError),
}

fn attempt_write(config: &::postgres::Config, conn: &mut Option<Conn>, write: &mut Write) -> Attempt {
    if conn.as_ref().is_none_or(|c| c.client.is_closed()) {
        match connect(config) {
            Ok(c) => *conn = Some(c),
            Err(e) => return Attempt::Failed(e),
        }
    }
    let c = conn.as_mut().expect("connected");
    let begin = match write.durability {
        Durability::Disk => "BEGIN ISOLATION LEVEL SERIALIZABLE",
        Durability::Process => "BEGIN ISOLATION LEVEL SERIALIZABLE; SET LOCAL synchronous_commit = off",
    };
    if let Err(e) = c.client.batch_execute(begin) {
        return Attempt::Failed(classify(e));
    }
    let (ran, fault) = {
        let mut tx = PgTx::new(c);
        let ran = catch_unwind(AssertUnwindSafe(|| (write.run)(&mut tx)));
        (ran, tx.take_fault())
    };
    // A statement that failed left the transaction aborted, whatever the closure made of it.
    if let Some(fault) = fault {
        let _ = c.client.batch_execute("ROLLBACK");
        return Attempt::Failed(fault);
    }
    match ran {
        Ok(true) => match c.client.batch_execute("COMMIT") {
            Ok(()) => Attempt::Done(Ok(())),
            // A commit refused for serialization committed nothing: run it again.
            Err(e) => match classify(e) {
                e @ StoreError::Conflict(_) => Attempt::Failed(e),
                // Lost with the connection: whether it committed is unknown, so it is not run
                // again (it might apply twice); the caller hears that it failed.
                e => Attempt::Done(Err(e.into())),
            },
        },
        Ok(false) => {
            let rolled_back = c.client.batch_execute("ROLLBACK").map_err(classify);
            Attempt::Done(rolled_back.map_err(ApiError::from))
        }
        Err(_) => {
            let _ = c.client.batch_execute("ROLLBACK");
            Attempt::Done(Err(ApiError::internal("a write panicked")))
        }
    }
}
