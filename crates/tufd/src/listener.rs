//! The accept loop: HTTP/1.1 over TCP or TLS, with limits a slow or idle client cannot get
//! around. At most `max_connections` connections are served at once (further ones wait in
//! the kernel's backlog); a connection must finish its TLS handshake and each request's
//! headers within `header_timeout` (also the longest a kept-alive connection may wait for its
//! next request); and a connection that moves no byte either way for `idle_timeout` is closed.
//! So clients that open connections and never finish them are dropped after seconds, and a
//! new client is answered.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt as _;

use crate::tls::{Peer, Tls};

/// Limits on connections (flags `--max-connections`, `--header-timeout-secs`,
/// `--idle-timeout-secs`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open connections finish
/// their current request (for at most [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<Tls>>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (app, tls, stop) = (app.clone(), tls.clone(), stop_rx.clone());
        tokio::spawn(async move {
            connection(stream, remote, app, tls, limits, stop).await;
            drop(permit);
        });
    }
    let _ = stop_tx.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open at shutdown were closed");
    }
}

async fn connection(
    stream: TcpStream,
    remote: std::net::SocketAddr,
    app: Router,
    tls: Option<Arc<Tls>>,
    limits: Limits,
    stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(AtomicU64::new(now_ms()));
    let io = IdleIo {
        inner: stream,
        activity: activity.clone(),
    };
    let Some(tls) = tls else {
        let peer = Peer {
            client_cert: false,
            remote: Some(remote),
        };
        return drive(io, app, peer, limits, stop, activity).await;
    };
    let handshake = tls.acceptor().accept(io);
    let stream = match tokio::time::timeout(limits.header_timeout, handshake).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    let client_cert = stream
        .get_ref()
        .1
        .peer_certificates()
        .is_some_and(|c| !c.is_empty());
    let peer = Peer {
        client_cert,
        remote: Some(remote),
    };
    drive(stream, app, peer, limits, stop, activity).await;
}

/// Runs HTTP/1.1 on one connection until it ends, goes idle, or the server stops.
async fn drive<I>(
    io: I,
    app: Router,
    peer: Peer,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    activity: Arc<AtomicU64>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = app.map_request(move |mut req: axum::http::Request<Incoming>| {
        req.extensions_mut().insert(peer);
        req
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let conn = http.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    tokio::pin!(conn);
    let mut tick = tokio::time::interval(TICK.min(limits.idle_timeout));
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended");
                }
                return;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tick.tick() => {
                let idle = now_ms().saturating_sub(activity.load(Ordering::Relaxed));
                if Duration::from_millis(idle) >= limits.idle_timeout {
                    tracing::debug!("closing an idle connection");
                    return;
                }
            }
        }
    }
}

/// A stream that records when it last moved a byte.
struct IdleIo {
    inner: TcpStream,
    activity: Arc<AtomicU64>,
}

impl IdleIo {
    fn touch(&self) {
        self.activity.store(now_ms(), Ordering::Relaxed);
    }
}

impl AsyncRead for IdleIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for IdleIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Milliseconds since the first call: a monotonic clock that fits an atomic.
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// How often a connection checks whether it went idle.
const TICK: Duration = Duration::from_secs(1);

/// How long open connections may take to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(10);
