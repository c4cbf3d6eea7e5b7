//! `chat`: one node of the article's distributed chat system, with its web
//! page and WebSocket endpoint.
//!
//! ```text
//! chat --name a@localhost --listen 127.0.0.1:4370 --web 127.0.0.1:4000
//! chat --name b@localhost --connect 127.0.0.1:4370 --web 127.0.0.1:4001
//! ```
//!
//! Open `http://127.0.0.1:4000/` and `http://127.0.0.1:4001/` in two
//! browser windows, join the same room, and talk across the nodes. It
//! prints `web http://ADDR/` once the endpoint listens.

use clap::Parser;
use clustertop_agent::AgentConfig;
use clustertop_examples::chat::{ChatSystem, web};
use clustertop_examples::node::{self, NodeArgs};
use std::net::SocketAddr;

/// One node of the article's chat system.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    node: NodeArgs,
    /// Where to serve the page and the WebSocket.
    #[arg(long, default_value = "127.0.0.1:4000")]
    web: SocketAddr,
    /// Also accept the WebSocket from pages of this origin
    /// (`https://host[:port]`; repeatable). By default only the page this
    /// node serves may open it.
    #[arg(long, value_name = "ORIGIN")]
    allow_origin: Vec<String>,
}

async fn main_(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let running = node::boot(&args.node, AgentConfig::default()).await?;
    let chat = ChatSystem::start(&running.node).await?;
    let addr = web::serve_with_origins(chat, args.web, args.allow_origin).await?;
    println!("web http://{addr}/");
    node::until_stopped().await;
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    node::run("chat", || main_(args))
}
