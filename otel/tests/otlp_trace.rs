//! A call that crosses three nodes arrives at an OTLP receiver as one trace
//! with the right parent/child links. The receiver is built in the test on
//! the official OpenTelemetry protobuf types, served with tonic.

use clustertop_otel::{LogFormat, OtlpProtocol, TelemetryConfig, TraceConfig};
use clustertop_runtime::dist::DistConfig;
use clustertop_runtime::gen_server::{self, ServerMsg, ServerOptions};
use clustertop_runtime::{CallResult, ExitReason, GenServer, Node, NodeConfig, ServerContext};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument;

#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            for ss in rs.scope_spans {
                spans.extend(ss.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        })
}

/// The last hop: answers with its node's name length.
struct Leaf;

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
struct Middle;

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
            .named_on::<ServerMsg<Leaf>>("c@localhost", "leaf")
            .unwrap();
        CallResult::Reply(leaf.call(v * 10, Duration::from_secs(5)).await.unwrap())
    }
}

fn node(name: &str) -> Node {
    let dist = DistConfig::listen("127.0.0.1:0".parse().unwrap()).cookie("otlp");
    Node::start(NodeConfig::new(name).dist(dist)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_across_three_nodes_is_one_trace() {
    let receiver = Receiver::default();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let service = TraceServiceServer::new(receiver.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve(([127, 0, 0, 1], port).into()),
    );
    let telemetry = clustertop_otel::init(TelemetryConfig {
        node: "a@localhost".into(),
        log_format: LogFormat::Human,
        log_filter: Some("warn".into()),
        log_writer: Some(tracing_subscriber::fmt::writer::BoxMakeWriter::new(
            std::io::sink,
        )),
        prometheus: None,
        traces: Some(TraceConfig {
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            protocol: Some(OtlpProtocol::Grpc),
            service_name: Some("otlp-test".into()),
            sample_ratio: Some(1.0),
        }),
        trace_filter: None,
    })
    .unwrap();

    let (a, b, c) = (
        node("a@localhost"),
        node("b@localhost"),
        node("c@localhost"),
    );
    b.connect(&a.listen_addr().unwrap().to_string())
        .await
        .unwrap();
    c.connect(&a.listen_addr().unwrap().to_string())
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
        .named_on::<ServerMsg<Middle>>("b@localhost", "middle")
        .unwrap();
    let answer = middle
        .call(4, Duration::from_secs(5))
        .instrument(tracing::info_span!("request", node = "a@localhost"))
        .await
        .unwrap();
    assert_eq!(answer, 41);

    telemetry.flush();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans = receiver.0.lock().unwrap().clone();
        let handled = spans.iter().filter(|s| s.name == "handle_call").count();
        if spans.iter().any(|s| s.name == "request") && handled >= 2 {
            break spans;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "spans never arrived: {spans:?}"
        );
        telemetry.flush();
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let find = |name: &str, node_attr: &str| {
        spans
            .iter()
            .find(|s| s.name == name && attr(s, "node").as_deref() == Some(node_attr))
            .unwrap_or_else(|| panic!("no {name} span for {node_attr} in {spans:#?}"))
    };
    let request = find("request", "a@localhost");
    let call_b = find("call", "b@localhost");
    let handle_b = find("handle_call", "b@localhost");
    let call_c = find("call", "c@localhost");
    let handle_c = find("handle_call", "c@localhost");
    // One trace.
    for s in [call_b, handle_b, call_c, handle_c] {
        assert_eq!(
            s.trace_id, request.trace_id,
            "{} is in another trace",
            s.name
        );
    }
    // Each hop is the child of the one before, across the nodes.
    assert_eq!(call_b.parent_span_id, request.span_id);
    assert_eq!(handle_b.parent_span_id, call_b.span_id);
    assert_eq!(call_c.parent_span_id, handle_b.span_id);
    assert_eq!(handle_c.parent_span_id, call_c.span_id);
}
