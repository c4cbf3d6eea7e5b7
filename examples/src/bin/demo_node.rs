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
    #[command(flatten)]
    node: DemoNodeArgs,
    /// The cookie (default: `CLUSTERTOP_COOKIE`, else `~/.clustertop.cookie`).
    #[arg(long)]
    cookie: Option<String>,
}

fn main() -> std::process::ExitCode {
    let Args { mut node, cookie } = Args::parse();
    node.cookie = cookie;
    clustertop_examples::node::run("demo_node", || run_node(node))
}
