//! The accept loop: the service on hyper's HTTP/1 server, with the bounds `axum::serve` does
//! not give: a cap on open connections, a deadline for each request's headers (which also
//! closes connections left idle), and a deadline for draining on shutdown.

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// What the server lets a client hold: every figure here is bounded whatever clients do.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Most connections open at once; later ones wait in the kernel's queue until one closes.
    pub max_connections: usize,
    /// How long a connection may take to send a request's headers, or stay silent between
    /// requests, before it is closed.
    pub header_timeout: Duration,
    /// How long the requests in flight get to finish once shutdown begins.
    pub drain: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(8),
        }
    }
}

/// How serving ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Drained {
    /// Connections still open when the drain deadline passed, closed unfinished.
    pub cut: usize,
}

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting, lets the
/// requests in flight finish for at most `limits.drain`, and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> Drained {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    wait_after_accept_error(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers go out at once: with Nagle's algorithm a small answer can wait for the
        // client's delayed acknowledgement, 40 ms per request on Linux.
        let _ = stream.set_nodelay(true);
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that misbehaves ends its own connection, nothing else.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    let still_open = || limits.max_connections - open.available_permits();
    match tokio::time::timeout(limits.drain, graceful.shutdown()).await {
        Ok(()) => Drained { cut: 0 },
        Err(_) => Drained { cut: still_open() },
    }
}

/// After a failed accept: out of file descriptors (or memory) lasts a while, so wait before
/// trying again rather than spinning; a connection reset before it was accepted does not.
async fn wait_after_accept_error(error: &std::io::Error) {
    use std::io::ErrorKind;
    if !matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted
    ) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
