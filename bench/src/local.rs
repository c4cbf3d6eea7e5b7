//! Single-node scenarios: one-way throughput, ring, call round trip, spawn
//! rate and idle memory.

use crate::report::Sample;
use clustertop_runtime::{ExitReason, GenServer, Node, NodeConfig, Pid, Received};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The sizes of the local scenarios, shared by every runtime measured.
pub(crate) mod size {
    /// Messages of `local-oneway`.
    pub(crate) fn oneway(quick: bool) -> u64 {
        if quick { 1_000_000 } else { 10_000_000 }
    }
    /// Ring shapes: (processes, laps).
    pub(crate) fn ring(quick: bool) -> &'static [(usize, u64)] {
        if quick {
            &[(1_000, 100), (100_000, 1)]
        } else {
            &[(1_000, 1_000), (100_000, 10)]
        }
    }
    /// Timed calls of `call-rtt` (a tenth more warm the path up first).
    pub(crate) fn calls(quick: bool) -> u64 {
        if quick { 20_000 } else { 200_000 }
    }
    /// Processes of `spawn`.
    pub(crate) fn spawns(quick: bool) -> u64 {
        if quick { 100_000 } else { 1_000_000 }
    }
    /// Processes of `idle-memory`.
    pub(crate) fn idle(quick: bool) -> usize {
        if quick { 100_000 } else { 1_000_000 }
    }
}

/// The result of `local-oneway`.
pub(crate) fn oneway_sample(n: u64, secs: f64) -> Sample {
    Sample {
        scenario: "local-oneway",
        params: vec![("messages", json!(n))],
        figures: vec![("msgs_per_s", n as f64 / secs), ("seconds", secs)],
    }
}

/// One result of `ring`.
pub(crate) fn ring_sample(size: usize, laps: u64, ns_per_hop: f64) -> Sample {
    Sample {
        scenario: "ring",
        params: vec![("processes", json!(size)), ("laps", json!(laps))],
        figures: vec![("ns_per_hop", ns_per_hop)],
    }
}

/// The result of `spawn`.
pub(crate) fn spawn_sample(n: u64, secs: f64) -> Sample {
    Sample {
        scenario: "spawn",
        params: vec![("processes", json!(n))],
        figures: vec![("spawns_per_s", n as f64 / secs), ("seconds", secs)],
    }
}

/// The result of `idle-memory`: RSS growth over `n` processes, less the
/// `held` bytes of the benchmark's own handles.
pub(crate) fn idle_sample(n: usize, before: u64, after: u64, held: u64) -> Sample {
    let per = (after.saturating_sub(before).saturating_sub(held)) as f64 / n as f64;
    Sample {
        scenario: "idle-memory",
        params: vec![("processes", json!(n))],
        figures: vec![
            ("bytes_per_process", per),
            (
                "rss_delta_mb",
                after.saturating_sub(before) as f64 / 1048576.0,
            ),
        ],
    }
}

fn node() -> Node {
    Node::start(NodeConfig::new("bench@localhost")).expect("node")
}

/// 1 sender → 1 receiver, `u64` messages.
pub(crate) async fn oneway(quick: bool) -> Vec<Sample> {
    let n = size::oneway(quick);
    let node = node();
    let (done_tx, done_rx) = oneshot::channel();
    let receiver = node.spawn::<u64, _, _>(move |mut ctx| async move {
        let mut sum = 0u64;
        for _ in 0..n {
            if let Received::Msg(v) = ctx.recv().await {
                sum = sum.wrapping_add(v);
            }
        }
        done_tx.send(sum).unwrap();
    });
    let start = Instant::now();
    node.spawn::<(), _, _>(move |_ctx| async move {
        for i in 0..n {
            receiver.send(i);
        }
    });
    let sum = done_rx.await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(sum, n * (n - 1) / 2);
    vec![oneway_sample(n, secs)]
}

#[derive(Debug)]
enum RingMsg {
    Next(Pid<RingMsg>),
    Token(u64),
}

