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
use clustertop_examples::chat::ChatSystem;
use clustertop_examples::chat::web::{self, WebConfig};
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
    /// WebSockets this node serves at once; past it an upgrade gets 503.
    #[arg(long, value_name = "N", default_value_t = WebConfig::default().max_sockets)]
    max_sockets: usize,
    /// WebSockets from one IP address at once; past it an upgrade gets 429.
    #[arg(long, value_name = "N", default_value_t = WebConfig::default().max_sockets_per_address)]
    max_sockets_per_address: usize,
    /// Bytes waiting to be written to one WebSocket before its reader is
    /// disconnected as too slow.
    #[arg(long, value_name = "BYTES", default_value_t = WebConfig::default().max_queued_bytes)]
    max_queued_bytes: usize,
}

async fn main_(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let running = node::boot(&args.node, AgentConfig::default()).await?;
    let chat = ChatSystem::start(&running.node).await?;
    let config = WebConfig {
        allow_origins: args.allow_origin,
        max_sockets: args.max_sockets,
        max_sockets_per_address: args.max_sockets_per_address,
        max_queued_bytes: args.max_queued_bytes,
    };
    let addr = web::serve_with(chat, args.web, config).await?;
    println!("web http://{addr}/");
    node::until_stopped().await;
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    node::run("chat", || main_(args))
}
