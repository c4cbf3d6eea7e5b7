//! The article's work distributor: a task supervisor on every node, and
//! `process_in_parallel`, which starts one task per item on the nodes in
//! round-robin order — every task first, then awaits them all — and
//! answers `{:processed, item, node}` for each.
//!
//! ```elixir
//! nodes = [node() | Node.list()]
//! work_items
//! |> Enum.with_index()
//! |> Enum.map(fn {item, index} ->
//!   target_node = Enum.at(nodes, rem(index, length(nodes)))
//!   Task.Supervisor.async({WorkDistributor.TaskSupervisor, target_node}, fn -> process_item(item) end)
//! end)
//! |> Enum.map(&Task.await/1)
//! ```

use clustertop_runtime::Node;
use clustertop_runtime::dist::RemoteSpawnError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The name the task is registered under on every node.
pub const TASK: &str = "WorkDistributor.process_item";

/// `Task.await`'s default.
pub const AWAIT: Duration = Duration::from_secs(5);

/// What `process_item` answers: `{:processed, item, node()}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Processed {
    /// The item.
    pub item: String,
    /// The node that processed it.
    pub node: String,
}

/// Makes this node able to run items for the others (the article's
/// `Task.Supervisor` on each node). With `print`, each item is also printed
/// on standard output, as the article's `IO.puts`; it is logged either way.
pub fn start_link(node: &Node, print: bool) {
    let name = node.name().to_owned();
    node.dist().register_task(TASK, move |item: String| {
        let node = name.clone();
        async move { process_item(item, node, print).await }
    });
}

async fn process_item(item: String, node: String, print: bool) -> Processed {
    tracing::info!(item = %item, %node, "processing item");
    if print {
        println!("Processing {item:?} on node {node}");
    }
    // Stands in for real work.
    tokio::time::sleep(Duration::from_millis(10)).await;
    Processed { item, node }
}

/// Processes `items` over this node and every connected node, round
/// robin in node-name order with this node first; answers in item order.
///
/// # Errors
/// The first task that failed (its node went down, it crashed, or it did
/// not answer within [`AWAIT`]).
pub async fn process_in_parallel(
    node: &Node,
    items: Vec<String>,
) -> Result<Vec<Processed>, RemoteSpawnError> {
    let mut nodes = vec![node.name().to_owned()];
    nodes.extend(node.nodes());
    let tasks = items.iter().enumerate().map(|(index, item)| {
        let target = nodes[index % nodes.len()].clone();
        async move {
            node.dist()
                .task_on::<String, Processed>(&target, TASK, item, AWAIT)
                .await
        }
    });
    // Every task is started before any is awaited: the futures are polled
    // together.
    futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .collect()
}
