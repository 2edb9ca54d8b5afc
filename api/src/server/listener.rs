//! The API's accept loop: HTTP/1 connections whose headers must arrive within
//! [`HEADER_READ_TIMEOUT`], at most [`MAX_CONNECTIONS_PER_CLIENT`] open per client
//! address and [`MAX_CONNECTIONS`] in all. A connection over either cap gets a `429`
//! and is closed at once; nothing else is read from it.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::{Extension, Router};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// A request's headers must arrive within this, or its connection is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections one client address may hold open at once.
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 128;
/// Connections open at once, all clients together.
pub const MAX_CONNECTIONS: usize = 512;
/// How long requests in flight may finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The client address of a request, as the accept loop saw it (an extension of every
/// request it serves).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

/// The client address of a request (loopback when the accept loop did not say).
pub fn client_of(addr: Option<Extension<ClientAddr>>) -> IpAddr {
    addr.map_or(IpAddr::from([127, 0, 0, 1]), |Extension(ClientAddr(ip))| ip)
}

/// Open connections, per client address and in all.
#[derive(Debug, Default)]
pub(crate) struct ConnectionCount {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; uncounted when dropped.
pub(crate) struct Counted {
    count: Arc<ConnectionCount>,
    client: IpAddr,
}

impl ConnectionCount {
    /// Counts a new connection from `client`, unless it would exceed a cap.
    pub(crate) fn admit(self: &Arc<Self>, client: IpAddr) -> Option<Counted> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let total: usize = open.values().sum();
        let mine = open.get(&client).copied().unwrap_or(0);
        if total >= MAX_CONNECTIONS || mine >= MAX_CONNECTIONS_PER_CLIENT {
            return None;
        }
        open.insert(client, mine + 1);
        Some(Counted {
            count: self.clone(),
            client,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut open = self.count.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.client);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests in flight
/// finish (for at most ten seconds).
pub async fn serve(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()>) {
    let count = Arc::new(ConnectionCount::default());
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    tokio::pin!(shutdown);
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: let some close.
                    tracing::warn!("cannot accept an API connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(counted) = count.admit(client.ip()) else {
            tokio::spawn(refuse(stream));
            continue;
        };
        // Handlers learn the client's address (per-client bounds of upload sessions).
        let address = ClientAddr(client.ip());
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(address);
                request
            },
        ));
        let io = TokioIo::new(super::refusals::JsonRefusals::new(stream));
        let connection = graceful.watch(builder.serve_connection(io, service));
        tokio::spawn(async move {
            let _counted = counted;
            if let Err(e) = connection.await {
                tracing::debug!(%client, "API connection ended: {e}");
            }
        });
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("API requests still running after {DRAIN_TIMEOUT:?}; stopping anyway");
        }
    }
}

/// Answers a connection over the caps with a `429` and closes it. The answer follows the
/// request's head (read for at most a second, 16 KiB at most), so that the client reads it
/// as the answer to its request — one it may send again — not as a message out of turn.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str = r#"{"kind":"too_many_connections","error":"too many open connections from this client (or in all); close some and retry"}"#;
    let answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let mut head = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut buf = [0u8; 1024];
        while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(answer.as_bytes())).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_per_client_and_in_all_and_free_on_drop() {
        let count = Arc::new(ConnectionCount::default());
        let a: IpAddr = [127, 0, 0, 2].into();
        let held: Vec<Counted> = (0..MAX_CONNECTIONS_PER_CLIENT)
            .map(|_| count.admit(a).expect("under the cap"))
            .collect();
        assert!(count.admit(a).is_none(), "one client over its cap");
        let b: IpAddr = [127, 0, 0, 3].into();
        let other = count.admit(b).expect("another client has its own cap");
        drop(other);
        drop(held);
        assert!(count.admit(a).is_some(), "closed connections are uncounted");
        let mut all = Vec::new();
        for i in 0..MAX_CONNECTIONS as u32 {
            let client = IpAddr::from((0x0a00_0000 + i % 64).to_be_bytes());
            if let Some(c) = count.admit(client) {
                all.push(c);
            }
        }
        assert_eq!(all.len(), MAX_CONNECTIONS);
        assert!(count.admit([10, 9, 9, 9].into()).is_none(), "total cap");
    }
}
