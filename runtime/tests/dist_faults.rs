//! Bad input and failures: each closes only the offending connection, with
//! a counter, and the node goes on serving real connections.

mod support;

use clustertop_runtime::dist::codec::{self, DEFAULT_MAX_FRAME};
use clustertop_runtime::dist::frame::{Frame, PROTOCOL_VERSION, PeerAddr, RefuseReason};
use clustertop_runtime::dist::{ConnectError, DistConfig, HandshakeError, NodeDownReason};
use clustertop_runtime::{Node, NodeConfig};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_secs(60);

/// A real node can still connect to `target` and they see each other.
async fn still_serves(target: &Node, name: &str) {
    let probe = support::dist_node(name, "secret", TICK);
    assert_eq!(
        probe.connect(&support::addr(target)).await.unwrap(),
        target.name()
    );
    let mut want: Vec<String> = target.nodes();
    want.push(name.to_owned());
    want.sort();
    want.dedup();
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    support::wait_nodes(target, &want, LIMIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_cookie_is_refused_on_both_sides() {
    let a = support::dist_node("a@localhost", "secret", TICK);
    let intruder = support::dist_node("x@localhost", "guess", TICK);
    let err = intruder.connect(&support::addr(&a)).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::Handshake(HandshakeError::Refused(RefuseReason::BadCookie))
        ),
        "{err}"
    );
    assert_eq!(intruder.dist().stats().bad_cookie, 1);
    // The acceptor reaches the same verdict from the initiator's proof.
    let deadline = tokio::time::Instant::now() + LIMIT;
    while a.dist().stats().bad_cookie != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "acceptor did not refuse"
        );
        tokio::task::yield_now().await;
    }
    assert!(a.nodes().is_empty() && intruder.nodes().is_empty());
    still_serves(&a, "ok@localhost").await;
}