/// A token passed `laps` times around a ring of `size` processes.
async fn ring_once(size: usize, laps: u64) -> f64 {
    let node = node();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let done = std::sync::Arc::new(parking_lot_free::Slot::new(done_tx));
    let mut pids = Vec::with_capacity(size);
    for _ in 0..size {
        let done = done.clone();
        pids.push(node.spawn::<RingMsg, _, _>(move |mut ctx| async move {
            let mut next = None;
            loop {
                match ctx.recv().await {
                    Received::Msg(RingMsg::Next(p)) => next = Some(p),
                    Received::Msg(RingMsg::Token(0)) => {
                        done.fire();
                        return;
                    }
                    Received::Msg(RingMsg::Token(hops)) => {
                        if let Some(n) = &next {
                            n.send(RingMsg::Token(hops - 1));
                        }
                    }
                    _ => {}
                }
            }
        }));
    }
    for i in 0..size {
        pids[i].send(RingMsg::Next(pids[(i + 1) % size].clone()));
    }
    let hops = size as u64 * laps;
    let start = Instant::now();
    pids[0].send(RingMsg::Token(hops));
    done_rx.await.unwrap();
    let ns = start.elapsed().as_nanos() as f64 / hops as f64;
    for p in &pids {
        node.exit(p.id(), ExitReason::Kill);
    }
    while node.introspect().process_count() > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    ns
}

/// A one-shot signal any process may fire.
mod parking_lot_free {
    use std::sync::Mutex;
    use tokio::sync::oneshot;

    pub(crate) struct Slot(Mutex<Option<oneshot::Sender<()>>>);

    impl Slot {
        pub(crate) fn new(tx: oneshot::Sender<()>) -> Self {
            Slot(Mutex::new(Some(tx)))
        }
        pub(crate) fn fire(&self) {
            if let Some(tx) = self.0.lock().expect("not poisoned").take() {
                let _ = tx.send(());
            }
        }
    }
}

pub(crate) async fn ring(quick: bool) -> Vec<Sample> {
    let mut out = Vec::new();
    for &(size, laps) in size::ring(quick) {
        out.push(ring_sample(size, laps, ring_once(size, laps).await));
    }
    out
}

/// Sequential calls from a client process to a GenServer.
pub(crate) async fn call_rtt(quick: bool) -> Vec<Sample> {
    let n = size::calls(quick);
    let node = node();
    let server = crate::remote::Echo::start(&node, ()).await.unwrap();
    let (tx, rx) = oneshot::channel();
    node.spawn::<(), _, _>(move |_ctx| async move {
        let server = &server;
        let h = crate::report::time_calls(n, |i| async move {
            server.call(i, Duration::from_secs(5)).await.unwrap()
        })
        .await;
        tx.send(h).unwrap();
    });
    let h = rx.await.unwrap();
    vec![crate::report::rtt_sample("call-rtt", n, &h)]
}

/// Spawn and exit of many processes, spawned by one process (as a BEAM
/// benchmark spawns from a process).
pub(crate) async fn spawn(quick: bool) -> Vec<Sample> {
    let n = size::spawns(quick);
    let node = node();
    let start = Instant::now();
    node.spawn::<(), _, _>(move |ctx| async move {
        for i in 0..n {
            ctx.node().spawn::<(), _, _>(|_ctx| async {});
            // Let the scheduler run what was spawned, as the BEAM's
            // reduction counting would preempt a spawning process.
            if i % 128 == 127 {
                tokio::task::yield_now().await;
            }
        }
    });
    while node.stats().exited < n + 1 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(node.introspect().process_count(), 0);
    vec![spawn_sample(n, secs)]
}

/// Resident memory of this OS process.
pub(crate) fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Resident memory added per idle process waiting in `recv`.
pub(crate) async fn idle_memory(quick: bool) -> Vec<Sample> {
    let n = size::idle(quick);
    let node = node();
    // Warm up the allocator and runtime so the delta is the processes'.
    let warm: Vec<_> = (0..1000)
        .map(|_| {
            node.spawn::<u64, _, _>(|mut ctx| async move {
                ctx.recv().await;
            })
        })
        .collect();
    for p in &warm {
        p.send(0);
    }
    while node.introspect().process_count() > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let before = rss_bytes();
    let mut pids = Vec::with_capacity(n);
    let vec_bytes = (n * std::mem::size_of::<Pid<u64>>()) as u64;
    for _ in 0..n {
        pids.push(node.spawn::<u64, _, _>(|mut ctx| async move {
            ctx.recv().await;
        }));
    }
    // Let every process run to its first `recv`.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_bytes();
    for p in &pids {
        p.send(0);
    }
    while node.introspect().process_count() > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    vec![idle_sample(n, before, after, vec_bytes)]
}
