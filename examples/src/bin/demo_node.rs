//! `demo_node`: one node of the demo cluster, outside `clustertop demo`
//! (which runs the same code as `clustertop node`).
//!
//! ```text
//! demo_node --name demo-1@localhost --listen 127.0.0.1:4370 --index 1 \
//!           --first demo-1@localhost --slow demo-2@localhost
//! demo_node --name demo-2@localhost --listen 127.0.0.1:0 --connect 127.0.0.1:4370 --index 2 \
//!           --first demo-1@localhost --slow demo-2@localhost
//! ```
//!
//! It runs until its standard input closes (Ctrl-D).

use clap::Parser;
use clustertop_examples::demo::{DemoNodeArgs, run_node};

/// One demo node.
#[derive(Debug, Parser)]
struct Args {
    /// Its name.
    #[arg(long)]
    name: String,
    /// Where it listens.
    #[arg(long)]
    listen: std::net::SocketAddr,
    /// The first node's address.
    #[arg(long)]
    connect: Option<String>,
    /// The cookie (default: `CLUSTERTOP_COOKIE`, else `~/.clustertop.cookie`).
    #[arg(long)]
    cookie: Option<String>,
    /// Its place in the cluster, from 1.
    #[arg(long)]
    index: usize,
    /// The first node's name.
    #[arg(long)]
    first: String,
    /// The node whose message store is slow.
    #[arg(long)]
    slow: String,
    /// Where to serve Prometheus metrics.
    #[arg(long)]
    metrics: Option<std::net::SocketAddr>,
}

fn main() -> std::process::ExitCode {
    let a = Args::parse();
    clustertop_examples::node::run("demo_node", || {
        run_node(DemoNodeArgs {
            name: a.name,
            listen: a.listen,
            connect: a.connect,
            cookie: a.cookie,
            index: a.index,
            first: a.first,
            slow: a.slow,
            metrics: a.metrics,
        })
    })
}
