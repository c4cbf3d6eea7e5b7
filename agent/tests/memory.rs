//! The agent's memory stays within its bounds: under a flood of a million
//! log records (with a subscriber that cannot keep up) and with a million
//! processes to sample. Heap use is measured by a counting allocator
//! around the system allocator.

mod support;

use clustertop_agent::{Agent, AgentConfig};
use clustertop_client::{Client, ClientConfig};
use clustertop_proto::{LogFilter, LogLevel};
use clustertop_runtime::Received;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter is bookkeeping only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Relaxed);
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const MIB: usize = 1 << 20;

/// The tests measure the one process-wide heap: they run one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_record_flood_stays_within_the_ring_and_a_slow_subscriber_loses_records() {
    let _serial = ONE_AT_A_TIME.lock().await;
    tracing_subscriber::registry()
        .with(clustertop_agent::log_layer(LogLevel::Info))
        .init();
    let node = support::node("flood@localhost");
    let capacity = 4 * MIB;
    let agent = Agent::start(
        &node,
        AgentConfig {
            log_capacity_bytes: capacity,
            ..support::fast_config()
        },
    )
    .await
    .unwrap();
    let client = Client::connect(ClientConfig::new(support::addr(&node)).cookie(support::COOKIE))
        .await
        .unwrap();
    // A subscriber that reads nothing: its stream holds two chunks.
    let mut stream = client
        .subscribe_logs(LogFilter::default(), 2)
        .await
        .unwrap();
    let before = LIVE.load(Relaxed);

    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let flooder = node.spawn::<(), _, _>(move |mut ctx| async move {
        for i in 0..1_000_000u32 {
            tracing::info!(i, "flood record number {i} with some text to fill it");
            if i % 10_000 == 0 {
                // Let the pusher and the sampler run.
                let _ = ctx.recv_timeout(Duration::from_millis(1)).await;
            }
        }
        let _ = done_tx.send(());
    });
    done_rx.await.unwrap();
    let _ = flooder;

    let mem = agent.memory();
    assert!(mem.log_bytes <= capacity, "{mem:?}");
    assert!(mem.log_evicted >= 900_000, "{mem:?}");
    let grown = LIVE.load(Relaxed).saturating_sub(before);
    assert!(
        grown <= capacity + 8 * MIB,
        "heap grew by {} MiB during the flood",
        grown / MIB
    );
    // The subscriber fell behind: it is told how much it lost (in the
    // first chunk pushed after the pusher skipped what the ring evicted).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut dropped = 0;
    while dropped == 0 {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(chunk)) => dropped = chunk.dropped_total,
            Ok(None) | Err(_) => break,
        }
    }
    assert!(dropped > 0, "no drops were counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_a_million_processes_stays_within_64_mib() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let node = support::node("million@localhost");
    const N: usize = 1_000_000;
    let mut pids = Vec::with_capacity(N);
    for _ in 0..N {
        pids.push(node.spawn::<(), _, _>(|mut ctx| async move {
            while let Received::Msg(()) = ctx.recv().await {}
        }));
    }
    support::wait_for("all processes to start", Duration::from_secs(120), || {
        node.introspect().process_count() >= N
    })
    .await;
    let before = LIVE.load(Relaxed);
    let agent = Agent::start(
        &node,
        AgentConfig {
            interval: Duration::from_secs(3600),
            ..AgentConfig::default()
        },
    )
    .await
    .unwrap();
    agent.sample_now().await;
    agent.sample_now().await;
    let mem = agent.memory();
    let grown = LIVE.load(Relaxed).saturating_sub(before);
    assert!(mem.sample_bytes <= 64 * MIB, "{mem:?}");
    assert!(grown <= 64 * MIB, "the agent holds {} MiB", grown / MIB);
    drop(pids);
}
