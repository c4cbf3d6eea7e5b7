//! A group's figures through the `metrics` facade (what the Prometheus
//! endpoint serves): commands counted by result and timed, and each
//! replica's term, role and indexes. In its own test binary: it installs
//! the global recorder.

mod support;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use std::collections::BTreeMap;
use std::time::Duration;
use support::{Command, LIMIT, group, mesh};

type Series = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// Every series now (a snapshot takes the counters' and histograms'
/// values: read them all from one).
fn series(snap: &Snapshotter) -> Series {
    snap.snapshot().into_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_groups_commands_and_replicas_are_measured() {
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    metrics::set_global_recorder(recorder).unwrap();
    let nodes = mesh(&["a@localhost", "b@localhost", "c@localhost"]).await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let members: Vec<String> = nodes.iter().map(|n| n.name().to_owned()).collect();
    let kv = group(&nodes, &dirs).await;
    for i in 0..5 {
        kv[1]
            .command(Command::Set(format!("k{i}"), "v".into()))
            .await
            .unwrap();
    }
    let _ = kv[1]
        .command(Command::SetThenPanic("x".into(), "y".into()))
        .await;
    // Every replica applies the six commands (after the leader's first
    // entries). A snapshot takes the values it reads (counters and gauges
    // back to 0): merge the snapshots, counters summed and gauges as last
    // set, until the gauges show it.
    let mut merged: BTreeMap<String, f64> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + LIMIT;
    let applied_everywhere = |merged: &BTreeMap<String, f64>| {
        members.iter().all(|m| {
            merged
                .get(&format!("clustertop_raft_applied_index {m} -"))
                .is_some_and(|&v| v >= 6.0)
        })
    };
    loop {
        for (key, _, _, v) in series(&snap) {
            let k = key.key();
            let label = |n: &str| {
                k.labels()
                    .find(|l| l.key() == n)
                    .map_or("-".to_owned(), |l| l.value().to_owned())
            };
            let id = format!("{} {} {}", k.name(), label("node"), label("result"));
            match v {
                DebugValue::Counter(c) => *merged.entry(id).or_default() += c as f64,
                DebugValue::Histogram(h) => *merged.entry(id).or_default() += h.len() as f64,
                DebugValue::Gauge(g) if g.into_inner() != 0.0 => {
                    merged.insert(id, g.into_inner());
                }
                DebugValue::Gauge(_) => {
                    merged.entry(id).or_default();
                }
            }
        }
        if applied_everywhere(&merged) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{merged:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let get = |name: &str, node: &str, result: Option<&str>| {
        merged
            .get(&format!("{name} {node} {}", result.unwrap_or("-")))
            .copied()
    };
    let b = "b@localhost";
    assert_eq!(
        get("clustertop_raft_commands_total", b, Some("ok")),
        Some(5.0)
    );
    assert_eq!(
        get("clustertop_raft_commands_total", b, Some("failed")),
        Some(1.0)
    );
    assert_eq!(get("clustertop_raft_command_seconds", b, None), Some(6.0));
    for m in &members {
        assert!(get("clustertop_raft_applied_index", m, None).unwrap() >= 6.0);
        assert!(get("clustertop_raft_term", m, None).unwrap() >= 1.0);
        assert_eq!(get("clustertop_raft_members", m, None), Some(3.0));
    }
    let leaders: f64 = members
        .iter()
        .map(|m| get("clustertop_raft_leader", m, None).unwrap())
        .sum();
    assert_eq!(leaders, 1.0);
}
