//! One PostgreSQL connection, used synchronously (the `Tx` closures are synchronous): the
//! asynchronous client runs on a small runtime of the connection's own, driven only while the
//! connection is in use. Owning the protocol lets a transaction cost as few round trips as it
//! can: its BEGIN and savepoints go out with the next statement, and a read's COMMIT goes out
//! ahead of the connection's next statement (`end_read`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

use super::{classify, StoreError};

pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub(super) struct Conn {
    runtime: tokio::runtime::Runtime,
    client: Client,
    /// Statements prepared on this connection, by their text.
    statements: HashMap<String, Statement>,
    /// Simple statements (BEGIN, savepoints) to send with the next statement.
    pending: String,
    /// Whether anything went out since the last `begin`: the transaction has started.
    started: bool,
    /// Since when a read's COMMIT is owed (see `end_read`).
    owed: Option<Instant>,
}

impl Conn {
    pub fn open(config: &tokio_postgres::Config) -> Result<Conn, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Internal(format!("a connection's runtime: {e}")))?;
        let (client, connection) = runtime.block_on(config.connect(NoTls)).map_err(classify)?;
        // Runs whenever the connection is in use (`block_on`), reading answers and sending requests.
        runtime.spawn(connection);
        Ok(Conn { runtime, client, statements: HashMap::new(), pending: String::new(), started: false, owed: None })
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Starts a transaction with `begin` (a BEGIN, and settings for it), sent along with the
    /// first statement.
    pub fn begin(&mut self, begin: &str) {
        self.pending = begin.to_string();
        self.started = false;
    }

    /// Ends a read-only transaction without a round trip of its own: its COMMIT goes out ahead of
    /// whatever the connection sends next, or with `settle`. (Its answer cannot be a failure
    /// that matters: the transaction wrote nothing.)
    pub fn end_read(&mut self) {
        self.pending.clear();
        if std::mem::take(&mut self.started) {
            self.owed = Some(Instant::now());
        }
    }

    /// Whether a COMMIT has been owed for `long` at least.
    pub fn owes_since(&self, long: Duration) -> bool {
        self.owed.is_some_and(|since| since.elapsed() >= long)
    }

    /// Sends an owed COMMIT now, and waits for it.
    pub fn settle(&mut self) -> Result<(), StoreError> {
        match self.owed.take() {
            Some(_) => self.batch("COMMIT"),
            None => Ok(()),
        }
    }

    /// What goes out ahead of the next statement: an owed COMMIT, then what is pending.
    fn ahead(&mut self) -> String {
        let pending = std::mem::take(&mut self.pending);
        match (self.owed.take(), pending.is_empty()) {
            (None, _) => pending,
            (Some(_), true) => "COMMIT".to_string(),
            (Some(_), false) => format!("COMMIT; {pending}"),
        }
    }

    /// Queues simple statements (a savepoint's) to go out with the next statement.
    pub fn queue(&mut self, sql: &str) {
        if !self.pending.is_empty() {
            self.pending.push_str("; ");
        }
        self.pending.push_str(sql);
    }

    /// Ends the transaction with `sql` (COMMIT or ROLLBACK), waiting for its answer only with
    /// `wait`. A transaction that never sent a statement never started: nothing to end.
    pub fn finish(&mut self, sql: &str, wait: bool) -> Result<(), StoreError> {
        if !std::mem::take(&mut self.started) {
            self.pending.clear();
            return Ok(());
        }
        self.queue(sql);
        let batch = self.ahead();
        if wait {
            self.batch(&batch)
        } else {
            self.send(&batch);
            Ok(())
        }
    }

    /// Runs simple statements (no parameters) and waits for them.
    pub fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.runtime.block_on(self.client.batch_execute(sql)).map_err(classify)
    }

    /// Sends simple statements without waiting for their answer (a read's ROLLBACK, an unlock),
    /// and lets the connection write them out now.
    pub fn send(&mut self, sql: &str) {
        // The first poll queues the request; the answer, dropped, is skipped when it arrives.
        let _ = self.client.batch_execute(sql).now_or_never();
        self.runtime.block_on(tokio::task::yield_now());
    }

    fn prepared(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.runtime.block_on(self.client.prepare(sql)).map_err(classify)?;
        self.statements.insert(sql.to_string(), st.clone());
        Ok(st)
    }

    /// Runs one statement, with what is pending in the same round trip.
    pub fn query(&mut self, sql: &str, params: Params) -> Result<Vec<Row>, StoreError> {
        Ok(self.query_all(&[(sql, params)])?.remove(0))
    }

    /// Runs statements that do not depend on each other, all in one round trip (with what is
    /// pending ahead of them).
    pub fn query_all(&mut self, statements: &[(&str, Params)]) -> Result<Vec<Vec<Row>>, StoreError> {
        let prepared = statements.iter().map(|(sql, _)| self.prepared(sql)).collect::<Result<Vec<_>, _>>()?;
        self.after_pending(async |client| {
            let queries = prepared.iter().zip(statements).map(|(st, (_, params))| client.query(st, params));
            futures_util::future::join_all(queries).await.into_iter().collect()
        })
    }

    /// Like `query`, for a statement whose rows are not wanted: how many it touched.
    pub fn execute(&mut self, sql: &str, params: Params) -> Result<u64, StoreError> {
        let statement = self.prepared(sql)?;
        self.after_pending(async |client| client.execute(&statement, params).await)
    }

    /// Runs `work` with what is pending sent ahead of it, in the same round trip.
    fn after_pending<T>(
        &mut self,
        work: impl AsyncFnOnce(&Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        let pending = self.ahead();
        self.started = true;
        let client = &self.client;
        self.runtime
            .block_on(async {
                // Polled first, so its request goes out first.
                let ahead = async {
                    match pending.is_empty() {
                        true => Ok(()),
                        false => client.batch_execute(&pending).await,
                    }
                };
                let (ahead, out) = futures_util::join!(ahead, work(client));
                ahead.and(out)
            })
            .map_err(classify)
    }
}
