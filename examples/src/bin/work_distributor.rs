//! `work_distributor`: one node of the article's work distributor.
//!
//! ```text
//! work_distributor --name a@localhost --listen 127.0.0.1:4370
//! work_distributor --name b@localhost --connect 127.0.0.1:4370 --items 6 --wait-for 2
//! ```
//!
//! Every node can process items for the others. A node given `--items N`
//! waits until `--wait-for` nodes are in the cluster (itself included),
//! processes `item-1` … `item-N` over them in parallel, round robin,
//! prints which node processed each, and exits 0: its job is done. A node
//! given no items serves the others until stopped.

use clap::Parser;
use clustertop_agent::AgentConfig;
use clustertop_examples::node::{self, NodeArgs};
use clustertop_examples::work_distributor;
use std::time::Duration;

/// One node of the article's work distributor.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    node: NodeArgs,
    /// Items to distribute once up (0: only serve the others).
    #[arg(long, default_value_t = 0)]
    items: usize,
    /// Nodes (this one included) to wait for before distributing.
    #[arg(long, default_value_t = 1)]
    wait_for: usize,
}

async fn main_(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let running = node::boot(&args.node, AgentConfig::default()).await?;
    let n = &running.node;
    work_distributor::start_link(n, true);
    if args.items > 0 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while n.nodes().len() + 1 < args.wait_for {
            if tokio::time::Instant::now() > deadline {
                return Err(format!("fewer than {} nodes after 30 s", args.wait_for).into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let items = (1..=args.items).map(|i| format!("item-{i}")).collect();
        for p in work_distributor::process_in_parallel(n, items).await? {
            println!("processed {} on {}", p.item, p.node);
        }
        return Ok(());
    }
    node::until_stopped().await;
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    node::run("work_distributor", || main_(args))
}
