//! `clustertop-agent-node`: a standalone node with its agent, for trying
//! the attach protocol out and for tests that need agents in separate OS
//! processes.
//!
//! ```text
//! clustertop-agent-node NAME@HOST LISTEN_ADDR [CONNECT_ADDR]
//! ```
//!
//! The cookie comes from `CLUSTERTOP_COOKIE` (or `~/.clustertop.cookie`),
//! the tick time in milliseconds from `CLUSTERTOP_TICK_MS` (default 60 s).
//! It prints `listening <addr>` once its agent runs, and runs until killed.

use clustertop_agent::{Agent, AgentConfig};
use clustertop_runtime::dist::DistConfig;
use clustertop_runtime::{Node, NodeConfig};
use std::process::ExitCode;
use std::time::Duration;

async fn run(args: &[String]) -> Result<(), String> {
    let [name, listen, rest @ ..] = args else {
        return Err("usage: clustertop-agent-node NAME@HOST LISTEN_ADDR [CONNECT_ADDR]".into());
    };
    let listen = listen.parse().map_err(|e| format!("{listen}: {e}"))?;
    let mut dist = DistConfig::listen(listen);
    if let Ok(ms) = std::env::var("CLUSTERTOP_TICK_MS") {
        let ms: u64 = ms.parse().map_err(|e| format!("CLUSTERTOP_TICK_MS: {e}"))?;
        dist.tick_time = Duration::from_millis(ms);
    }
    let node = Node::start(NodeConfig::new(name.as_str()).dist(dist)).map_err(|e| e.to_string())?;
    if let Some(addr) = rest.first() {
        node.connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
    }
    Agent::start(&node, AgentConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    println!("listening {}", node.listen_addr().expect("listening"));
    std::future::pending::<()>().await;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clustertop-agent-node: {e}");
            ExitCode::FAILURE
        }
    }
}
