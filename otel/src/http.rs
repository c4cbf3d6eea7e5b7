//! The one way this workspace serves HTTP (the metrics endpoint, the
//! chat's page and WebSocket): an accept loop that bounds what a stranger
//! who reaches the port can make the process hold.
//!
//! # Bounds
//! - At most [`HttpLimits::max_connections`] connections at once. A
//!   connection accepted past that takes the place of the one that has
//!   waited longest without a request in progress (never a request first,
//!   then the longest idle), so idle strangers cannot keep a request out;
//!   if every connection is mid-request, the newcomer is closed before it
//!   is read.
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
//! A task and a small record per connection; per request, four relaxed
//! atomic updates. A connection past the cap scans
//! the open ones once (at most `max_connections`, under a lock).

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Notify;
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
    let conns = Arc::new(Conns::new(limits.max_connections.max(1)));
    let mut reserve = std::fs::File::open("/dev/null").ok();
    let mut failures = Failures::default();
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Some(conn) = conns.admit() else {
                    // Every connection is mid-request: closed before a
                    // byte is read.
                    drop(stream);
                    continue;
                };
                let tracked = conn.clone();
                let service = TowerToHyperService::new(
                    app.clone()
                        .map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                            req.extensions_mut().insert(ConnectInfo(peer));
                            req
                        })
                        .map_future(move |answer| {
                            let in_flight = InFlight::start(&tracked);
                            async move {
                                let answer = answer.await;
                                drop(in_flight);
                                answer
                            }
                        }),
                );
                let conns = conns.clone();
                tokio::spawn(async move {
                    let serving = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(limits.head_timeout)
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades();
                    tokio::select! {
                        _ = serving => {}
                        () = conn.evicted.notified() => {}
                    }
                    conns.remove(&conn);
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

/// The open connections. When all places are taken, a newcomer takes the
/// place of the connection that has waited longest without a request in
/// progress: one that never sent a request head first, then the one idle
/// longest since its last response. A connection is never closed while
/// its request is being handled; if all are, the newcomer is closed.
struct Conns {
    places: usize,
    open: parking_lot::Mutex<Vec<Arc<Conn>>>,
    started: Instant,
}

/// One open connection.
struct Conn {
    /// Requests whose handling has begun.
    requests: AtomicU32,
    /// Requests being handled now.
    in_flight: AtomicU32,
    /// When it opened or last finished a request, ms since the listener
    /// started.
    idle_since: AtomicU64,
    /// Told when its place is taken.
    evicted: Notify,
    /// The listener's start, for `idle_since`.
    epoch: Instant,
}

impl Conn {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

impl Conns {
    fn new(places: usize) -> Self {
        Conns {
            places,
            open: parking_lot::Mutex::new(Vec::with_capacity(places.min(1024))),
            started: Instant::now(),
        }
    }

    /// A place for a new connection, evicting as the type's docs say;
    /// `None` when every open connection is mid-request.
    fn admit(self: &Arc<Self>) -> Option<Arc<Conn>> {
        let mut open = self.open.lock();
        if open.len() >= self.places {
            let stalest = open
                .iter()
                .enumerate()
                .filter(|(_, c)| c.in_flight.load(Relaxed) == 0)
                .min_by_key(|(_, c)| (c.requests.load(Relaxed) > 0, c.idle_since.load(Relaxed)))
                .map(|(i, _)| i)?;
            let gone = open.swap_remove(stalest);
            gone.evicted.notify_one();
        }
        let conn = Arc::new(Conn {
            requests: AtomicU32::new(0),
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(self.started.elapsed().as_millis() as u64),
            evicted: Notify::new(),
            epoch: self.started,
        });
        open.push(conn.clone());
        Some(conn)
    }

    fn remove(&self, conn: &Arc<Conn>) {
        let mut open = self.open.lock();
        if let Some(i) = open.iter().position(|c| Arc::ptr_eq(c, conn)) {
            open.swap_remove(i);
        }
    }
}

/// Marks a request in progress on its connection, from its head's
/// arrival until its response is ready.
struct InFlight(Arc<Conn>);

impl InFlight {
    fn start(conn: &Arc<Conn>) -> Self {
        conn.requests.fetch_add(1, Relaxed);
        conn.in_flight.fetch_add(1, Relaxed);
        InFlight(conn.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.idle_since.store(self.0.now_ms(), Relaxed);
        self.0.in_flight.fetch_sub(1, Relaxed);
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
        let app = axum::Router::new()
            .route("/", axum::routing::get(|| async { "ok" }))
            .route(
                "/slow",
                axum::routing::get(|| async {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    "slow"
                }),
            );
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
        get_path(addr, "/").await
    }

    async fn get_path(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
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

    /// Idle strangers holding every place cannot keep a request out: the
    /// newcomer takes the place of the one that has waited longest, and
    /// a connection whose request is being handled is never the one.
    #[tokio::test]
    async fn idle_connections_give_way_and_busy_ones_do_not() {
        let limits = HttpLimits {
            max_connections: 4,
            head_timeout: Duration::from_secs(30),
        };
        let addr = server(limits).await;
        // Four idle connections, never sending a byte.
        let mut idle = Vec::new();
        for _ in 0..4 {
            idle.push(TcpStream::connect(addr).await.unwrap());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A request gets through, and the oldest idle one was closed.
        assert!(get(addr).await.ends_with("ok"));
        assert!(closed_within(&mut idle[0], Duration::from_secs(1)).await);
        // Four requests being handled (a slow handler) hold their places:
        // a newcomer is closed, and each of them is answered.
        let slow: Vec<_> = (0..4)
            .map(|_| tokio::spawn(async move { get_path(addr, "/slow").await }))
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut past = TcpStream::connect(addr).await.unwrap();
        assert!(closed_within(&mut past, Duration::from_millis(500)).await);
        for s in slow {
            assert!(s.await.unwrap().ends_with("slow"));
        }
        assert!(get(addr).await.ends_with("ok"));
    }
}
