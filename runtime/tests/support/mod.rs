//! Helpers shared by the runtime's integration tests.
#![allow(dead_code, unreachable_pub)]

use clustertop_runtime::{ClockSource, Node, NodeConfig, ProcessId};
use std::future::Future;
use std::time::Duration;

/// A node on tokio's clock, so `start_paused` tests control time.
pub fn node() -> Node {
    Node::start(NodeConfig::new("test@localhost").clock(ClockSource::Tokio)).expect("node starts")
}

/// Polls `cond` every millisecond of (paused or real) tokio time until it
/// holds, for at most `limit`. Panics with `what` otherwise.
pub async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Like [`wait_for`] with an async condition.
pub async fn wait_for_async<F, Fut>(what: &str, limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits until `pid` is no longer alive on `node`.
pub async fn wait_dead(node: &Node, pid: ProcessId) {
    let n = node.clone();
    wait_for(
        &format!("{pid} to exit"),
        Duration::from_secs(10),
        move || !n.is_alive(pid),
    )
    .await;
}
