//! The pool of read connections. A read ends without a round trip of its own: its COMMIT is
//! owed (`Conn::end_read`) and goes out ahead of the connection's next statement. Under load
//! that is a few milliseconds later; a connection left idle is settled by the pool's thread
//! within `SETTLE_AFTER`, so that no read's snapshot is held longer (it would keep vacuum from
//! reclaiming what later changes left behind).

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use super::conn::Conn;
use super::{StoreError, UNAVAILABLE_PATIENCE};

/// Connections for reads, at most.
const READERS: usize = 24;
/// How long an idle connection may owe its COMMIT.
const SETTLE_AFTER: Duration = Duration::from_millis(20);

pub(super) struct Readers {
    config: tokio_postgres::Config,
    /// The idle connections, and how many exist (idle or out).
    pool: Mutex<(Vec<Conn>, usize)>,
    freed: Condvar,
    /// Signalled when a connection comes back owing its COMMIT.
    owing: Condvar,
}

impl Readers {
    /// The pool, and its thread that settles idle connections (it ends with the pool).
    pub fn start(config: tokio_postgres::Config) -> std::io::Result<Arc<Readers>> {
        let readers = Arc::new(Readers {
            config,
            pool: Mutex::new((Vec::new(), 0)),
            freed: Condvar::new(),
            owing: Condvar::new(),
        });
        let weak = Arc::downgrade(&readers);
        std::thread::Builder::new().name("store-readers".into()).spawn(move || settle(weak))?;
        Ok(readers)
    }

    /// An idle connection, or a new one while fewer than `READERS` exist.
    pub fn take(&self) -> Result<Conn, StoreError> {
        let deadline = Instant::now() + UNAVAILABLE_PATIENCE;
        let mut pool = self.pool.lock().expect("reader pool");
        loop {
            if let Some(conn) = pool.0.pop() {
                return Ok(conn);
            }
            if pool.1 < READERS {
                pool.1 += 1;
                drop(pool);
                return Conn::open(&self.config).inspect_err(|_| self.pool.lock().expect("reader pool").1 -= 1);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::Unavailable("every read connection is busy".into()));
            }
            pool = self.freed.wait_timeout(pool, left).expect("reader pool").0;
        }
    }

    /// Takes a connection back, unless it broke (`None`, or closed).
    pub fn give_back(&self, conn: Option<Conn>) {
        let mut pool = self.pool.lock().expect("reader pool");
        match conn {
            Some(conn) if !conn.is_closed() => {
                if conn.owes_since(Duration::ZERO) {
                    self.owing.notify_one();
                }
                pool.0.push(conn);
            }
            _ => pool.1 -= 1,
        }
        self.freed.notify_one();
    }

    /// The idle connections, for closing.
    pub fn drain(&self) -> Vec<Conn> {
        std::mem::take(&mut self.pool.lock().expect("reader pool").0)
    }
}

/// The pool's thread: while some idle connection owes its COMMIT, sends that of each one idle for
/// `SETTLE_AFTER` (outside the pool's lock: reads go on meanwhile); otherwise sleeps until one
/// comes back owing.
fn settle(readers: Weak<Readers>) {
    loop {
        let Some(readers) = readers.upgrade() else { return };
        {
            let pool = readers.pool.lock().expect("reader pool");
            if !pool.0.iter().any(|c| c.owes_since(Duration::ZERO)) {
                // Woken now and then all the same, to end with the pool.
                drop(readers.owing.wait_timeout(pool, Duration::from_secs(1)).expect("reader pool"));
                continue;
            }
        }
        std::thread::sleep(SETTLE_AFTER / 2);
        let idle: Vec<Conn> = {
            let mut pool = readers.pool.lock().expect("reader pool");
            let (owing, fine) = std::mem::take(&mut pool.0).into_iter().partition(|c| c.owes_since(SETTLE_AFTER));
            pool.0 = fine;
            owing
        };
        for mut conn in idle {
            let settled = conn.settle().is_ok();
            readers.give_back(settled.then_some(conn));
        }
    }
}