/// Opens a raw TCP connection to `a`, writes `bytes`, and waits for `a` to
/// close it.
async fn send_and_expect_closed(a: &Node, bytes: &[u8]) {
    let mut raw = TcpStream::connect(support::addr(a)).await.unwrap();
    raw.write_all(bytes).await.unwrap();
    support::expect_closed(&mut raw, LIMIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_close_only_that_connection() {
    let a = support::dist_node("a@localhost", "secret", TICK);
    send_and_expect_closed(
        &a,
        &[0, 0, 0, 8, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef],
    )
    .await;
    assert_eq!(a.dist().stats().decode_errors, 1);
    still_serves(&a, "ok@localhost").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_length_prefix_is_refused_before_allocation() {
    let a = support::dist_node("a@localhost", "secret", TICK);
    send_and_expect_closed(&a, &[0xff, 0xff, 0xff, 0xf0, 1, 2, 3]).await;
    assert_eq!(a.dist().stats().decode_errors, 1);
    still_serves(&a, "ok@localhost").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_frame_times_out_the_handshake() {
    let config = DistConfig::listen("127.0.0.1:0".parse().unwrap())
        .cookie("secret")
        .handshake_timeout(Duration::from_millis(300));
    let a = Node::start(NodeConfig::new("a@localhost").dist(config)).unwrap();
    // A length prefix promising 100 bytes, then only 10.
    send_and_expect_closed(&a, &[0, 0, 0, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).await;
    assert_eq!(a.dist().stats().handshake_failures, 1);
    still_serves(&a, "ok@localhost").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_mismatch_is_refused_with_a_reason() {
    use futures_util::StreamExt;
    let a = support::dist_node("a@localhost", "secret", TICK);
    let raw = TcpStream::connect(support::addr(&a)).await.unwrap();
    let (r, mut w) = raw.into_split();
    let mut buf = bytes::BytesMut::new();
    let hello = Frame::Hello {
        version: PROTOCOL_VERSION + 7,
        name: "old@localhost".into(),
        creation: 1,
        flags: 0,
        listen: None,
        nonce: [0; 32],
    };
    codec::encode(&hello, &mut buf, DEFAULT_MAX_FRAME).unwrap();
    w.write_all(&buf).await.unwrap();
    let mut frames = tokio_util::codec::FramedRead::new(r, codec::length_codec(DEFAULT_MAX_FRAME));
    let body = frames.next().await.unwrap().unwrap();
    assert_eq!(
        codec::decode(&body).unwrap(),
        Frame::Refused {
            reason: RefuseReason::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs: PROTOCOL_VERSION + 7
            }
        }
    );
    assert!(frames.next().await.is_none(), "closed after the refusal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_handshake_is_refused() {
    let a = support::dist_node("a@localhost", "secret", TICK);
    let b = support::dist_node("b@localhost", "secret", TICK);
    let proxy = support::Proxy::start(support::addr(&a)).await;
    b.connect(&proxy.addr).await.unwrap();
    support::wait_nodes(&a, &["b@localhost"], LIMIT).await;
    let mut events = a.dist().node_events().unwrap();
    b.dist().disconnect("a@localhost");
    support::wait_down(&mut events, "b@localhost", LIMIT).await;

    // Replay everything b sent, on a fresh connection.
    let recording = proxy.recorded.lock().clone();
    send_and_expect_closed(&a, &recording).await;
    assert_eq!(
        a.dist().stats().bad_cookie,
        1,
        "the replayed proof must fail"
    );
    assert!(a.nodes().is_empty());
    still_serves(&a, "ok@localhost").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frame_mid_session_closes_that_link_only() {
    let a = support::dist_node("a@localhost", "secret", TICK);
    let b = support::dist_node("b@localhost", "secret", TICK);
    let c = support::dist_node("c@localhost", "secret", TICK);
    c.connect(&support::addr(&a)).await.unwrap();
    let proxy = support::Proxy::start(support::addr(&a)).await;
    let mut b_events = b.dist().node_events().unwrap();
    b.connect(&proxy.addr).await.unwrap();
    support::wait_nodes(&a, &["b@localhost", "c@localhost"], LIMIT).await;

    proxy.inject(vec![0, 0, 0, 3, 1, 0xff, 0xff]);
    let (reason, _) = support::wait_down(&mut b_events, "a@localhost", LIMIT).await;
    assert_eq!(reason, NodeDownReason::ConnectionClosed);
    assert!(a.dist().stats().decode_errors >= 1);
    // a still holds c, and b (which met c through the mesh) is unaffected.
    assert!(a.nodes().contains(&"c@localhost".to_string()));
    still_serves(&a, "ok@localhost").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_with_a_connected_name_is_refused() {
    let a = support::dist_node("a@localhost", "secret", TICK);
    let b1 = support::dist_node("b@localhost", "secret", TICK);
    let b2 = support::dist_node("b@localhost", "secret", TICK);
    assert_ne!(b1.creation(), b2.creation());
    b1.connect(&support::addr(&a)).await.unwrap();
    let err = b2.connect(&support::addr(&a)).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::Handshake(HandshakeError::PeerRefused(RefuseReason::NameInUse))
        ),
        "{err}"
    );
    assert_eq!(a.nodes(), ["b@localhost"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_is_taken_while_its_old_connection_is_half_open() {
    let a = support::dist_node("a@localhost", "secret", TICK);
    let b1 = support::dist_node("b@localhost", "secret", TICK);
    b1.connect(&support::addr(&a)).await.unwrap();
    support::wait_nodes(&a, &["b@localhost"], LIMIT).await;
    let mut events = a.dist().node_events().unwrap();
    // b1 goes without a seeing it (its FIN lost, a half-open socket).
    assert!(a.dist().cut_connection("b@localhost"));
    assert!(b1.dist().disconnect("a@localhost"));
    drop(b1);

    let b2 = support::dist_node("b@localhost", "secret", TICK);
    b2.connect(&support::addr(&a)).await.unwrap();
    let (reason, _) = support::wait_down(&mut events, "b@localhost", LIMIT).await;
    assert_eq!(reason, NodeDownReason::Stale);
    // The acceptor takes the connection just after it says so.
    support::wait_nodes(&a, &["b@localhost"], LIMIT).await;
    let held: Vec<u32> = a.dist().peer_stats().iter().map(|p| p.creation).collect();
    assert_eq!(held, [b2.creation()], "the new incarnation is held");
    assert_eq!(a.dist().stats().stale_closed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_peer_is_down_within_two_ticks_and_heals() {
    let tick = Duration::from_millis(500);
    let a = support::dist_node("a@localhost", "secret", tick);
    let b = support::dist_node("b@localhost", "secret", tick);
    b.connect(&support::addr(&a)).await.unwrap();
    support::wait_nodes(&a, &["b@localhost"], LIMIT).await;
    let mut a_events = a.dist().node_events().unwrap();
    let mut b_events = b.dist().node_events().unwrap();

    a.dist().set_partitioned("b@localhost", true);
    let (reason, after) = support::wait_down(&mut a_events, "b@localhost", LIMIT).await;
    assert_eq!(reason, NodeDownReason::HeartbeatTimeout);
    assert!(
        after <= tick * 2,
        "a saw b down after {after:?}, more than 2 ticks"
    );
    let (_, after) = support::wait_down(&mut b_events, "a@localhost", LIMIT).await;
    assert!(
        after <= tick * 2,
        "b saw a down after {after:?}, more than 2 ticks"
    );
    // While cut, reconnecting is refused.
    assert!(b.connect(&support::addr(&a)).await.is_err());

    a.dist().set_partitioned("b@localhost", false);
    b.connect(&support::addr(&a)).await.unwrap();
    support::wait_nodes(&a, &["b@localhost"], LIMIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_node_cannot_steer_the_mesh() {
    let a = support::dist_node("a@localhost", "secret", TICK);
    let spy = Node::start(
        NodeConfig::new("spy@localhost").dist(DistConfig::default().cookie("secret").hidden(true)),
    )
    .unwrap();
    let mut events = spy.dist().node_events().unwrap();
    spy.connect(&support::addr(&a)).await.unwrap();
    let bait = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let steer = Frame::Peers {
        peers: vec![PeerAddr {
            name: "bait@localhost".into(),
            listen: bait.local_addr().unwrap().to_string(),
        }],
    };
    assert!(spy.dist().send_raw_frame("a@localhost", steer));
    // The node closes that connection as a protocol error...
    let (reason, _) = support::wait_down(&mut events, "a@localhost", LIMIT).await;
    assert_eq!(reason, NodeDownReason::ConnectionClosed);
    assert_eq!(a.dist().stats().decode_errors, 1);
    // ...and connects nowhere (a connect would come at once).
    assert!(
        tokio::time::timeout(Duration::from_millis(500), bait.accept())
            .await
            .is_err(),
        "the node connected where a hidden node told it to"
    );
    // A hidden node cannot take a global name either.
    let p = spy
        .spawn::<u8, _, _>(|mut ctx| async move { while ctx.recv().await.into_msg().is_some() {} });
    assert!(matches!(
        spy.global().register("spy", &p).await,
        Err(clustertop_runtime::dist::GlobalError::Hidden)
    ));
    still_serves(&a, "probe@localhost").await;
}

/// `h` connected to `a` through a proxy that stops reading what `a` sends.
async fn deaf_peer(a: &Node) -> (Node, support::Proxy) {
    let h = support::dist_node("h@localhost", "secret", TICK);
    let proxy = support::Proxy::start(support::addr(a)).await;
    h.connect(&proxy.addr).await.unwrap();
    support::wait_nodes(a, &["h@localhost"], LIMIT).await;
    proxy.deafen(true);
    (h, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_asks_and_never_reads_the_answers_is_disconnected() {
    let a = support::dist_node("a@localhost", "secret", TICK);
    let mut events = a.dist().node_events().unwrap();
    let (h, _proxy) = deaf_peer(&a).await;
    // Heartbeat requests, each answered by a; the answers pile up. (Paced
    // by h's own queue, so that h is not the one that stops reading.)
    let flood = tokio::spawn(async move {
        let mut seq = 0u64;
        loop {
            let queued = h.dist().peer_stats().first().map_or(0, |p| p.queued_bytes);
            if queued > 256 * 1024 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
            for _ in 0..1024 {
                seq += 1;
                if !h
                    .dist()
                    .send_raw_frame("a@localhost", Frame::Heartbeat { seq, reply: false })
                {
                    return;
                }
            }
            tokio::task::yield_now().await;
        }
    });
    let (reason, _) = support::wait_down(&mut events, "h@localhost", Duration::from_secs(60)).await;
    assert_eq!(reason, NodeDownReason::NotReading);
    flood.abort();
    still_serves(&a, "ok@localhost").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_reads_nothing_for_a_tick_is_disconnected() {
    let tick = Duration::from_millis(800);
    let a = support::dist_node("a@localhost", "secret", tick);
    let mut events = a.dist().node_events().unwrap();
    // h keeps talking (so a hears from it within a's tick) but, behind the
    // proxy, never reads.
    let h = support::dist_node("h@localhost", "secret", TICK);
    let proxy = support::Proxy::start(support::addr(&a)).await;
    h.connect(&proxy.addr).await.unwrap();
    support::wait_nodes(&a, &["h@localhost"], LIMIT).await;
    proxy.deafen(true);
    // a process of a sends to h until the socket stays full for a tick.
    let sink = h.spawn::<Vec<u8>, _, _>(|mut ctx| async move {
        while ctx.recv().await.into_msg().is_some() {}
    });
    sink.enable_remote();
    h.register("sink", sink.id()).unwrap();
    let ear = a
        .spawn::<u8, _, _>(|mut ctx| async move { while ctx.recv().await.into_msg().is_some() {} });
    ear.enable_remote();
    a.register("ear", ear.id()).unwrap();
    let to_a = h.dist().named_on::<u8>("a@localhost", "ear").unwrap();
    h.spawn::<(), _, _>(move |mut ctx| async move {
        loop {
            to_a.send(1);
            let _ = ctx.recv_timeout(Duration::from_millis(50)).await;
        }
    });
    let target = a.dist().named_on::<Vec<u8>>("h@localhost", "sink").unwrap();
    let sender = a.spawn::<(), _, _>(move |mut ctx| async move {
        loop {
            for _ in 0..64 {
                target.send(vec![7u8; 64 * 1024]);
            }
            let _ = ctx.recv_timeout(Duration::from_millis(1)).await;
        }
    });
    let (reason, _) = support::wait_down(&mut events, "h@localhost", LIMIT).await;
    assert_eq!(reason, NodeDownReason::NotReading);
    a.exit(sender.id(), clustertop_runtime::ExitReason::Kill);
}
