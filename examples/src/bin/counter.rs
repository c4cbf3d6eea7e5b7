//! `counter`: one node of the article's global counter.
//!
//! ```text
//! counter --name a@localhost --listen 127.0.0.1:4370
//! counter --name b@localhost --connect 127.0.0.1:4370 --increments 3
//! ```
//!
//! Each node starts the counter under its global name; on every node but
//! the first that fails with "already started", as in the article. Then
//! the node makes `--increments` calls (from wherever it runs) and prints
//! each answer and the count. A node that holds the counter, or was given
//! no increments, serves until stopped; one that made its increments on a
//! counter held elsewhere has done its job and exits 0.

use clap::Parser;
use clustertop_agent::AgentConfig;
use clustertop_examples::counter::{self, NAME};
use clustertop_examples::node::{self, NodeArgs};
use clustertop_runtime::{GlobalNameError, StartError};

/// One node of the article's global counter.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    node: NodeArgs,
    /// Calls to `increment` to make once up.
    #[arg(long, default_value_t = 0)]
    increments: u64,
}

async fn main_(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let running = node::boot(&args.node, AgentConfig::default()).await?;
    let n = &running.node;
    let holds = match counter::start_link(n).await {
        Ok(pid) => {
            println!("started {NAME} as {}", pid.id());
            true
        }
        Err(StartError::Global {
            reason: GlobalNameError::Taken,
            ..
        }) => {
            let holder = n.global().holders().into_iter().find(|h| h.name == NAME);
            let at = holder.map_or_else(|| "another node".to_owned(), |h| h.node);
            println!("already started on {at}");
            false
        }
        Err(e) => return Err(e.into()),
    };
    for _ in 0..args.increments {
        println!("incremented to {}", counter::increment(n).await?);
    }
    println!("count {}", counter::get(n).await?);
    if args.increments > 0 && !holds {
        return Ok(());
    }
    node::until_stopped().await;
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    node::run("counter", || main_(args))
}
