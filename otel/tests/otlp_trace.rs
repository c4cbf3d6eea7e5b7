//! A call that crosses three nodes arrives at an OTLP receiver as one trace
//! with the right parent/child links. The receiver (the testkit's) is built
//! on the official OpenTelemetry protobuf types, served with tonic.

mod support;

use clustertop_testkit::otlp::Receiver;
use opentelemetry_proto::tonic::trace::v1::Span;
use std::time::Duration;

fn attr(span: &Span, key: &str) -> Option<String> {
    clustertop_testkit::otlp::attr(&span.attributes, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_across_three_nodes_is_one_trace() {
    let (receiver, port) = Receiver::start();
    let telemetry = support::export_traces_to(format!("http://127.0.0.1:{port}"), "otlp-test");

    let _nodes = support::call_across_three_nodes().await;

    telemetry.flush();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans: Vec<Span> = receiver.with(|r| {
            r.spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| ss.spans.clone())
                .collect()
        });
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
