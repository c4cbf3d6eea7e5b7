//! `crdt_counter`: one node of the article's eventually consistent
//! counter, in the article's form and on the library's CRDTs.
//!
//! ```text
//! crdt_counter --name a@localhost --listen 127.0.0.1:4370 --increments 100
//! crdt_counter --name b@localhost --connect 127.0.0.1:4370 --increments 50
//! ```
//!
//! Each node increments every counter `--increments` times, then prints
//! the three values whenever they change:
//! `values article=150 gcounter=150 awlwwmap=150`.
//!
//! A node that joined a cluster (`--connect`) to add its increments has a
//! bounded job: once the values have not changed for
//! [`SETTLED`] (many sync rounds, so its increments are on the other
//! nodes too), it exits 0. The first node, or one given no increments,
//! serves until stopped.

use clap::Parser;
use clustertop_agent::AgentConfig;
use clustertop_examples::crdt_counter::Counters;
use clustertop_examples::node::{self, NodeArgs};
use std::time::Duration;

/// How long the values must stay the same before a node with a bounded
/// job leaves: ten of the replicas' 200 ms sync rounds.
const SETTLED: Duration = Duration::from_secs(2);

/// One node of the article's CRDT counter.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    node: NodeArgs,
    /// Increments to make once up.
    #[arg(long, default_value_t = 0)]
    increments: u64,
}

async fn main_(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let running = node::boot(&args.node, AgentConfig::default()).await?;
    let counters = Counters::start(&running.node)?;
    for _ in 0..args.increments {
        counters.increment();
    }
    let bounded = args.increments > 0 && !args.node.connect.is_empty();
    let mut last = None;
    let mut changed = tokio::time::Instant::now();
    let mut stop = std::pin::pin!(node::until_stopped());
    loop {
        let values = counters.values().await;
        if last != Some(values) {
            let (article, gcounter, map) = values;
            println!("values article={article} gcounter={gcounter} awlwwmap={map}");
            last = Some(values);
            changed = tokio::time::Instant::now();
        } else if bounded && changed.elapsed() >= SETTLED {
            return Ok(());
        }
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    node::run("crdt_counter", || main_(args))
}
