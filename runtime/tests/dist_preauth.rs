//! What a stranger who reaches the port without the cookie can make a node
//! hold: small pre-auth frames, and a bounded number of handshakes in all
//! and per address, where a newcomer takes the place of the stalest; and
//! that no number of strangers keeps a node with the cookie out. What it
//! can make a node log: `dist_preauth_logs.rs`.

mod support;

use clustertop_runtime::dist::DistConfig;
use clustertop_runtime::{Node, NodeConfig};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const LIMIT: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_secs(60);
/// Well under the 10 s handshake timeout: "at once".
const AT_ONCE: Duration = Duration::from_secs(2);

fn node(name: &str, edit: impl FnOnce(&mut DistConfig)) -> Node {
    let mut dist = DistConfig::listen("127.0.0.1:0".parse().unwrap()).cookie("secret");
    edit(&mut dist);
    Node::start(NodeConfig::new(name).dist(dist)).unwrap()
}

/// A connection to `node` from the loopback address `from`.
async fn connect_from(from: &str, node: &Node) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{from}:0").parse::<SocketAddr>().unwrap())
        .unwrap();
    socket
        .connect(node.dist().listen_addr().unwrap())
        .await
        .unwrap()
}

/// Whether the node closed `stream` within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_frame_before_the_handshake_is_refused_at_once() {
    let a = node("a@localhost", |_| {});
    let mut raw = TcpStream::connect(a.dist().listen_addr().unwrap())
        .await
        .unwrap();
    // A 64 KiB frame announced: far past what a handshake needs, far under
    // the 16 MiB allowed once authenticated.
    raw.write_all(&(64u32 * 1024).to_be_bytes()).await.unwrap();
    raw.write_all(&[0u8; 512]).await.unwrap();
    assert!(
        closed_within(&mut raw, AT_ONCE).await,
        "the node waited for it"
    );
    assert_eq!(a.dist().stats().decode_errors, 1);
    // Frames as large as configured pass once authenticated.
    let b = support::dist_node("b@localhost", "secret", TICK);
    b.connect(&support::addr(&a)).await.unwrap();
    support::remote_call_works(&b, &a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_limit_per_address_the_oldest_handshakes_are_closed() {
    let a = node("a@localhost", |d| d.handshake_step_timeout = LIMIT);
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(connect_from("127.0.0.2", &a).await);
    }
    // 8 handshakes per address: each newcomer past them closed the
    // oldest, so the first 12 are closed and the last 8 held.
    for (i, s) in held.iter_mut().enumerate() {
        let closed =
            closed_within(s, Duration::from_millis(if i < 12 { 2_000 } else { 100 })).await;
        assert_eq!(closed, i < 12, "connection {i}");
    }
    let stats = a.dist().stats();
    assert_eq!(stats.turned_away, 12);
    assert_eq!(stats.handshakes, 8);
    // Another address is served at once.
    let b = support::dist_node("b@localhost", "secret", TICK);
    tokio::time::timeout(AT_ONCE, b.connect(&support::addr(&a)))
        .await
        .expect("a real node is not kept waiting")
        .unwrap();
    // Closing the strangers' connections gives their slots back.
    drop(held);
    support::wait_for("the slots given back", LIMIT, || {
        a.dist().stats().handshakes == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_node_limit_the_stalest_handshake_gives_way() {
    let a = node("a@localhost", |d| {
        d.max_handshakes = 4;
        d.max_handshakes_per_ip = 2;
        d.handshake_step_timeout = LIMIT;
    });
    let mut held = Vec::new();
    for from in ["127.0.0.2", "127.0.0.3"] {
        for _ in 0..2 {
            held.push(connect_from(from, &a).await);
        }
    }
    // None has sent a valid message: the stalest is the oldest.
    let mut late = connect_from("127.0.0.4", &a).await;
    assert!(
        closed_within(&mut held[0], AT_ONCE).await,
        "the oldest goes"
    );
    assert!(!closed_within(&mut late, Duration::from_millis(100)).await);
    for s in &mut held[1..] {
        assert!(!closed_within(s, Duration::from_millis(100)).await);
    }
    assert_eq!(a.dist().stats().turned_away, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_that_stalls_is_closed_after_the_step_timeout() {
    let a = node("a@localhost", |d| {
        d.handshake_step_timeout = Duration::from_millis(300)
    });
    let mut idle = connect_from("127.0.0.2", &a).await;
    assert!(closed_within(&mut idle, AT_ONCE).await);
    assert_eq!(a.dist().stats().handshakes, 0);
}

/// The attack: strangers hold every handshake slot, from the client's own
/// address and from eight others, and reopen each connection the moment
/// it is closed. Every attach with the cookie still succeeds, within 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_number_of_strangers_keeps_a_node_with_the_cookie_out() {
    let a = node("a@localhost", |_| {});
    let target = a.dist().listen_addr().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut attackers = Vec::new();
    // 8 from each of 9 addresses, 127.0.0.1 (the client's) among them.
    for i in 1..=9 {
        for _ in 0..8 {
            let stop = stop.clone();
            attackers.push(tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let socket = TcpSocket::new_v4().unwrap();
                    let from: SocketAddr = format!("127.0.0.{i}:0").parse().unwrap();
                    if socket.bind(from).is_err() {
                        return;
                    }
                    let Ok(mut s) = socket.connect(target).await else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    // Held, idle, until the node closes it; then again.
                    let mut buf = [0u8; 64];
                    let _ = s.read(&mut buf).await;
                }
            }));
        }
    }
    // The slots are full before the first attach.
    support::wait_for("the strangers to hold every slot", LIMIT, || {
        a.dist().stats().handshakes >= 64
    })
    .await;
    for i in 0..15 {
        let b = support::dist_node(&format!("b{i}@localhost"), "secret", TICK);
        let started = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(1), b.connect(&support::addr(&a)))
            .await
            .unwrap_or_else(|_| panic!("attach {i} took over 1 s"))
            .unwrap_or_else(|e| panic!("attach {i} failed: {e}"));
        assert!(started.elapsed() < Duration::from_secs(1));
        b.dist().disconnect(a.name());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in attackers {
        t.abort();
    }
}
