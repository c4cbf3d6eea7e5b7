//! A service of your own with the agent inside, so `clustertop` can watch
//! it: a node that listens, its telemetry, the agent, and a small workload
//! (a GenServer counter and a client calling it ten times a second).
//!
//! ```text
//! CLUSTERTOP_COOKIE=secret cargo run -p clustertop-agent --example service -- a@localhost 127.0.0.1:4370
//! CLUSTERTOP_COOKIE=secret cargo run -p clustertop-agent --example service -- b@localhost 127.0.0.1:4371 127.0.0.1:4370
//! cargo run -p clustertop -- --node 127.0.0.1:4370 --cookie secret
//! ```
//!
//! The cookie comes from `CLUSTERTOP_COOKIE`, else `~/.clustertop.cookie`
//! (created with mode 0600 on first use). Ctrl-C stops it.

use clustertop_agent::{Agent, AgentConfig, log_layer};
use clustertop_proto::LogLevel;
use clustertop_runtime::dist::DistConfig;
use clustertop_runtime::gen_server::{self, ServerOptions};
use clustertop_runtime::{
    CallResult, ExitReason, Flow, GenServer, Node, NodeConfig, ServerContext,
};
use std::time::Duration;

/// The service's state: a count.
struct Counter(u64);

/// What the counter is asked.
#[derive(Debug)]
enum Ask {
    /// Add one and answer the new count.
    Bump,
}

impl GenServer for Counter {
    type Args = ();
    type Call = Ask;
    type Reply = u64;
    type Cast = ();
    type Info = ();

    async fn init(_: (), _ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        Ok(Counter(0))
    }

    async fn handle_call(&mut self, ask: Ask, _ctx: &mut ServerContext<Self>) -> CallResult<u64> {
        match ask {
            Ask::Bump => {
                self.0 += 1;
                if self.0 % 100 == 0 {
                    tracing::info!(count = self.0, "the counter passed another hundred");
                }
                CallResult::Reply(self.0)
            }
        }
    }

    async fn handle_cast(&mut self, _: (), _ctx: &mut ServerContext<Self>) -> Flow {
        Flow::Continue
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, listen, rest @ ..] = args.as_slice() else {
        return Err("usage: service NAME@HOST LISTEN_ADDR [CONNECT_ADDR]".into());
    };
    // Logs (and the agent's log ring), metrics and traces: one call.
    let mut telemetry = clustertop_otel::TelemetryConfig::new(name.clone());
    telemetry.extra_layer = Some(log_layer(LogLevel::Info));
    let _telemetry = clustertop_otel::init(telemetry)?;

    // A node that listens, so clustertop (and other nodes) can reach it.
    let node =
        Node::start(NodeConfig::new(name.clone()).dist(DistConfig::listen(listen.parse()?)))?;
    if let Some(peer) = rest.first() {
        node.connect(peer).await?;
    }
    // The agent: what clustertop attaches to.
    let _agent = Agent::start(&node, AgentConfig::default()).await?;

    // The service itself.
    let counter =
        gen_server::start::<Counter>(&node, (), ServerOptions::new().name("counter")).await?;
    node.spawn::<(), _, _>(move |_ctx| async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            if counter
                .call(Ask::Bump, Duration::from_secs(5))
                .await
                .is_err()
            {
                break;
            }
        }
    });

    let addr = node
        .dist()
        .listen_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    println!("{name} listening on {addr}; watch it with: clustertop --node {addr}");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
