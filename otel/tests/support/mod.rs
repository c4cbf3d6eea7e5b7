//! Shared by the trace tests: three nodes and a call that crosses them.
#![allow(dead_code, unreachable_pub)]

use clustertop_runtime::dist::DistConfig;
use clustertop_runtime::gen_server::{self, ServerMsg, ServerOptions};
use clustertop_runtime::{CallResult, ExitReason, GenServer, Node, NodeConfig, ServerContext};
use std::time::Duration;
use tracing::Instrument;

#[allow(unused_imports)] // Each test binary uses its share.
pub use clustertop_testkit::{KillOnDrop as Server, http_get};

/// The last hop: answers with its node's name length.
pub struct Leaf;

impl GenServer for Leaf {
    type Args = ();
    type Call = u64;
    type Reply = u64;
    type Cast = ();
    type Info = ();

    async fn init(_: (), ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        ctx.enable_remote();
        Ok(Leaf)
    }

    async fn handle_call(&mut self, v: u64, _ctx: &mut ServerContext<Self>) -> CallResult<u64> {
        CallResult::Reply(v + 1)
    }
}

/// The middle hop: calls the leaf on node c.
pub struct Middle;

impl GenServer for Middle {
    type Args = ();
    type Call = u64;
    type Reply = u64;
    type Cast = ();
    type Info = ();

    async fn init(_: (), ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        ctx.enable_remote();
        Ok(Middle)
    }

    async fn handle_call(&mut self, v: u64, ctx: &mut ServerContext<Self>) -> CallResult<u64> {
        let leaf = ctx
            .node()
            .dist()
            .named_on::<ServerMsg<Leaf>>("c@localhost", "leaf")
            .unwrap();
        CallResult::Reply(leaf.call(v * 10, Duration::from_secs(5)).await.unwrap())
    }
}

/// Installs telemetry exporting every span over OTLP/gRPC to `endpoint`
/// as `service`, with logs at `warn` to nowhere.
pub fn export_traces_to(endpoint: String, service: &str) -> clustertop_otel::TelemetryGuard {
    use clustertop_otel::{LogFormat, LogWriter, OtlpProtocol, TelemetryConfig, TraceConfig};
    clustertop_otel::init(TelemetryConfig {
        node: "a@localhost".into(),
        log_format: LogFormat::Human,
        log_filter: Some("warn".into()),
        log_writer: Some(LogWriter::new(std::io::sink)),
        prometheus: None,
        prometheus_fallback: false,
        traces: Some(TraceConfig {
            endpoint: Some(endpoint),
            protocol: Some(OtlpProtocol::Grpc),
            service_name: Some(service.into()),
            sample_ratio: Some(1.0),
        }),
        metrics_otlp: None,
        logs_otlp: None,
        otlp_log_filter: None,
        trace_filter: None,
        extra_layer: None,
    })
    .unwrap()
}

pub fn node(name: &str) -> Node {
    let dist = DistConfig::listen("127.0.0.1:0".parse().unwrap()).cookie("otlp");
    Node::start(NodeConfig::new(name).dist(dist)).unwrap()
}

/// Starts nodes a, b, c, a leaf server on c and a middle server on b, and
/// makes a call from a (inside a `request` span) through b to c.
pub async fn call_across_three_nodes() -> (Node, Node, Node) {
    let (a, b, c) = (
        node("a@localhost"),
        node("b@localhost"),
        node("c@localhost"),
    );
    b.connect(&a.dist().listen_addr().unwrap().to_string())
        .await
        .unwrap();
    c.connect(&a.dist().listen_addr().unwrap().to_string())
        .await
        .unwrap();
    while a.nodes().len() < 2 || b.nodes().len() < 2 || c.nodes().len() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gen_server::start::<Leaf>(&c, (), ServerOptions::new().name("leaf"))
        .await
        .unwrap();
    gen_server::start::<Middle>(&b, (), ServerOptions::new().name("middle"))
        .await
        .unwrap();
    let middle = a
        .dist()
        .named_on::<ServerMsg<Middle>>("b@localhost", "middle")
        .unwrap();
    let answer = middle
        .call(4, Duration::from_secs(5))
        .instrument(tracing::info_span!("request", node = "a@localhost"))
        .await
        .unwrap();
    assert_eq!(answer, 41);
    (a, b, c)
}
