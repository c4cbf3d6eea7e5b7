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

#[tokio::test(start_paused = true)]
async fn a_scan_reads_every_live_process_as_its_info_does() {
    let node = support::node();
    let quiet = node.spawn::<u8, _, _>(|mut ctx| async move {
        let _ = ctx.recv().await;
        std::future::pending::<()>().await;
    });
    let full = node.spawn_opts::<u8, _, _>(
        clustertop_runtime::SpawnOptions::new().behaviour("full"),
        |_ctx| std::future::pending::<()>(),
    );
    for i in 0..5 {
        full.send(i);
    }
    quiet.send(0);
    let done = node.spawn::<u8, _, _>(|_ctx| async {});
    done.exited().await;
    tokio::time::sleep(Duration::from_millis(1)).await;

    let scan = || {
        let mut seen = Vec::new();
        node.introspect().scan(|c| seen.push(*c));
        seen
    };
    let seen = scan();
    // Live processes only, in slot order.
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].slot < w[1].slot));
    for c in &seen {
        let info = node.introspect().process_info(c.id).unwrap();
        assert_eq!(
            (c.behaviour, c.mailbox_len, c.received, c.sent, c.polls),
            (
                info.behaviour,
                info.mailbox_len,
                info.received,
                info.sent,
                info.polls
            )
        );
        assert_eq!(
            (c.busy, c.utilised, c.memory),
            (info.busy, info.utilised, info.memory)
        );
        assert_eq!(c.spawned_at, info.spawned_at);
        assert_eq!(node.introspect().slot_of(c.id), Some(c.slot));
    }
    let f = seen.iter().find(|c| c.id == full.id()).unwrap();
    assert_eq!((f.behaviour, f.mailbox_len), ("full", 5));
    assert_eq!(
        node.introspect().oldest_message_age(full.id()),
        Some(Duration::from_millis(1))
    );
    assert_eq!(node.introspect().oldest_message_age(quiet.id()), None);

    // An exited process leaves the scan at once, though a handle keeps its
    // record; a process spawned next may take its slot.
    let slot = f.slot;
    node.exit(full.id(), clustertop_runtime::ExitReason::Kill);
    full.exited().await;
    assert!(scan().iter().all(|c| c.id != full.id()));
    drop(full);
    let next = node.spawn_opts::<u8, _, _>(
        clustertop_runtime::SpawnOptions::new().behaviour("next"),
        |_ctx| std::future::pending::<()>(),
    );
    let now = scan();
    assert_eq!(now.len(), 2);
    let n = now.iter().find(|c| c.id == next.id()).unwrap();
    assert_eq!((n.behaviour, n.mailbox_len, n.received), ("next", 0, 0));
    if n.slot == slot {
        // The block was reused: with fresh counters (above).
        assert_ne!(n.id, f.id);
    }
}

/// A GenServer whose casts await: its time in handlers is wall time, not
/// poll time.
struct Sleeper;

impl clustertop_runtime::GenServer for Sleeper {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = Duration;
    type Info = ();

    async fn init(
        _: (),
        _: &mut clustertop_runtime::ServerContext<Self>,
    ) -> Result<Self, clustertop_runtime::ExitReason> {
        Ok(Sleeper)
    }

    async fn handle_cast(
        &mut self,
        d: Duration,
        _: &mut clustertop_runtime::ServerContext<Self>,
    ) -> clustertop_runtime::Flow {
        tokio::time::sleep(d).await;
        clustertop_runtime::Flow::Continue
    }
}

