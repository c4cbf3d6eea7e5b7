//! A command's span on the caller and its apply span on each replica are
//! one trace, as an OTLP receiver (the testkit's, built on the official
//! OpenTelemetry protobuf types) receives them.

mod support;

use clustertop_testkit::otlp::Receiver;
use opentelemetry_proto::tonic::trace::v1::Span;
use std::time::Duration;
use support::{Command, group, mesh};

fn export_traces_to(endpoint: String) -> clustertop_otel::TelemetryGuard {
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
            service_name: Some("raft-trace-test".into()),
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

fn attr(span: &Span, key: &str) -> Option<String> {
    clustertop_testkit::otlp::attr(&span.attributes, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commands_span_and_every_replicas_apply_are_one_trace() {
    let (receiver, port) = Receiver::start();
    let telemetry = export_traces_to(format!("http://127.0.0.1:{port}"));
    let nodes = mesh(&["a@localhost", "b@localhost", "c@localhost"]).await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let members: Vec<String> = nodes.iter().map(|n| n.name().to_owned()).collect();
    let kv = group(&nodes, &dirs).await;
    // From a follower, so the command crosses to the leader too.
    let follower = kv
        .iter()
        .position(|r| r.status().role != clustertop_store::Role::Leader)
        .unwrap();
    kv[follower]
        .command(Command::Set("traced".into(), "yes".into()))
        .await
        .unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let spans = loop {
        telemetry.flush();
        let spans: Vec<Span> = receiver.with(|r| {
            r.spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| ss.spans.clone())
                .collect()
        });
        let applies = spans.iter().filter(|s| s.name == "raft.apply").count();
        if spans.iter().any(|s| s.name == "raft.command") && applies >= 3 {
            break spans;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "spans never arrived: {spans:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let command = spans.iter().find(|s| s.name == "raft.command").unwrap();
    assert_eq!(
        attr(command, "node").as_deref(),
        Some(nodes[follower].name())
    );
    let mut applied_on: Vec<String> = Vec::new();
    for apply in spans.iter().filter(|s| s.name == "raft.apply") {
        assert_eq!(
            apply.trace_id, command.trace_id,
            "an apply in another trace"
        );
        assert_eq!(apply.parent_span_id, command.span_id);
        applied_on.push(attr(apply, "node").unwrap());
    }
    applied_on.sort();
    assert_eq!(applied_on, members);
}
