//! `consensus_store`: one member of the article's `ConsensusStore`, a
//! key-value store replicated by a Raft group.
//!
//! ```text
//! consensus_store --name a@localhost --listen 127.0.0.1:4380 --members a@localhost,b@localhost,c@localhost --data /tmp/cs-a
//! consensus_store --name b@localhost --connect 127.0.0.1:4380 --members a@localhost,b@localhost,c@localhost --data /tmp/cs-b
//! consensus_store --name c@localhost --connect 127.0.0.1:4380 --members a@localhost,b@localhost,c@localhost --data /tmp/cs-c --set greeting=hello
//! ```
//!
//! Each member keeps its log and snapshots under `--data` (disc copies).
//! Once the group has a leader it prints `leader NAME`, then makes its
//! `--set KEY=VALUE` commands (printing `set KEY = VALUE (was …)`), then
//! waits for each `--await KEY` to have a value (linearizable reads) and
//! prints `KEY = VALUE`; then it serves until stopped.

use clap::Parser;
use clustertop_agent::AgentConfig;
use clustertop_examples::consensus_store::{Command, ConsensusStore, GROUP};
use clustertop_examples::node::{self, NodeArgs};
use clustertop_store::{Raft, RaftConfig, Storage};
use std::path::PathBuf;
use std::time::Duration;

/// One member of the article's ConsensusStore.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    node: NodeArgs,
    /// The group's members, by node name (this node among them).
    #[arg(long, value_delimiter = ',', required = true)]
    members: Vec<String>,
    /// Where this member keeps its log and snapshots.
    #[arg(long)]
    data: PathBuf,
    /// `KEY=VALUE` to set once the group has a leader (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// A key to wait for, then print (repeatable).
    #[arg(long = "await", value_name = "KEY")]
    await_keys: Vec<String>,
}

async fn main_(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let running = node::boot(&args.node, AgentConfig::default()).await?;
    let store = Raft::<ConsensusStore>::start(
        &running.node,
        GROUP,
        &args.members,
        Storage::Disc(args.data.clone()),
        RaftConfig::default(),
    )
    .await?;
    while store
        .wait_for_leader(Duration::from_secs(5))
        .await
        .is_none()
    {
        eprintln!("waiting for a majority of {:?}", args.members);
    }
    println!("leader {}", store.status().leader.unwrap_or_default());
    for pair in &args.set {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!("--set {pair:?}: expected KEY=VALUE").into());
        };
        let was = store
            .command(Command::Set(key.to_owned(), value.to_owned()))
            .await?;
        println!("set {key} = {value} (was {was:?})");
    }
    for key in &args.await_keys {
        loop {
            match store.read(key.clone()).await {
                Ok(Some(value)) => {
                    println!("{key} = {value}");
                    break;
                }
                Ok(None) | Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    node::until_stopped().await;
    store.stop().await;
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    node::run("consensus_store", || main_(args))
}
