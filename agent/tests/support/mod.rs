//! Helpers shared by the agent's integration tests: clusters of real nodes
//! on loopback TCP, each with an agent, and polling with a deadline.
#![allow(dead_code, unreachable_pub)]

use clustertop_agent::{Agent, AgentConfig, WarningConfig};
use clustertop_runtime::dist::DistConfig;
use clustertop_runtime::{Node, NodeConfig};
use std::future::Future;
use std::time::Duration;

pub const COOKIE: &str = "agent-test-cookie";

/// A fast-moving agent configuration for tests: samples every 100 ms,
/// warnings after 300 ms, mailbox warnings from 200 messages.
pub fn fast_config() -> AgentConfig {
    AgentConfig {
        interval: Duration::from_millis(100),
        peer_timeout: Duration::from_millis(800),
        warnings: WarningConfig {
            mailbox_on: 200,
            mailbox_off: 100,
            long_handler: Duration::from_millis(300),
            hold: Duration::from_millis(300),
            ..WarningConfig::default()
        },
        ..AgentConfig::default()
    }
}

/// A visible node on an ephemeral loopback port.
pub fn node(name: &str) -> Node {
    let config = DistConfig::listen("127.0.0.1:0".parse().unwrap())
        .cookie(COOKIE)
        .tick_time(Duration::from_secs(4))
        .handshake_timeout(Duration::from_secs(2));
    Node::start(NodeConfig::new(name).dist(config)).expect("node starts")
}

/// The `host:port` a node listens on.
pub fn addr(node: &Node) -> String {
    node.dist().listen_addr().expect("listening").to_string()
}

/// `names.len()` nodes in a full mesh, each with an agent.
pub async fn cluster(names: &[&str], config: AgentConfig) -> (Vec<Node>, Vec<Agent>) {
    let nodes: Vec<Node> = names.iter().map(|n| node(n)).collect();
    for n in &nodes[1..] {
        n.connect(&addr(&nodes[0])).await.expect("connects");
    }
    let want = names.len() - 1;
    for n in &nodes {
        wait_for("a full mesh", Duration::from_secs(10), || {
            n.nodes().len() == want
        })
        .await;
    }
    let mut agents = Vec::new();
    for n in &nodes {
        agents.push(Agent::start(n, config.clone()).await.expect("agent starts"));
    }
    (nodes, agents)
}

/// Polls `cond` every 20 ms until it holds, for at most `limit`.
pub async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Like [`wait_for`] with an async condition returning `Some` when done.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
