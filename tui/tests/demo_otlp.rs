//! `clustertop demo --otlp URL` sends all three signals — traces, metrics
//! and logs — from each of its three nodes (three OS processes) to an
//! OTLP receiver built on the official protobuf types (the testkit's),
//! each node's three signals with the same resource attributes; metrics
//! keep their names and labels, counters are cumulative (the OTLP
//! default), and log records carry the node, the process and, inside a
//! traced handler, a trace id that is one of the spans' traces; and the
//! trace ids a process's detail lists are traces the receiver got.

use clustertop_testkit::KillOnDrop;
use clustertop_testkit::otlp::{Received, Receiver, attr, attributes_text};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_clustertop");
const NODES: [&str; 3] = ["demo-1@localhost", "demo-2@localhost", "demo-3@localhost"];

fn node_of(resource: Option<&opentelemetry_proto::tonic::resource::v1::Resource>) -> String {
    resource
        .and_then(|r| attr(&r.attributes, "clustertop.node"))
        .unwrap_or_default()
}

fn resource_attrs(
    resource: Option<&opentelemetry_proto::tonic::resource::v1::Resource>,
) -> Vec<String> {
    resource.map_or_else(Vec::new, |r| attributes_text(&r.attributes))
}

/// Per node, the resource attributes each signal came with.
fn resources(r: &Received) -> BTreeMap<String, [BTreeSet<Vec<String>>; 3]> {
    let mut out: BTreeMap<String, [BTreeSet<Vec<String>>; 3]> = BTreeMap::new();
    for s in &r.spans {
        let e = out.entry(node_of(s.resource.as_ref())).or_default();
        e[0].insert(resource_attrs(s.resource.as_ref()));
    }
    for m in &r.metrics {
        let e = out.entry(node_of(m.resource.as_ref())).or_default();
        e[1].insert(resource_attrs(m.resource.as_ref()));
    }
    for l in &r.logs {
        let e = out.entry(node_of(l.resource.as_ref())).or_default();
        e[2].insert(resource_attrs(l.resource.as_ref()));
    }
    out
}

fn has_label(attributes: &[KeyValue], key: &str, value: &str) -> bool {
    attr(attributes, key).as_deref() == Some(value)
}

