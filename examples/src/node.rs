//! What every example node does before its own work: parse the common
//! flags, set up telemetry (logs, a Prometheus endpoint, and OTLP traces,
//! metrics and logs with `--otlp` or `OTEL_EXPORTER_OTLP_ENDPOINT`), start a distributed node, keep
//! its `--connect` members connected, and start the agent so `clustertop`
//! can attach.
//!
//! A node prints two lines on standard output once it is up, for people
//! and for the programs that start it:
//!
//! ```text
//! listening 127.0.0.1:4370
//! metrics http://127.0.0.1:40112/metrics
//! ```

use clustertop_agent::{Agent, AgentConfig};
use clustertop_runtime::dist::{ClusterHandle, DistConfig, Static};
use clustertop_runtime::{Node, NodeConfig};
use std::net::SocketAddr;
use std::time::Duration;

/// The flags every example node takes.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// This node's name, `name@host`.
    #[arg(long)]
    pub name: String,
    /// Where this node listens for other nodes.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// A node to connect to (`host:port`); repeat for more. The connection
    /// is kept: it is made again whenever it is lost.
    #[arg(long)]
    pub connect: Vec<String>,
    /// The cluster's cookie (default: `CLUSTERTOP_COOKIE`, else
    /// `~/.clustertop.cookie`).
    #[arg(long)]
    pub cookie: Option<String>,
    /// Where to serve Prometheus metrics (default: a free port on
    /// 127.0.0.1, printed at start); `off` for none.
    #[arg(long)]
    pub metrics: Option<String>,
    /// Export traces, metrics and logs to this OTLP collector (gRPC, for
    /// example `http://127.0.0.1:4317`; default:
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, else nothing over OTLP). Each signal
    /// is switched off by its `OTEL_*_EXPORTER=none`; traces are sampled
    /// as `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` say (default:
    /// every trace).
    #[arg(long, value_name = "URL")]
    pub otlp: Option<String>,
    /// The log filter, `RUST_LOG` style (default: `RUST_LOG`, else `info`).
    #[arg(long)]
    pub log: Option<String>,
    /// The heartbeat tick: a node silent for this long is down (ms).
    #[arg(long, default_value_t = 10_000)]
    pub tick_ms: u64,
}

/// A running example node.
#[derive(Debug)]
pub struct Running {
    /// The node.
    pub node: Node,
    /// Its agent.
    pub agent: Agent,
    /// Where Prometheus metrics are served.
    pub metrics: Option<SocketAddr>,
    _formation: Option<ClusterHandle>,
    _telemetry: clustertop_otel::TelemetryGuard,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// A flag's value is wrong.
    #[error("{0}")]
    Flag(String),
    /// Telemetry could not be set up.
    #[error(transparent)]
    Telemetry(#[from] clustertop_otel::TelemetryError),
    /// The node could not start.
    #[error(transparent)]
    Node(#[from] clustertop_runtime::NodeError),
    /// The agent could not start.
    #[error(transparent)]
    Agent(#[from] clustertop_agent::AgentError),
}

impl NodeArgs {
    fn metrics_addr(&self) -> Result<Option<SocketAddr>, BootError> {
        match self.metrics.as_deref() {
            Some("off") => Ok(None),
            Some(addr) => addr
                .parse()
                .map(Some)
                .map_err(|e| BootError::Flag(format!("--metrics {addr}: {e}"))),
            // Port 0: the endpoint takes a free port and says which.
            None => Ok(Some(([127, 0, 0, 1], 0).into())),
        }
    }
}

/// Starts the node the flags describe, with `agent` settings, and prints
/// where it listens and serves metrics.
///
/// # Errors
/// [`BootError`]: a bad flag, telemetry, the node or the agent.
pub async fn boot(args: &NodeArgs, agent: AgentConfig) -> Result<Running, BootError> {
    let metrics = args.metrics_addr()?;
    let mut telemetry = clustertop_otel::TelemetryConfig::new(args.name.clone());
    telemetry.log_filter = args.log.clone();
    telemetry.prometheus = metrics;
    telemetry.exports_from_env(args.otlp.as_deref());
    telemetry.extra_layer = Some(clustertop_agent::log_layer(
        clustertop_proto::LogLevel::Info,
    ));
    let telemetry = clustertop_otel::init(telemetry)?;
    let metrics = telemetry.prometheus_addr();
    let mut dist = DistConfig::listen(args.listen);
    dist.cookie = args.cookie.clone();
    dist.tick_time = Duration::from_millis(args.tick_ms);
    let node = Node::start(NodeConfig::new(args.name.as_str()).dist(dist))?;
    for addr in &args.connect {
        if let Err(e) = node.connect(addr).await {
            // The formation below keeps trying, and says again each
            // minute while a member refuses.
            if e.is_refusal() {
                tracing::warn!(%addr, error = %e, "a cluster member refuses this node (is the cookie the cluster's?); running alone until it accepts");
            } else {
                tracing::warn!(%addr, error = %e, "first connection failed; retrying");
            }
        }
    }
    let formation = (!args.connect.is_empty())
        .then(|| node.dist().start_cluster(Static::new(args.connect.clone())));
    let agent = Agent::start(&node, agent).await?;
    println!(
        "listening {}",
        node.dist()
            .listen_addr()
            .expect("a distributed node listens")
    );
    if let Some(m) = metrics {
        println!("metrics http://{m}/metrics");
    }
    Ok(Running {
        node,
        agent,
        metrics,
        _formation: formation,
        _telemetry: telemetry,
    })
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn until_stopped() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Runs `main` on a multi-threaded tokio runtime and turns its error into
/// a one-line message and exit status 1.
pub fn run<F, E>(program: &str, main: impl FnOnce() -> F) -> std::process::ExitCode
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(main()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
