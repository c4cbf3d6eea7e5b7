//! Flow control on a link: a sender outrunning the connection is suspended
//! once the link's queue passes the busy limit, and resumes, losing
//! nothing, when it drains.

mod support;

use clustertop_runtime::dist::DistConfig;
use clustertop_runtime::{Node, NodeConfig, Received};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);
const BUSY: usize = 256 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_on_a_busy_link_is_suspended_and_resumes() {
    let config = |cookie: &str| {
        let mut c = DistConfig::listen("127.0.0.1:0".parse().unwrap()).cookie(cookie);
        c.busy_limit = BUSY;
        c
    };
    let a = Node::start(NodeConfig::new("a@localhost").dist(config("bp"))).unwrap();
    let b = Node::start(NodeConfig::new("b@localhost").dist(config("bp"))).unwrap();
    const N: u64 = 40_000;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let sink = a.spawn::<(u64, Vec<u8>), _, _>(move |mut ctx| async move {
        for expected in 0..N {
            match ctx.recv().await {
                Received::Msg((seq, _)) => assert_eq!(seq, expected, "lost or reordered"),
                other => panic!("unexpected {other:?}"),
            }
        }
        done_tx.send(()).unwrap();
    });
    sink.enable_remote();
    a.register("sink", sink.id()).unwrap();

    let proxy = support::Proxy::start(support::addr(&a)).await;
    b.connect(&proxy.addr).await.unwrap();
    proxy.pause(true);

    // 40,000 × 1 KiB = 40 MiB, far past what the paused path can absorb.
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    b.spawn::<(), _, _>(move |ctx| async move {
        let sink = ctx
            .node()
            .dist()
            .named_on::<(u64, Vec<u8>)>("a@localhost", "sink")
            .unwrap();
        for seq in 0..N {
            sink.send((seq, vec![0u8; 1024]));
            counter.store(seq + 1, Ordering::Relaxed);
            if seq % 64 == 63 {
                tokio::task::yield_now().await;
            }
        }
    });

    // The sender stalls well short of the end; the queue stays near the limit.
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = sent.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
        assert!(now < N, "the sender was never suspended");
    }
    let queued = b.dist().peer_stats()[0].queued_bytes as usize;
    assert!(
        queued <= BUSY + 64 * 1100,
        "the link queued {queued} bytes, past the busy limit"
    );
    assert!(last < N);

    // Resume the path: everything arrives, in order.
    proxy.pause(false);
    tokio::time::timeout(LIMIT, done_rx).await.unwrap().unwrap();
    assert_eq!(sent.load(Ordering::Relaxed), N);
}