#[tokio::test(start_paused = true)]
async fn utilisation_counts_the_time_a_handler_awaits() {
    use clustertop_runtime::gen_server::{self, ServerOptions};
    let node = support::node();
    let server = gen_server::start::<Sleeper>(&node, (), ServerOptions::new())
        .await
        .unwrap();
    let info = |id| node.introspect().process_info(id).unwrap();
    let before = info(server.id());
    for _ in 0..10 {
        server.cast(Duration::from_millis(20));
    }
    // Mid-way: the handler is suspended in its sleep, and that counts.
    tokio::time::sleep(Duration::from_millis(110)).await;
    let mid = info(server.id());
    assert_eq!(mid.utilised - before.utilised, Duration::from_millis(110));
    tokio::time::sleep(Duration::from_millis(190)).await;
    let after = info(server.id());
    assert_eq!(after.handled - before.handled, 10);
    // Ten handlers of 20 ms each, back to back: 200 ms in handlers, on a
    // clock that does not move while code runs (so no poll time).
    assert_eq!(after.utilised - before.utilised, Duration::from_millis(200));
    assert_eq!(after.busy, before.busy);
    assert!(after.polls >= before.polls + 10, "{} polls", after.polls);
    // Idle in `recv`: nothing more is counted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(info(server.id()).utilised, after.utilised);

    // A process that waits on a timer outside any handler is not utilised.
    let ticker = node.spawn::<u8, _, _>(|mut ctx| async move {
        loop {
            if ctx.try_recv().is_none() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    let t0 = info(ticker.id());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t1 = info(ticker.id());
    assert_eq!(t1.utilised, t0.utilised);
    assert!(t1.polls > t0.polls);
}

#[tokio::test(start_paused = true)]
async fn memory_counts_the_record_the_task_and_the_queue() {
    let node = support::node();
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let p = node.spawn::<[u64; 8], _, _>(|mut ctx| async move {
        let _ = wait.await;
        while ctx.recv().await.into_msg().is_some() {}
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    let empty = node.introspect().process_info(p.id()).unwrap().memory;
    // The record alone is a few hundred bytes.
    assert!((300..4096).contains(&empty), "{empty} B");
    for i in 0..1000 {
        p.send([i; 8]);
    }
    let full = node.introspect().process_info(p.id()).unwrap().memory;
    // Each queued message holds at least its 64 bytes.
    assert!(full - empty >= 64 * 1000, "{empty} B, then {full} B");
    go.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        node.introspect().process_info(p.id()).unwrap().memory,
        empty
    );
}

/// A process spawned with a message sizer counts the heap its queued
/// messages own (here 2,000-byte strings), on the figure the agent scans
/// and on its info alike, and gives it back as it takes them; a GenServer
/// does the same through its options.
#[tokio::test(start_paused = true)]
async fn memory_counts_the_heap_of_queued_messages_when_told_its_size() {
    let node = support::node();
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let p = node.spawn_opts::<String, _, _>(
        clustertop_runtime::SpawnOptions::new().message_heap(|s: &String| s.capacity()),
        |mut ctx| async move {
            let _ = wait.await;
            while ctx.recv().await.into_msg().is_some() {}
        },
    );
    tokio::time::sleep(Duration::from_millis(1)).await;
    let memory = || node.introspect().process_info(p.id()).unwrap().memory;
    let empty = memory();
    for _ in 0..1000 {
        p.send("x".repeat(2_000));
    }
    let full = memory();
    assert!(full - empty >= 2_000 * 1000, "{empty} B, then {full} B");
    let mut scanned = None;
    node.introspect().scan(|c| {
        if c.id == p.id() {
            scanned = Some(c.memory);
        }
    });
    assert_eq!(scanned, Some(full));
    go.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(memory(), empty);
}

#[tokio::test(start_paused = true)]
async fn the_node_remembers_why_and_when_a_process_exited() {
    let node = support::node();
    let p = node.spawn::<u8, _, _>(|mut ctx| async move {
        ctx.recv().await;
        panic!("boom on purpose");
    });
    node.register("doomed", p.id()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(node.introspect().exit_of(p.id()).is_none(), "alive");
    p.send(1);
    p.exited().await;
    let exit = node.introspect().exit_of(p.id()).expect("its exit is kept");
    assert_eq!(exit.id, p.id());
    assert_eq!(exit.name.as_deref(), Some("doomed"));
    assert_eq!(exit.behaviour, "u8");
    assert_eq!(
        exit.reason,
        clustertop_runtime::ExitReason::Panic("boom on purpose".into())
    );
    assert!(exit.at >= Duration::from_millis(50), "{:?}", exit.at);
    // Bounded: the oldest are forgotten.
    for _ in 0..clustertop_runtime::EXITS_KEEP * 2 {
        node.spawn::<u8, _, _>(|_ctx| async {});
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(node.introspect().exit_of(p.id()).is_none());
    assert_eq!(
        node.introspect().recent_exits().len(),
        clustertop_runtime::EXITS_KEEP
    );
}

/// Holds its casts until its gate opens.
struct Gated {
    gate: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl clustertop_runtime::GenServer for Gated {
    type Args = tokio::sync::oneshot::Receiver<()>;
    type Call = ();
    type Reply = ();
    type Cast = String;
    type Info = ();

    async fn init(
        gate: Self::Args,
        _: &mut clustertop_runtime::ServerContext<Self>,
    ) -> Result<Self, clustertop_runtime::ExitReason> {
        Ok(Gated { gate: Some(gate) })
    }

    async fn handle_cast(
        &mut self,
        _: String,
        _: &mut clustertop_runtime::ServerContext<Self>,
    ) -> clustertop_runtime::Flow {
        if let Some(gate) = self.gate.take() {
            let _ = gate.await;
        }
        clustertop_runtime::Flow::Continue
    }
}

#[tokio::test(start_paused = true)]
async fn a_gen_servers_memory_counts_the_heap_of_its_queued_casts() {
    use clustertop_runtime::gen_server::{self, ServerMsg};
    let node = support::node();
    let (go, gate) = tokio::sync::oneshot::channel::<()>();
    let size = |m: &ServerMsg<Gated>| m.as_cast().map_or(0, String::capacity);
    let server = gen_server::start::<Gated>(
        &node,
        gate,
        clustertop_runtime::ServerOptions::new().message_heap(size),
    )
    .await
    .unwrap();
    let memory = || node.introspect().process_info(server.id()).unwrap().memory;
    server.cast(String::new());
    tokio::time::sleep(Duration::from_millis(1)).await;
    let empty = memory();
    for _ in 0..500 {
        server.cast("y".repeat(4_000));
    }
    let full = memory();
    assert!(full - empty >= 4_000 * 500, "{empty} B, then {full} B");
    go.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(memory(), empty);
}
