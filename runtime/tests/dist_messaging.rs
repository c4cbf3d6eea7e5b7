//! Messages between processes on different nodes, over real TCP.

mod support;

use clustertop_runtime::{Node, Pid, Received};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::mpsc;

const LIMIT: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize, Deserialize)]
struct Ping {
    n: u64,
    reply_to: Pid<Pong>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Pong {
    n: u64,
    from_node: String,
}

/// Registers on `node` a process that answers every `Ping` to its sender.
fn ponger(node: &Node) -> mpsc::UnboundedReceiver<Option<String>> {
    let (seen_tx, seen_rx) = mpsc::unbounded_channel();
    let pid = node.spawn::<Ping, _, _>(move |mut ctx| async move {
        while let Received::Msg(ping) = ctx.recv().await {
            let sender = ctx.last_sender().and_then(|s| ctx.node().dist().node_of(s));
            seen_tx.send(sender).unwrap();
            assert!(!ping.reply_to.is_local());
            ping.reply_to.send(Pong {
                n: ping.n,
                from_node: ctx.node().name().to_owned(),
            });
        }
    });
    pid.enable_remote();
    node.register("ponger", pid.id()).unwrap();
    seen_rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_by_name_and_reply_to_a_remote_pid() {
    let (a, b) = support::pair(TICK).await;
    let mut seen = ponger(&a);
    let (tx, mut rx) = mpsc::unbounded_channel();
    b.spawn::<Pong, _, _>(move |mut ctx| async move {
        let me = ctx.pid();
        ctx.node()
            .dist()
            .send_named_on("a@localhost", "ponger", Ping { n: 7, reply_to: me })
            .unwrap();
        if let Received::Msg(pong) = ctx.recv().await {
            tx.send(pong).unwrap();
        }
    });
    let pong = tokio::time::timeout(LIMIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        pong,
        Pong {
            n: 7,
            from_node: "a@localhost".into()
        }
    );
    // The receiving side knows which node the message came from.
    let sender = seen.recv().await.unwrap();
    assert_eq!(sender.as_deref(), Some("b@localhost"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_is_kept_across_the_link() {
    let (a, b) = support::pair(TICK).await;
    const N: u64 = 20_000;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let sink = a.spawn::<u64, _, _>(move |mut ctx| async move {
        for expected in 0..N {
            let got = ctx.recv().await.into_msg().unwrap();
            assert_eq!(got, expected, "out of order");
        }
        done_tx.send(()).unwrap();
    });
    sink.enable_remote();
    a.register("sink", sink.id()).unwrap();
    b.spawn::<(), _, _>(move |ctx| async move {
        for i in 0..N {
            ctx.node()
                .dist()
                .send_named_on("a@localhost", "sink", i)
                .unwrap();
        }
    });
    tokio::time::timeout(LIMIT, done_rx.recv())
        .await
        .unwrap()
        .unwrap();
    let peer = &a.dist().peer_stats()[0];
    assert!(peer.frames_in >= N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_of_the_wrong_type_is_a_dead_letter() {
    let (a, b) = support::pair(TICK).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sink = a.spawn::<u64, _, _>(move |mut ctx| async move {
        while let Received::Msg(v) = ctx.recv().await {
            tx.send(v).unwrap();
        }
    });
    sink.enable_remote();
    a.register("numbers", sink.id()).unwrap();
    let before = a.stats().dead_letters;
    b.dist()
        .send_named_on("a@localhost", "numbers", "not a number".to_string())
        .unwrap();
    b.dist()
        .send_named_on("a@localhost", "numbers", 42u64)
        .unwrap();
    // The good message still arrives; the bad one was dropped and counted.
    assert_eq!(
        tokio::time::timeout(LIMIT, rx.recv()).await.unwrap(),
        Some(42)
    );
    assert_eq!(a.stats().dead_letters, before + 1);
    assert_eq!(a.nodes(), ["b@localhost"], "the connection survives");
    // A process that never enabled remote messages does not take them.
    let local_only = a.spawn::<u64, _, _>(|mut ctx| async move {
        ctx.recv().await;
    });
    a.register("local_only", local_only.id()).unwrap();
    b.dist()
        .send_named_on("a@localhost", "local_only", 1u64)
        .unwrap();
    b.dist()
        .send_named_on("a@localhost", "nobody", 1u64)
        .unwrap();
    let deadline = tokio::time::Instant::now() + LIMIT;
    while a.stats().dead_letters < before + 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "dead letters not counted"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_to_an_unconnected_node_is_a_dead_letter() {
    let (a, b) = support::pair(TICK).await;
    let _seen = ponger(&a);
    let mut a_events = a.dist().node_events().unwrap();
    let mut b_events = b.dist().node_events().unwrap();
    a.dist().disconnect("b@localhost");
    support::wait_down(&mut a_events, "b@localhost", LIMIT).await;
    support::wait_down(&mut b_events, "a@localhost", LIMIT).await;
    let before = b.stats().dead_letters;
    b.dist()
        .send_named_on("a@localhost", "ponger", 5u64)
        .unwrap();
    assert_eq!(b.stats().dead_letters, before + 1);
}
