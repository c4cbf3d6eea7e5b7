//! The `metrics` facade: node counters, gauges and call histograms.
//! In its own test binary: it installs the global recorder.

use clustertop_runtime::{
    CallResult, ClockSource, ExitReason, GenServer, Node, NodeConfig, ServerContext,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use std::time::Duration;

struct Echo;

impl GenServer for Echo {
    type Args = ();
    type Call = u32;
    type Reply = u32;
    type Cast = ();
    type Info = ();

    async fn init(_: (), _ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        Ok(Echo)
    }

    async fn handle_call(&mut self, v: u32, _ctx: &mut ServerContext<Self>) -> CallResult<u32> {
        CallResult::Reply(v)
    }
}

#[tokio::test(start_paused = true)]
async fn node_metrics_count_spawns_exits_dead_letters_and_calls() {
    // Nodes register their metrics with the global recorder; a node name of
    // its own keeps this test's series apart from the other test's.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::set_global_recorder(recorder).unwrap();
    let node = Node::start(NodeConfig::new("metrics@localhost").clock(ClockSource::Tokio)).unwrap();

    let server = Echo::start(&node, ()).await.unwrap();
    server.call(1, Duration::from_secs(1)).await.unwrap();
    let crasher = node.spawn::<(), _, _>(|_ctx| async { panic!("crash") });
    crasher.exited().await;
    let quiet = node.spawn::<u8, _, _>(|_ctx| async {});
    quiet.exited().await;
    quiet.send(1);

    let snapshot = snapshotter.snapshot().into_vec();
    let find = |name: &str, label: Option<(&str, &str)>| {
        snapshot
            .iter()
            .find(|(key, _, _, _)| {
                let k = key.key();
                k.name() == name
                    && k.labels()
                        .any(|l| l.key() == "node" && l.value() == "metrics@localhost")
                    && label
                        .is_none_or(|(lk, lv)| k.labels().any(|l| l.key() == lk && l.value() == lv))
            })
            .map(|(_, _, _, v)| v)
            .unwrap_or_else(|| panic!("metric {name} {label:?} missing"))
    };
    assert_eq!(
        find("clustertop_processes_spawned_total", None),
        &DebugValue::Counter(3)
    );
    assert_eq!(
        find(
            "clustertop_processes_exited_total",
            Some(("reason", "panic"))
        ),
        &DebugValue::Counter(1)
    );
    assert_eq!(
        find(
            "clustertop_processes_exited_total",
            Some(("reason", "normal"))
        ),
        &DebugValue::Counter(1)
    );
    assert_eq!(
        find("clustertop_dead_letters_total", None),
        &DebugValue::Counter(1)
    );
    match find(
        "clustertop_call_duration_seconds",
        Some(("behaviour", "Echo")),
    ) {
        DebugValue::Histogram(samples) => assert_eq!(samples.len(), 1),
        other => panic!("expected a histogram, got {other:?}"),
    }
    assert_eq!(
        find("clustertop_processes", None),
        &DebugValue::Gauge(1.0.into())
    );
}
