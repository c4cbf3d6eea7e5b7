//! What the store's tests share: the article's `ConsensusStore`, and
//! meshes of nodes in this process talking over real TCP on 127.0.0.1.
#![allow(dead_code, unreachable_pub)]

use clustertop_runtime::dist::DistConfig;
use clustertop_runtime::{Node, NodeConfig};
use clustertop_store::{Raft, RaftConfig, RaftServer, Storage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

pub const LIMIT: Duration = Duration::from_secs(20);

/// The article's `MyApp.ConsensusStore`.
pub struct ConsensusStore;

#[derive(Debug, Serialize, Deserialize)]
pub enum Command {
    Set(String, String),
    Get(String),
    /// Changes the state, then panics.
    SetThenPanic(String, String),
}

impl RaftServer for ConsensusStore {
    type State = BTreeMap<String, String>;
    type Command = Command;
    type Reply = Option<String>;
    type Query = String;
    type Answer = Option<String>;

    fn init() -> Self::State {
        BTreeMap::new()
    }

    fn handle_command(command: Command, state: &mut Self::State) -> Option<String> {
        match command {
            Command::Set(k, v) => state.insert(k, v),
            Command::Get(k) => state.get(&k).cloned(),
            Command::SetThenPanic(k, v) => {
                state.insert(k, v);
                panic!("a handler that fails half way");
            }
        }
    }

    fn handle_query(key: String, state: &Self::State) -> Option<String> {
        state.get(&key).cloned()
    }
}

pub fn dist_node(name: &str) -> Node {
    let config = DistConfig::listen("127.0.0.1:0".parse().unwrap())
        .cookie("raft-test-cookie")
        .tick_time(Duration::from_secs(2));
    Node::start(NodeConfig::new(name).dist(config)).expect("node starts")
}

pub async fn mesh(names: &[&str]) -> Vec<Node> {
    let nodes: Vec<Node> = names.iter().map(|n| dist_node(n)).collect();
    let first = nodes[0].dist().listen_addr().unwrap().to_string();
    for n in &nodes[1..] {
        n.connect(&first).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + LIMIT;
    while nodes.iter().any(|n| n.nodes().len() < names.len() - 1) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the mesh did not form"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nodes
}

pub fn config() -> RaftConfig {
    RaftConfig {
        heartbeat: Duration::from_millis(50),
        election_timeout: Duration::from_millis(300),
        ..RaftConfig::default()
    }
}

/// Starts a replica of group `kv` on each of `nodes` (the members), each
/// on disc in its directory of `dirs`, and waits until each knows a leader.
pub async fn group(nodes: &[Node], dirs: &[tempfile::TempDir]) -> Vec<Raft<ConsensusStore>> {
    let members: Vec<String> = nodes.iter().map(|n| n.name().to_owned()).collect();
    let mut replicas = Vec::new();
    for (node, dir) in nodes.iter().zip(dirs) {
        replicas.push(
            Raft::<ConsensusStore>::start(
                node,
                "kv",
                &members,
                Storage::Disc(dir.path().to_owned()),
                config(),
            )
            .await
            .expect("the replica starts"),
        );
    }
    for r in &replicas {
        assert!(r.wait_for_leader(LIMIT).await.is_some(), "no leader");
    }
    replicas
}
