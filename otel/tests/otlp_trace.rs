//! A call that crosses three nodes arrives at an OTLP receiver as one trace
//! with the right parent/child links. The receiver is built in the test on
//! the official OpenTelemetry protobuf types, served with tonic.

mod support;

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
    let telemetry = support::export_traces_to(format!("http://127.0.0.1:{port}"), "otlp-test");

    let _nodes = support::call_across_three_nodes().await;

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