/// A log record logged inside a traced handler, whose trace is among the
/// spans received.
fn traced_record(r: &Received) -> Option<opentelemetry_proto::tonic::logs::v1::LogRecord> {
    let span_traces: BTreeSet<&Vec<u8>> = r
        .spans
        .iter()
        .flat_map(|s| &s.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| &s.trace_id)
        .collect();
    r.logs
        .iter()
        .flat_map(|l| &l.scope_logs)
        .flat_map(|s| &s.log_records)
        .find(|rec| !rec.trace_id.is_empty() && span_traces.contains(&rec.trace_id))
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_sends_traces_metrics_and_logs_with_one_resource_per_node() {
    let (receiver, port) = Receiver::start();
    let home = tempfile::tempdir().unwrap();
    let mut demo = KillOnDrop(
        Command::new(BIN)
            .args(["demo", "--headless", "--port", "0"])
            .args(["--otlp", &format!("http://127.0.0.1:{port}")])
            .env("HOME", home.path())
            // Short intervals, so the test does not wait a minute.
            .env("OTEL_METRIC_EXPORT_INTERVAL", "1000")
            .env("OTEL_BLRP_SCHEDULE_DELAY", "200")
            .env("OTEL_BSP_SCHEDULE_DELAY", "200")
            .env_remove("OTEL_TRACES_SAMPLER")
            .env_remove("OTEL_METRICS_EXPORTER")
            .env_remove("OTEL_LOGS_EXPORTER")
            .env_remove("OTEL_TRACES_EXPORTER")
            .env_remove("OTEL_SERVICE_NAME")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("clustertop demo starts"),
    );
    let stdout = demo.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    assert!(line.starts_with("demo cluster up"), "{line:?}");

    // Every node's three signals, and a log record inside a traced
    // handler (the chat store logs every thousandth message).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let done = receiver.with(|r| {
            let per_node = resources(r);
            let all_three = NODES.iter().all(|n| {
                per_node
                    .get(*n)
                    .is_some_and(|signals| signals.iter().all(|s| !s.is_empty()))
            });
            let traced_log = traced_record(r).is_some();
            all_three && traced_log
        });
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every signal arrived: {:?}",
            receiver.with(|r| resources(r)
                .into_iter()
                .map(|(n, s)| (n, s.map(|x| x.len())))
                .collect::<Vec<_>>())
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    receiver.with(|r| {
        // One resource per node, the same on its spans, metrics and logs.
        for (node, signals) in resources(r) {
            assert!(NODES.contains(&node.as_str()), "a resource without a node: {node:?}");
            for s in &signals {
                assert_eq!(s.len(), 1, "{node}: several resources {s:?}");
            }
            assert_eq!(signals[0], signals[1], "{node}: traces vs metrics");
            assert_eq!(signals[0], signals[2], "{node}: traces vs logs");
            let attrs = signals[0].iter().next().unwrap();
            assert!(
                attrs.iter().any(|a| a.starts_with("service.name=")),
                "{attrs:?}"
            );
        }

        // Metrics keep their names and labels; counters are cumulative.
        let metrics: Vec<_> = r
            .metrics
            .iter()
            .flat_map(|m| &m.scope_metrics)
            .flat_map(|s| &s.metrics)
            .collect();
        let spawned = metrics
            .iter()
            .find(|m| m.name == "clustertop_processes_spawned_total")
            .expect("the runtime's spawn counter");
        match &spawned.data {
            Some(Data::Sum(sum)) => {
                assert!(sum.is_monotonic);
                // AGGREGATION_TEMPORALITY_CUMULATIVE
                assert_eq!(sum.aggregation_temporality, 2);
                assert!(sum.data_points.iter().any(|p| NODES
                    .iter()
                    .any(|n| has_label(&p.attributes, "node", n))));
            }
            other => panic!("a counter as {other:?}"),
        }
        assert!(
            metrics
                .iter()
                .any(|m| m.name == "chat_store_seconds" && matches!(m.data, Some(Data::Histogram(_)))),
            "the chat's own histogram"
        );
        assert!(
            metrics
                .iter()
                .any(|m| m.name == "clustertop_processes" && matches!(m.data, Some(Data::Gauge(_)))),
            "the runtime's process gauge"
        );

        // Logs: node, pid (and the process's name when it has one), and
        // the trace of the handler they were logged in.
        let records: Vec<_> = r
            .logs
            .iter()
            .flat_map(|l| &l.scope_logs)
            .flat_map(|s| &s.log_records)
            .collect();
        assert!(records
            .iter()
            .all(|rec| NODES.iter().any(|n| has_label(&rec.attributes, "node", n))));
        let traced = traced_record(r).unwrap();
        let pids = traced.attributes.iter().filter(|kv| kv.key == "pid").count();
        assert_eq!(pids, 1, "one pid: {traced:?}");
    });

    // The process detail's traces are traces the receiver got: attach as
    // clustertop does and ask the chat stores (they handle every chat
    // message, a tenth of them traced).
    let text = std::fs::read_to_string(
        home.path()
            .join(".clustertop.demos")
            .join(demo.0.id().to_string()),
    )
    .unwrap();
    let mut file = text.lines();
    let (entry, cookie) = (file.next().unwrap(), file.next().unwrap());
    let client = clustertop_client::Client::connect(
        clustertop_client::ClientConfig::new(entry).cookie(cookie),
    )
    .await
    .expect("attaches to the demo");
    let query = clustertop_proto::ProcessQuery {
        filter: clustertop_proto::ProcessFilter {
            name_contains: Some("MessageStore".into()),
            ..Default::default()
        },
        sort: clustertop_proto::SortKey::Default,
        descending: true,
        offset: 0,
        limit: 10,
    };
    let stores = client.processes(query).await.unwrap().rows;
    assert!(!stores.is_empty());
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut shown = Vec::new();
        for s in &stores {
            let t = client
                .ask(clustertop_proto::GetProcessTraces { pid: s.pid.clone() })
                .await
                .unwrap();
            shown.extend(t.traces);
        }
        let received: BTreeSet<String> = receiver.with(|r| {
            r.spans
                .iter()
                .flat_map(|s| &s.scope_spans)
                .flat_map(|s| &s.spans)
                .map(|s| hex(&s.trace_id))
                .collect()
        });
        if let Some(row) = shown.iter().find(|row| received.contains(&row.trace_id)) {
            assert_eq!(row.trace_id.len(), 32);
            assert_eq!(row.span_id.len(), 16);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no trace of the stores' detail reached the receiver: {shown:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    client.close();
    clustertop_testkit::signal_and_wait(&mut demo.0, "TERM");
}
