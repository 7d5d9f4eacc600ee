//! The HTTP/1.1 server: accepts connections and holds each to its limits, so that no client can
//! deny service to the others by holding connections open.
//!
//! - At most `max_connections` at once, below the descriptor limit (raised to its hard limit at
//!   start) so that the store always has descriptors left. Beyond it, new connections are closed
//!   at once ("shedding"), logged once per episode.
//! - A connection waiting for its next request is closed after `idle` without a byte; once a
//!   request's first byte has arrived, its head must be complete within `header`. Both are
//!   enforced on the socket itself (`Deadlines`), which knows from the service when a request is
//!   being handled.
//! - The body's own limits (a read timeout, a size refused before it is read) are the handler's
//!   (`api::read_body`). All limits are `config::ConnectionLimits`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

pub use crate::config::ConnectionLimits as Limits;

/// Descriptors kept back from connections: the store's files, its readers, the data plane's
/// sockets and processes.
const RESERVED_DESCRIPTORS: u64 = 128;

/// Raises the soft descriptor limit to the hard one; returns the soft limit now in force.
pub fn raise_descriptor_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// The default connection cap for a descriptor limit: what is left after the reserve, at most
/// 16 384, at least 16.
pub fn default_max_connections(descriptors: u64) -> usize {
    descriptors.saturating_sub(RESERVED_DESCRIPTORS).clamp(16, 16_384) as usize
}

/// A listening socket: plain HTTP, or HTTPS with this acceptor.
pub struct Listener {
    pub tcp: TcpListener,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// What every listener's accept loop shares: the connection cap, its log, the connections to
/// wait for at shutdown.
struct Shared {
    router: Router,
    limits: Limits,
    permits: Arc<Semaphore>,
    shedding: Episode,
    starved: Episode,
    /// Taken at shutdown, to wait for the open connections.
    graceful: std::sync::Mutex<Option<hyper_util::server::graceful::GracefulShutdown>>,
}

/// Serves `router` on every listener until `shutdown` resolves, then lets open requests finish
/// (at most 5 s).
pub async fn serve(listeners: Vec<Listener>, router: Router, limits: Limits, shutdown: impl Future<Output = ()>) {
    let shared = Arc::new(Shared {
        router,
        limits,
        permits: Arc::new(Semaphore::new(limits.max_connections)),
        shedding: Episode::default(),
        starved: Episode::default(),
        graceful: std::sync::Mutex::new(Some(hyper_util::server::graceful::GracefulShutdown::new())),
    });
    let (stop, _) = tokio::sync::watch::channel(false);
    let loops: Vec<_> =
        listeners.into_iter().map(|l| tokio::spawn(accept_loop(l, shared.clone(), stop.subscribe()))).collect();
    shutdown.await;
    let _ = stop.send(true);
    for l in loops {
        let _ = l.await;
    }
    let Some(graceful) = shared.graceful.lock().expect("graceful").take() else { return };
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still open after 5 s at shutdown");
    }
}

async fn accept_loop(listener: Listener, shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let limits = shared.limits;
    loop {
        let stream = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.tcp.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.starved.end("descriptors available again: accepting connections");
                    stream
                }
                Err(e) => {
                    // Out of descriptors (or another transient failure): wait rather than spin.
                    shared.starved.begin(|| tracing::error!(error = %e, "cannot accept connections"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = shared.permits.clone().try_acquire_owned() else {
            shared.shedding.begin(|| {
                tracing::warn!(limit = limits.max_connections, "connection limit reached: shedding new connections")
            });
            drop(stream);
            continue;
        };
        shared.shedding.end("below the connection limit again: accepting connections");
        let _ = stream.set_nodelay(true);
        let (shared, tls) = (shared.clone(), listener.tls.clone());
        tokio::spawn(async move {
            match tls {
                None => connection(stream, &shared).await,
                // The handshake counts as the request head: it has the header limit.
                Some(acceptor) => match tokio::time::timeout(limits.header, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => connection(tls, &shared).await,
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                },
            }
            drop(permit);
        });
    }
}

/// Serves one connection's requests, each through `router`, within the limits.
async fn connection<S>(stream: S, shared: &Shared)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (io, state) = Deadlines::new(stream, shared.limits);
    let router = shared.router.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let (router, state) = (router.clone(), state.clone());
        async move {
            state.store(BUSY, Ordering::Release);
            let response = router.oneshot(req.map(axum::body::Body::new)).await;
            state.store(IDLE_AFTER_REQUEST, Ordering::Release);
            response
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    let watcher = shared.graceful.lock().expect("graceful").as_ref().map(|g| g.watcher());
    // None: shutting down already.
    if let Some(w) = watcher {
        let _ = w.watch(conn).await;
    }
}

/// A condition logged once when it begins and once when it ends, however often it recurs.
#[derive(Default)]
struct Episode(AtomicBool);

impl Episode {
    fn begin(&self, log: impl FnOnce()) {
        if !self.0.swap(true, Ordering::Relaxed) {
            log();
        }
    }

    fn end(&self, message: &'static str) {
        if self.0.swap(false, Ordering::Relaxed) {
            tracing::info!("{message}");
        }
    }
}

/// Where a connection is: waiting for a request, reading its head, or handling it.
const IDLE: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;
/// A request was just answered: idle again, its clock starting now.
const IDLE_AFTER_REQUEST: u8 = 3;

/// A socket whose reads fail with `TimedOut` when the client is too slow: no byte within `idle`
/// while waiting for a request, no complete head within `header` of its first byte. While the
/// service handles a request (BUSY) the socket has no deadline: the body has the handler's.
struct Deadlines<S> {
    stream: S,
    state: Arc<AtomicU8>,
    seen: u8,
    limits: Limits,
    timer: Pin<Box<Sleep>>,
}

impl<S> Deadlines<S> {
    fn new(stream: S, limits: Limits) -> (Self, Arc<AtomicU8>) {
        let state = Arc::new(AtomicU8::new(IDLE));
        let timer = Box::pin(tokio::time::sleep(limits.idle));
        (Deadlines { stream, state: state.clone(), seen: IDLE, limits, timer }, state)
    }

    fn restart(&mut self, after: Duration) {
        self.timer.as_mut().reset(Instant::now() + after);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadlines<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = &mut *self;
        let now = me.state.load(Ordering::Acquire);
        if now != me.seen {
            match now {
                IDLE_AFTER_REQUEST => {
                    me.state.store(IDLE, Ordering::Release);
                    me.seen = IDLE;
                    let idle = me.limits.idle;
                    me.restart(idle);
                }
                other => me.seen = other,
            }
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut me.stream).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            if buf.filled().len() > before && me.seen == IDLE {
                // A request's first byte: its head has `header` to arrive.
                me.seen = HEAD;
                me.state.store(HEAD, Ordering::Release);
                let header = me.limits.header;
                me.restart(header);
            }
            return polled;
        }
        if polled.is_pending() && me.seen != BUSY && me.timer.as_mut().poll(cx).is_ready() {
            let what = if me.seen == IDLE { "idle connection" } else { "request head too slow" };
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what)));
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadlines<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_caps_keep_descriptors_back() {
        assert_eq!(default_max_connections(1024), 896);
        assert_eq!(default_max_connections(64), 16);
        assert_eq!(default_max_connections(1 << 20), 16_384);
    }
}
