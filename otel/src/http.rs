//! The one way this workspace serves HTTP (the metrics endpoint, the
//! chat's page and WebSocket): an accept loop that bounds what a stranger
//! who reaches the port can make the process hold.
//!
//! # Bounds
//! - At most [`HttpLimits::max_connections`] connections at once; one
//!   accepted past that is closed before it is read.
//! - A request head must arrive within [`HttpLimits::head_timeout`] of the
//!   connection opening or of the last response (hyper's header-read
//!   timeout): a slow or idle connection (slowloris) is closed then.
//! - Out of file descriptors, the loop keeps one in reserve to accept and
//!   close the waiting connection at once, and a failing accept is logged
//!   once, then as a count once a minute.
//! - A WebSocket upgrade leaves the count when it is handed over: the
//!   application bounds its sockets itself. Each request carries the
//!   peer's address as axum's [`ConnectInfo<SocketAddr>`], for a bound per
//!   address.
//!
//! [`ConnectInfo<SocketAddr>`]: axum::extract::ConnectInfo
//!
//! # Cost
//! A semaphore permit and a task per connection; nothing per request
//! beyond hyper's.

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// What one HTTP listener may be made to hold.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Connections at once (default 256).
    pub max_connections: usize,
    /// Time a connection may take to send a request head (default 10 s).
    pub head_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 256,
            head_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `app` on `listener` within `limits` until the runtime stops.
/// `what` names the listener in log lines.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: HttpLimits,
    what: &'static str,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut reserve = std::fs::File::open("/dev/null").ok();
    let mut failures = Failures::default();
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    // Closed before a byte is read.
                    drop(stream);
                    continue;
                };
                let service = TowerToHyperService::new(app.clone().map_request(
                    move |mut req: axum::http::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(ConnectInfo(peer));
                        req
                    },
                ));
                tokio::spawn(async move {
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(limits.head_timeout)
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades();
                    let _ = conn.await;
                    drop(permit);
                });
            }
            Err(e) => {
                let out_of_descriptors = matches!(e.raw_os_error(), Some(23 | 24));
                if out_of_descriptors && reserve.take().is_some() {
                    if let Ok((stream, _)) = listener.accept().await {
                        drop(stream);
                    }
                    reserve = std::fs::File::open("/dev/null").ok();
                }
                failures.note(what, &e);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Failing accepts: the first logged, then a count once a minute.
#[derive(Default)]
struct Failures {
    since: Option<Instant>,
    held: u64,
}

impl Failures {
    fn note(&mut self, what: &str, e: &std::io::Error) {
        match self.since {
            Some(at) if at.elapsed() < Duration::from_secs(60) => self.held += 1,
            _ => {
                if self.held > 0 {
                    tracing::warn!(listener = what, error = %e, repeats = self.held, "accept failed {} more times", self.held);
                } else {
                    tracing::warn!(listener = what, error = %e, "accept failed");
                }
                self.since = Some(Instant::now());
                self.held = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn server(limits: HttpLimits) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        tokio::spawn(serve(listener, app, limits, "test"));
        addr
    }

    /// Whether the server closed `s` within `limit` (reading what it sends).
    async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
        let mut buf = [0u8; 512];
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }

    async fn get(addr: std::net::SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).await.unwrap();
        text
    }

    #[tokio::test]
    async fn a_head_that_never_ends_is_closed_at_the_head_timeout() {
        let limits = HttpLimits {
            max_connections: 8,
            head_timeout: Duration::from_millis(400),
        };
        let addr = server(limits).await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        // One byte every 100 ms: a slowloris, never finishing its head.
        let mut closed = false;
        for _ in 0..20 {
            if slow.write_all(b"x").await.is_err()
                || closed_within(&mut slow, Duration::from_millis(100)).await
            {
                closed = true;
                break;
            }
        }
        assert!(closed, "the slow head was held for 2 s");
        assert!(get(addr).await.ends_with("ok"));
    }

    #[tokio::test]
    async fn connections_past_the_cap_are_closed_and_idle_ones_go() {
        let limits = HttpLimits {
            max_connections: 4,
            head_timeout: Duration::from_millis(400),
        };
        let addr = server(limits).await;
        let mut idle = Vec::new();
        for _ in 0..4 {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut past = TcpStream::connect(addr).await.unwrap();
        assert!(closed_within(&mut past, Duration::from_millis(200)).await);
        // The idle ones send nothing: closed at the head timeout, and the
        // room is there again.
        for s in &mut idle {
            assert!(closed_within(s, Duration::from_secs(2)).await);
        }
        assert!(get(addr).await.ends_with("ok"));
    }
}
