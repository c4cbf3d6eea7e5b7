//! What a stranger who reaches the port without the cookie can make a node
//! hold: small pre-auth frames, and a bounded number of handshakes in all
//! and per address (the rest closed at once). What it can make a node log:
//! `dist_preauth_logs.rs`.

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
async fn handshakes_past_the_limit_per_address_are_closed_at_once() {
    let a = node("a@localhost", |_| {});
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(connect_from("127.0.0.2", &a).await);
    }
    let mut closed = 0;
    for s in &mut held {
        if closed_within(s, Duration::from_millis(200)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 12, "8 handshakes per address, the rest closed");
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
async fn handshakes_past_the_node_limit_are_closed_at_once() {
    let a = node("a@localhost", |d| {
        d.max_handshakes = 4;
        d.max_handshakes_per_ip = 2;
    });
    let mut held = Vec::new();
    for from in ["127.0.0.2", "127.0.0.3"] {
        for _ in 0..2 {
            held.push(connect_from(from, &a).await);
        }
    }
    let mut late = connect_from("127.0.0.4", &a).await;
    assert!(closed_within(&mut late, AT_ONCE).await);
    for s in &mut held {
        assert!(!closed_within(s, Duration::from_millis(100)).await);
    }
    assert_eq!(a.dist().stats().turned_away, 1);
}
