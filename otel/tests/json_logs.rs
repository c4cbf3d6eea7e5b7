//! JSON log lines parse and carry node, pid, process and fields. In its own
//! test binary: it installs the global subscriber.

use clustertop_otel::{LogFormat, TelemetryConfig};
use clustertop_runtime::{Node, NodeConfig};
use clustertop_testkit::Captured;
use serde_json::Value;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

fn lines(c: &Captured) -> Vec<Value> {
    c.text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_carry_node_pid_process_and_fields() {
    let captured = Captured::default();
    let writer = captured.clone();
    let _telemetry = clustertop_otel::init(TelemetryConfig {
        node: "a@localhost".into(),
        log_format: LogFormat::Json,
        log_filter: Some("info".into()),
        log_writer: Some(BoxMakeWriter::new(move || writer.clone())),
        prometheus: None,
        prometheus_fallback: false,
        // Spans get trace ids; nothing listens there, so none are exported.
        traces: Some(clustertop_otel::TraceConfig {
            endpoint: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        }),
        metrics_otlp: None,
        logs_otlp: None,
        otlp_log_filter: None,
        trace_filter: None,
        extra_layer: None,
    })
    .unwrap();
    let node = Node::start(NodeConfig::new("a@localhost")).unwrap();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = node.spawn::<(), _, _>(|_ctx| async move {
        go_rx.await.unwrap();
        let span = tracing::info_span!("distribute");
        let _in_span = span.enter();
        tracing::info!(item = 4411u64, on = "b@host", "processed");
    });
    node.register("work_distributor", worker.id()).unwrap();
    go_tx.send(()).unwrap();
    worker.exited().await;
    let crasher = node.spawn::<(), _, _>(|_ctx| async { panic!("index out of bounds") });
    crasher.exited().await;
    tracing::warn!(outside = true, "not in a process");

    let lines = lines(&captured);
    let processed = lines
        .iter()
        .find(|l| l["message"] == "processed")
        .expect("the worker's line");
    assert_eq!(processed["node"], "a@localhost");
    assert_eq!(processed["level"], "INFO");
    assert_eq!(processed["target"], "json_logs");
    assert_eq!(processed["pid"], worker.id().to_string());
    assert_eq!(processed["process"], "work_distributor");
    assert_eq!(processed["fields"]["item"], 4411);
    assert_eq!(processed["fields"]["on"], "b@host");
    assert!(processed["timestamp"].as_str().unwrap().contains('T'));
    let trace_id = processed["trace_id"]
        .as_str()
        .expect("a trace id inside a span");
    assert_eq!(trace_id.len(), 32);
    assert!(trace_id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(processed["span_id"].as_str().unwrap().len(), 16);
    assert_eq!(processed["spans"], serde_json::json!(["distribute"]));

    let panicked = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("process panicked")
        })
        .expect("the panic as an event");
    assert_eq!(panicked["level"], "ERROR");
    assert_eq!(panicked["pid"], crasher.id().to_string());

    let outside = lines
        .iter()
        .find(|l| l["message"] == "not in a process")
        .unwrap();
    assert!(outside.get("pid").is_none());
    assert!(outside.get("trace_id").is_none());
    assert_eq!(outside["fields"]["outside"], true);
}
