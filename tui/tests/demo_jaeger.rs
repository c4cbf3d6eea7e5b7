//! `clustertop demo --otlp URL` exports the demo's traces to the real
//! Jaeger (its all-in-one binary, in-memory storage): a chat message
//! stored on one node and fanned out to the others arrives as one trace
//! with spans from several nodes, and so do a call of the global counter
//! made from a node that does not hold it and a work item processed on
//! another node. Needs a `jaeger`
//! binary: `JAEGER_BIN`, else `jaeger` on `PATH` (`.ci/run` builds one);
//! under `CI=true` its absence fails the test, otherwise it prints a skip
//! notice.

use clustertop_testkit::{KillOnDrop, http_get};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_clustertop");
const NODES: [&str; 3] = ["demo-1@localhost", "demo-2@localhost", "demo-3@localhost"];
/// Jaeger's all-in-one defaults: OTLP gRPC on 4317, query API on 16686.
const QUERY: u16 = 16686;

/// The traces Jaeger holds for `service` and `operation`.
fn traces(service: &str, operation: &str) -> Vec<serde_json::Value> {
    let path = format!(
        "/api/traces?service={}&operation={operation}&limit=50&lookback=1h",
        service.replace('@', "%40")
    );
    let body = http_get(QUERY, &path).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["data"].as_array().cloned().unwrap_or_default()
}

/// The services (nodes) whose spans a trace holds.
fn services(trace: &serde_json::Value) -> BTreeSet<String> {
    let processes = &trace["processes"];
    trace["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["processID"].as_str())
        .filter_map(|p| processes[p]["serviceName"].as_str().map(str::to_owned))
        .collect()
}

fn tag<'a>(span: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    span["tags"].as_array()?.iter().find(|t| t["key"] == key)?["value"].as_str()
}

/// A trace of `operation` on any demo node whose root span is of
/// `behaviour` and whose spans come from at least two nodes, and that
/// `also` accepts.
fn crossing_trace(
    operation: &str,
    behaviour: &str,
    also: impl Fn(&serde_json::Value) -> bool,
) -> Option<serde_json::Value> {
    NODES.iter().find_map(|node| {
        traces(node, operation).into_iter().find(|t| {
            let spans = t["spans"].as_array().cloned().unwrap_or_default();
            spans
                .iter()
                .any(|s| s["operationName"] == operation && tag(s, "behaviour") == Some(behaviour))
                && services(t).len() >= 2
                && also(t)
        })
    })
}

#[test]
fn the_demos_article_flows_reach_jaeger_as_one_trace_each_across_nodes() {
    let Some(jaeger) = clustertop_testkit::require_program(
        "the_demos_article_flows_reach_jaeger_as_one_trace_each_across_nodes",
        "jaeger",
        Some("JAEGER_BIN"),
        "set JAEGER_BIN to a jaeger binary; .ci/run builds one",
    ) else {
        return;
    };
    let _jaeger = KillOnDrop(
        Command::new(jaeger)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("jaeger starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_get(QUERY, "/api/services").is_none() {
        assert!(Instant::now() < deadline, "jaeger did not come up");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The demo as the README starts it, with the collector's address.
    let home = tempfile::tempdir().unwrap();
    let mut demo = KillOnDrop(
        Command::new(BIN)
            .args(["demo", "--headless", "--port", "0"])
            .args(["--otlp", "http://127.0.0.1:4317"])
            .env("HOME", home.path())
            .env_remove("OTEL_TRACES_SAMPLER")
            .env_remove("OTEL_TRACES_SAMPLER_ARG")
            .env_remove("OTEL_SERVICE_NAME")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("clustertop demo starts"),
    );
    let mut line = String::new();
    BufReader::new(demo.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("demo cluster up"), "{line:?}");

    // The batch exporters send every 5 s; the demo traces a tenth of its
    // requests by default.
    let deadline = Instant::now() + Duration::from_secs(90);
    // A store that is behind (the demo's slow one) takes the message
    // later: wait for a trace in which another node's store took it.
    let stored_elsewhere = |t: &serde_json::Value| {
        let spans = t["spans"].as_array().cloned().unwrap_or_default();
        let origin = spans
            .iter()
            .find(|s| s["operationName"] == "handle_cast")
            .and_then(|s| s["processID"].as_str().map(str::to_owned));
        spans.iter().any(|s| {
            s["operationName"] == "handle_info"
                && tag(s, "behaviour") == Some("MessageStore")
                && s["processID"].as_str() != origin.as_deref()
        })
    };
    let chat = loop {
        if let Some(t) = crossing_trace("handle_cast", "MessageStore", stored_elsewhere) {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "jaeger never showed a chat message crossing nodes; services: {:?}",
            http_get(QUERY, "/api/services")
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    // One trace: the store's handling, the broadcast relayed on the other
    // nodes, and their stores taking the message.
    let spans = chat["spans"].as_array().unwrap();
    let ops: BTreeSet<&str> = spans
        .iter()
        .filter_map(|s| s["operationName"].as_str())
        .collect();
    assert!(ops.contains("pubsub.deliver"), "{ops:?}");
    assert!(
        spans
            .iter()
            .any(|s| s["operationName"] == "handle_info"
                && tag(s, "behaviour") == Some("MessageStore")),
        "{chat}"
    );
    let trace_id = chat["traceID"].as_str().unwrap();
    assert!(
        spans.iter().all(|s| s["traceID"] == trace_id),
        "one trace id for every span"
    );

    // A global counter call from a node that does not hold the counter:
    // the caller's `call` span and the holder's `handle_call`, one trace.
    let deadline = Instant::now() + Duration::from_secs(60);
    let counter = loop {
        if let Some(t) = crossing_trace("call", "Counter", |_| true) {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "jaeger never showed a counter call crossing nodes"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        counter["spans"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["operationName"] == "handle_call" && tag(s, "behaviour") == Some("Counter")),
        "{counter}"
    );

    // A work item processed on another node: the distributor's `task_on`
    // and the `task` that ran it there, one trace.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = NODES.iter().any(|node| {
            traces(node, "task_on").iter().any(|t| {
                services(t).len() >= 2
                    && t["spans"]
                        .as_array()
                        .is_some_and(|spans| spans.iter().any(|s| s["operationName"] == "task"))
            })
        });
        if found {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "jaeger never showed a work item crossing nodes"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    clustertop_testkit::signal_and_wait(&mut demo.0, "TERM");
}
