//! The demo cluster's node: what `clustertop demo` runs in each of its
//! child processes (and what the `demo_node` binary runs on its own). It
//! runs the article's programs together ([`workload`]), with the agent
//! on, so `clustertop` has something real to show: the chat system with a
//! deliberately slow message store on one node, the work distributor, the
//! global counter, and a supervised worker that crashes now and then.
//!
//! A demo node prints `listening ADDR` (then `metrics URL` when it serves
//! metrics) once up and runs until its standard
//! input closes, so the nodes go away with the `clustertop` that started
//! them, however it ends. It serves Prometheus metrics where it is told,
//! and exports traces, metrics and logs over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set
//! (sampled as `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG` say, else
//! [`DEMO_SAMPLE_RATIO`]).

pub mod workload;

use clustertop_agent::{Agent, AgentConfig, WarningConfig};
use clustertop_runtime::dist::DistConfig;
use clustertop_runtime::{Node, NodeConfig};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// One demo node's settings: the command line of `demo_node` and of
/// `clustertop node` (both flatten this), which `clustertop demo` gives
/// each node it starts.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoNodeArgs {
    /// Its name.
    #[arg(long)]
    pub name: String,
    /// Where it listens.
    #[arg(long)]
    pub listen: std::net::SocketAddr,
    /// The first node's address (every node but the first).
    #[arg(long)]
    pub connect: Option<String>,
    /// The cookie (else `CLUSTERTOP_COOKIE`, else `~/.clustertop.cookie`).
    /// Not an argument of its own here: each command line that flattens
    /// these takes its `--cookie` where its other commands do.
    #[arg(skip)]
    pub cookie: Option<String>,
    /// Its place in the cluster, from 1.
    #[arg(long)]
    pub index: usize,
    /// The first node's name.
    #[arg(long)]
    pub first: String,
    /// The node whose message store is slow.
    #[arg(long)]
    pub slow: String,
    /// Where to serve Prometheus metrics (none: no endpoint); when the
    /// port is taken, any free port (printed at start).
    #[arg(long)]
    pub metrics: Option<std::net::SocketAddr>,
}

/// Why a demo node could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoNodeError {
    /// Telemetry could not be set up.
    #[error(transparent)]
    Telemetry(#[from] clustertop_otel::TelemetryError),
    /// The node could not start.
    #[error(transparent)]
    Node(#[from] clustertop_runtime::NodeError),
    /// The node could not reach the first one.
    #[error("connect {addr}: {source}")]
    Connect {
        /// The first node's address.
        addr: String,
        /// Why.
        #[source]
        source: clustertop_runtime::dist::ConnectError,
    },
    /// The agent could not start.
    #[error(transparent)]
    Agent(#[from] clustertop_agent::AgentError),
    /// A program of the workload could not start.
    #[error("demo workload: {0}")]
    Workload(String),
}

/// The demo's warning thresholds: low enough that the slow store is
/// flagged within seconds.
pub fn agent_config() -> AgentConfig {
    AgentConfig {
        warnings: WarningConfig {
            mailbox_on: 500,
            mailbox_off: 250,
            hold: Duration::from_secs(2),
            ..WarningConfig::default()
        },
        ..AgentConfig::default()
    }
}

/// The share of the demo's requests traced when `OTEL_TRACES_SAMPLER`
/// does not say: the demo handles about a thousand messages a second, and
/// a tenth of its chat messages, work items and counter calls is plenty
/// to find in Jaeger while keeping the exporters' queues from dropping.
pub const DEMO_SAMPLE_RATIO: f64 = 0.1;

/// [`DEMO_SAMPLE_RATIO`] unless the standard variable chooses.
fn demo_sample_ratio() -> Option<f64> {
    std::env::var_os("OTEL_TRACES_SAMPLER")
        .is_none()
        .then_some(DEMO_SAMPLE_RATIO)
}

/// Runs one demo node until its standard input closes.
///
/// # Errors
/// [`DemoNodeError`]: telemetry, the listener, the first connection, the
/// agent or the workload.
pub async fn run_node(args: DemoNodeArgs) -> Result<(), DemoNodeError> {
    let mut telemetry = clustertop_otel::TelemetryConfig::new(args.name.clone());
    telemetry.log_filter = Some("warn".into());
    telemetry.log_writer = Some(clustertop_otel::LogWriter::new(std::io::sink));
    telemetry.prometheus = args.metrics;
    telemetry.prometheus_fallback = true;
    telemetry.exports_from_env(None);
    // Over OTLP, the records the agent's ring keeps (the printed ones go
    // nowhere).
    telemetry.otlp_log_filter = Some("info".into());
    if let Some(traces) = &mut telemetry.traces {
        traces.sample_ratio = demo_sample_ratio();
    }
    telemetry.extra_layer = Some(clustertop_agent::log_layer(
        clustertop_proto::LogLevel::Info,
    ));
    let telemetry = clustertop_otel::init(telemetry)?;
    let mut dist = DistConfig::listen(args.listen);
    dist.cookie = args.cookie.clone();
    dist.tick_time = Duration::from_secs(10);
    let node = Node::start(NodeConfig::new(args.name.as_str()).dist(dist))?;
    // The entry is kept and retried: a node paused past the tick, or
    // cut off, comes back by itself.
    let _formation = match &args.connect {
        Some(addr) => {
            node.connect(addr)
                .await
                .map_err(|source| DemoNodeError::Connect {
                    addr: addr.clone(),
                    source,
                })?;
            Some(
                node.dist()
                    .start_cluster(clustertop_runtime::dist::Static::new([addr.clone()])),
            )
        }
        None => None,
    };
    Agent::start(&node, agent_config()).await?;
    let _workload = workload::start(&node, args.index, &args.first, &args.slow)
        .await
        .map_err(|e| DemoNodeError::Workload(e.to_string()))?;
    // Both lines in one write: the parent reads them together.
    let mut ready = format!(
        "listening {}\n",
        node.dist().listen_addr().expect("listening")
    );
    if let Some(m) = telemetry.prometheus_addr() {
        ready.push_str(&format!("metrics http://{m}/metrics\n"));
    }
    // Not `print!`: a parent gone already must not make this panic.
    let mut out = std::io::stdout();
    let _ = std::io::Write::write_all(&mut out, ready.as_bytes());
    let _ = std::io::Write::flush(&mut out);
    tracing::info!(node = %args.name, "demo node up");
    // Runs until the parent closes our standard input (or is gone).
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    Ok(())
}
