//! Raft groups (`clustertop-store`): three replicas in this process on
//! loopback TCP, each with disc storage (redb, an fsync per write) in a
//! temporary directory. Commands of 100 bytes are sent to the leader by 1
//! and by 64 concurrent callers; each is timed from the call until the
//! leader has committed and applied it.

use crate::report::Sample;
use clustertop_runtime::dist::DistConfig;
use clustertop_runtime::{Node, NodeConfig};
use clustertop_store::{Raft, RaftConfig, RaftServer, Role, Storage};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A map of keys to 100-byte values.
struct Kv;

impl RaftServer for Kv {
    type State = HashMap<u64, Vec<u8>>;
    type Command = (u64, Vec<u8>);
    type Reply = ();
    type Query = u64;
    type Answer = Option<Vec<u8>>;

    fn init() -> Self::State {
        HashMap::new()
    }

    fn handle_command((key, value): (u64, Vec<u8>), state: &mut Self::State) {
        state.insert(key, value);
    }

    fn handle_query(key: u64, state: &Self::State) -> Option<Vec<u8>> {
        state.get(&key).cloned()
    }
}

async fn group(dirs: &[tempfile::TempDir]) -> (Vec<Node>, Vec<Arc<Raft<Kv>>>) {
    let names = ["r1@localhost", "r2@localhost", "r3@localhost"];
    let nodes: Vec<Node> = names
        .iter()
        .map(|n| {
            let dist = DistConfig::listen("127.0.0.1:0".parse().unwrap()).cookie("bench-raft");
            Node::start(NodeConfig::new(*n).dist(dist)).expect("node starts")
        })
        .collect();
    let first = nodes[0].dist().listen_addr().unwrap().to_string();
    for n in &nodes[1..] {
        n.connect(&first).await.expect("connects");
    }
    while nodes.iter().any(|n| n.nodes().len() < 2) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let members: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut replicas = Vec::new();
    for (node, dir) in nodes.iter().zip(dirs) {
        let config = RaftConfig {
            command_timeout: Duration::from_secs(30),
            ..RaftConfig::default()
        };
        let raft = Raft::<Kv>::start(
            node,
            "bench",
            &members,
            Storage::Disc(dir.path().into()),
            config,
        )
        .await
        .expect("replica starts");
        replicas.push(Arc::new(raft));
    }
    replicas[0]
        .wait_for_leader(Duration::from_secs(30))
        .await
        .expect("a leader");
    (nodes, replicas)
}

/// Commands/s and commit latency with 1 and 64 callers.
pub(crate) async fn commands(quick: bool) -> Vec<Sample> {
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("temp dir"))
        .collect();
    let (_nodes, replicas) = group(&dirs).await;
    let leader = replicas
        .iter()
        .find(|r| r.status().role == Role::Leader)
        .expect("a leader")
        .clone();
    let mut out = Vec::new();
    for callers in [1u64, 64] {
        let per_caller: u64 = match (quick, callers) {
            (true, 1) => 200,
            (true, _) => 20,
            (false, 1) => 2_000,
            (false, _) => 200,
        };
        // Warm-up.
        for i in 0..20 {
            leader
                .command((u64::MAX - i, vec![7; 100]))
                .await
                .expect("committed");
        }
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..callers {
            let leader = leader.clone();
            tasks.push(tokio::spawn(async move {
                let mut h = crate::report::rtt_histogram();
                for i in 0..per_caller {
                    let t = Instant::now();
                    leader
                        .command((c * 1_000_000 + i, vec![c as u8; 100]))
                        .await
                        .expect("committed");
                    h.record(t.elapsed().as_nanos() as u64).expect("in range");
                }
                h
            }));
        }
        let mut h = crate::report::rtt_histogram();
        for t in tasks {
            h.add(t.await.expect("caller")).expect("same bounds");
        }
        let secs = started.elapsed().as_secs_f64();
        let n = callers * per_caller;
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        out.push(Sample {
            scenario: "raft-commands",
            params: vec![("callers", callers.into()), ("commands", n.into())],
            figures: vec![
                ("commands_per_s", n as f64 / secs),
                ("p50_us", us(0.5)),
                ("p99_us", us(0.99)),
                ("max_us", h.max() as f64 / 1000.0),
            ],
        });
    }
    out
}
