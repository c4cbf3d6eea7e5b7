//! The process table and introspection at scale.

mod support;

use clustertop_runtime::{ClockSource, Node, NodeConfig, ProcessStatus};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_processes_leave_no_trace() {
    let node = Node::start(NodeConfig::new("table@localhost").clock(ClockSource::Fast)).unwrap();
    const N: u64 = 100_000;
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut pids = Vec::with_capacity(N as usize);
    for _ in 0..N {
        let done = done_tx.clone();
        pids.push(node.spawn(move |mut ctx| async move {
            let v: u64 = ctx.recv().await.into_msg().unwrap();
            done.send(v).unwrap();
        }));
    }
    drop(done_tx);
    assert_eq!(node.introspect().process_count(), N as usize);
    for (i, p) in pids.iter().enumerate() {
        p.send(i as u64);
    }
    let mut sum = 0u64;
    let mut handled = 0u64;
    while let Some(v) = done_rx.recv().await {
        sum += v;
        handled += 1;
    }
    assert_eq!(handled, N);
    assert_eq!(sum, N * (N - 1) / 2);
    // Every process has finished its body; wait for the exit paths.
    for p in &pids {
        p.exited().await;
    }
    assert_eq!(
        node.introspect().process_count(),
        0,
        "the process table is empty"
    );
    let stats = node.stats();
    assert_eq!((stats.spawned, stats.exited, stats.crashed), (N, N, 0));
    drop(pids);
}

#[tokio::test(start_paused = true)]
async fn introspection_reports_counters_and_parentage() {
    let node = support::node();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let parent = node.spawn::<u8, _, _>(move |mut ctx| async move {
        let child = ctx.spawn_link::<u8, _, _>(|mut ctx| async move {
            while ctx.recv().await.into_msg().is_some() {}
        });
        for i in 0..3 {
            child.send(i);
        }
        tx.send(child.id()).unwrap();
        ctx.recv().await;
    });
    let child = rx.await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let p = node.introspect().process_info(parent.id()).unwrap();
    let c = node.introspect().process_info(child).unwrap();
    assert_eq!(p.sent, 3);
    assert_eq!((c.received, c.handled, c.mailbox_len), (3, 3, 0));
    assert_eq!(c.parent, Some(parent.id()));
    assert_eq!(c.supervisor, None);
    assert_eq!((p.links, c.links), (1, 1));
    assert_eq!(c.status, ProcessStatus::Waiting);
    assert_eq!(node.introspect().processes().len(), 2);
    let detail = node.introspect().process_detail(parent.id(), 10).unwrap();
    assert_eq!(detail.links, [child]);
    let mut seen = 0;
    node.introspect().for_each_process(|p| {
        assert!(p.id() == parent.id() || p.id() == child);
        seen += 1;
    });
    assert_eq!(seen, 2);
}
