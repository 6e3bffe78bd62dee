//! Client connections: accepting them up to a cap, bounding how long a client may take, and
//! closing them within a deadline on shutdown.
//!
//! `axum::serve` keeps a connection that sent half a request forever, so a few hundred stalled
//! clients used up the descriptors and one kept a stopping server alive. Connections are served
//! here with hyper directly, each with a header-read and idle timeout (`header_clock`); the
//! request-body timeout is a middleware (`http::body`), since it bounds what a handler reads.

mod header_clock;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower_http::add_extension::AddExtension;

use crate::config::HttpLimits;
use header_clock::{CountingStream, HeaderClock};

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, lets requests in
/// flight finish for up to `limits.shutdown_grace_secs`, and closes what remains.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &HttpLimits,
    shutdown: impl Future<Output = ()>,
) {
    // At the cap the server stops accepting: further clients wait in the kernel's listen
    // backlog, costing no descriptor here, and are served as soon as a connection closes,
    // which the timeouts guarantee happens.
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    let (stopping, stop) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    wait_after_accept_error(e).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(serve_connection(
            stream,
            peer,
            app.clone(),
            limits.clone(),
            stop.clone(),
            slot,
        ));
    }
    // New clients are refused from here on rather than left waiting in the backlog.
    drop(listener);
    let _ = stopping.send(true);
    let grace = Duration::from_secs(limits.shutdown_grace_secs);
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        while connections.try_join_next().is_some() {}
        let cut = connections.len();
        connections.shutdown().await;
        tracing::warn!(
            cut,
            grace_secs = limits.shutdown_grace_secs,
            "closed connections still open after the shutdown grace period"
        );
    }
}

/// Serves one connection until the client or a timeout closes it, or the server stops.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let stream = CountingStream::new(stream);
    let header_read_timeout = Duration::from_secs(limits.header_read_timeout_secs);
    let clock = HeaderClock::new(
        &stream,
        header_read_timeout,
        Duration::from_secs(limits.idle_timeout_secs),
    );
    // Handlers read the peer address (sign-in throttling) as axum's ConnectInfo.
    let service = TowerToHyperService::new(AddExtension::new(app, ConnectInfo(peer)));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(clock)
        .header_read_timeout(header_read_timeout);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        served = connection.as_mut() => log_connection_end(served),
        () = stopped(&mut stop) => {
            // Closes the connection now if it is idle, else after the response in flight.
            connection.as_mut().graceful_shutdown();
            log_connection_end(connection.await);
        }
    }
}

/// Resolves once the server stops (or is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|&stopping| stopping).await;
}

fn log_connection_end(served: hyper::Result<()>) {
    if let Err(e) = served {
        // Timeouts and clients that hang up are routine: not worth more than a debug line.
        tracing::debug!(error = %e, "connection closed");
    }
}

/// Errors about one connection are ignored; others (out of descriptors) pause accepting
/// briefly, rather than spinning, until connections close.
async fn wait_after_accept_error(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept connections");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
