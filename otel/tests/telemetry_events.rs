//! Telemetry events: handlers receive what they attached to, spans emit
//! start / stop / exception, a panicking handler is detached, and events
//! feed metrics.

use clustertop_otel::telemetry;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use std::sync::{Arc, Mutex};

type Seen = Arc<Mutex<Vec<(String, Vec<(String, f64)>, Vec<(String, String)>)>>>;

fn collector(id: &str, events: &[&[&str]]) -> Seen {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    telemetry::attach(id, events, move |e| {
        s.lock().unwrap().push((
            e.name.join("."),
            e.measurements
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            e.metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ));
    })
    .unwrap();
    seen
}

/// The article's MetricsExample, written with the API.
fn process_item(item_id: u64) -> String {
    let id = item_id.to_string();
    let start = std::time::Instant::now();
    telemetry::execute(
        &["myapp", "item", "process", "start"],
        &[],
        &[("item_id", &id)],
    );
    let result = format!("processed {item_id}");
    let duration = start.elapsed().as_secs_f64();
    telemetry::execute(
        &["myapp", "item", "process", "stop"],
        &[("duration", duration)],
        &[("item_id", &id), ("result", &result)],
    );
    result
}

#[test]
fn handlers_get_the_events_they_attached_to() {
    let seen = collector(
        "article",
        &[
            &["myapp", "item", "process", "start"],
            &["myapp", "item", "process", "stop"],
        ],
    );
    assert_eq!(process_item(7), "processed 7");
    telemetry::execute(&["myapp", "other"], &[("x", 1.0)], &[]);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0, "myapp.item.process.start");
    assert_eq!(seen[0].2, [("item_id".to_string(), "7".to_string())]);
    assert_eq!(seen[1].0, "myapp.item.process.stop");
    assert_eq!(seen[1].1[0].0, "duration");
    assert!(
        seen[1]
            .2
            .contains(&("result".to_string(), "processed 7".to_string()))
    );
    assert_eq!(
        telemetry::attach("article", &[], |_| {}),
        Err(telemetry::AlreadyAttached("article".into()))
    );
    assert!(telemetry::detach("article"));
    assert!(!telemetry::detach("article"));
}

#[test]
fn spans_emit_start_stop_and_exception() {
    let prefix: &[&str] = &["db", "query"];
    let seen = collector(
        "spans",
        &[
            &["db", "query", "start"],
            &["db", "query", "stop"],
            &["db", "query", "exception"],
        ],
    );
    assert_eq!(telemetry::span(prefix, &[("table", "users")], || 42), 42);
    let panicked = std::panic::catch_unwind(|| {
        telemetry::span(prefix, &[], || -> u8 { panic!("query failed") })
    });
    assert!(panicked.is_err(), "the panic continues");
    let names: Vec<String> = seen.lock().unwrap().iter().map(|e| e.0.clone()).collect();
    assert_eq!(
        names,
        [
            "db.query.start",
            "db.query.stop",
            "db.query.start",
            "db.query.exception"
        ]
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].1[0].0, "system_time");
    assert!(seen[1].1[0].1 >= 0.0);
    telemetry::detach("spans");
}

#[test]
fn a_panicking_handler_is_detached() {
    telemetry::attach("bad", &[&["boom"]], |_| panic!("handler bug")).unwrap();
    telemetry::execute(&["boom"], &[], &[]);
    assert!(!telemetry::detach("bad"), "already detached");
}

#[test]
fn events_feed_metrics() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    telemetry::attach_metrics("to-metrics", &[&["shop", "checkout", "stop"]]).unwrap();
    metrics::with_local_recorder(&recorder, || {
        telemetry::execute(
            &["shop", "checkout", "stop"],
            &[("duration", 0.25), ("items", 3.0)],
            &[],
        );
        telemetry::execute(
            &["shop", "checkout", "stop"],
            &[("duration", 0.5), ("items", 1.0)],
            &[],
        );
    });
    telemetry::detach("to-metrics");
    let snapshot = snapshotter.snapshot().into_vec();
    let get = |name: &str| {
        snapshot
            .iter()
            .find(|(k, _, _, _)| k.key().name() == name)
            .map(|(_, _, _, v)| v)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(get("shop_checkout_stop_total"), &DebugValue::Counter(2));
    match get("shop_checkout_stop_duration_seconds") {
        DebugValue::Histogram(v) => assert_eq!(v.len(), 2),
        other => panic!("{other:?}"),
    }
    match get("shop_checkout_stop_items") {
        DebugValue::Histogram(v) => assert_eq!(v.len(), 2),
        other => panic!("{other:?}"),
    }
}
