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
//!
//! Telemetry as every clustertop node has it: logs on standard error
//! (`RUST_LOG`, default `warn`) and in the agent's ring; Prometheus metrics
//! on `CLUSTERTOP_METRICS` (an address; default a free port of 127.0.0.1,
//! `off` for none); traces, metrics and logs over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (each switched by the standard
//! `OTEL_*` variables).
//!
//! Once its agent runs it prints `listening <addr>` and, when it serves
//! metrics, `metrics http://<addr>/metrics`; it runs until killed.

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
    let mut telemetry = clustertop_otel::TelemetryConfig::new(name.clone());
    telemetry.log_filter = Some(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()));
    telemetry.prometheus = match std::env::var("CLUSTERTOP_METRICS").as_deref() {
        Ok("off") => None,
        Ok(addr) => Some(
            addr.parse()
                .map_err(|e| format!("CLUSTERTOP_METRICS {addr}: {e}"))?,
        ),
        Err(_) => Some(([127, 0, 0, 1], 0).into()),
    };
    telemetry.exports_from_env(None);
    telemetry.extra_layer = Some(clustertop_agent::log_layer(
        clustertop_proto::LogLevel::Info,
    ));
    let telemetry = clustertop_otel::init(telemetry).map_err(|e| e.to_string())?;
    let mut dist = DistConfig::listen(listen);
    if let Ok(ms) = std::env::var("CLUSTERTOP_TICK_MS") {
        let ms: u64 = ms.parse().map_err(|e| format!("CLUSTERTOP_TICK_MS: {e}"))?;
        dist.tick_time = Duration::from_millis(ms);
    }
    let node = Node::start(NodeConfig::new(name.as_str()).dist(dist)).map_err(|e| e.to_string())?;
    // The member it joins is kept and retried, as every binary that forms
    // a cluster does: a pause past the tick, a restart or a partition
    // heals by itself.
    let _formation = match rest.first() {
        Some(addr) => {
            node.connect(addr)
                .await
                .map_err(|e| format!("connect {addr}: {e}"))?;
            Some(
                node.dist()
                    .start_cluster(clustertop_runtime::dist::Static::new([addr.clone()])),
            )
        }
        None => None,
    };
    Agent::start(&node, AgentConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    // One write: a reader that wants the first line only gets both.
    let mut ready = format!(
        "listening {}\n",
        node.dist().listen_addr().expect("listening")
    );
    if let Some(m) = telemetry.prometheus_addr() {
        ready.push_str(&format!("metrics http://{m}/metrics\n"));
    }
    {
        use std::io::Write;
        let mut out = std::io::stdout();
        let _ = out.write_all(ready.as_bytes()).and_then(|()| out.flush());
    }
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
