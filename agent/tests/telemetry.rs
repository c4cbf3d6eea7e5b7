//! A node's own telemetry seen through the attach protocol: the `metrics`
//! series user code records (read from the recorder that also feeds the
//! Prometheus endpoint), counters as rates, histograms as windows that
//! merge across nodes, telemetry events by name; and the version rule
//! for this version-4 request.

mod support;

use clustertop_client::{Client, ClientConfig, ClientError};
use clustertop_proto::{GetTelemetry, NodeTelemetry, SeriesValue, Telemetry};
use std::time::Duration;
use support::{cluster, eventually, fast_config};

const LIMIT: Duration = Duration::from_secs(30);

fn part<'a>(t: &'a Telemetry, node: &str) -> &'a NodeTelemetry {
    t.nodes
        .iter()
        .find(|n| n.node == node)
        .unwrap_or_else(|| panic!("no part for {node} in {t:?}"))
}

fn series<'a>(n: &'a NodeTelemetry, name: &str) -> Option<&'a SeriesValue> {
    n.series.iter().find(|s| s.name == name).map(|s| &s.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_series_and_events_reach_the_client_per_node() {
    // What `clustertop_otel::init` installs beside the Prometheus recorder.
    metrics::set_global_recorder(clustertop_otel::series::StoreRecorder).unwrap();
    let (nodes, _agents) = cluster(&["t1@localhost", "t2@localhost"], fast_config()).await;
    let client =
        Client::connect(ClientConfig::new(support::addr(&nodes[0])).cookie(support::COOKIE))
            .await
            .unwrap();

    // User code on the node: a counter at a steady rate, a gauge, a
    // histogram, and telemetry events.
    let work = tokio::spawn(async {
        for i in 0.. {
            metrics::counter!("orders_total", "shop" => "north").increment(10);
            metrics::gauge!("queue_depth").set(42.0);
            metrics::histogram!("order_seconds").record(if i % 10 == 9 { 0.5 } else { 0.02 });
            clustertop_otel::telemetry::execute(&["shop", "order", "placed"], &[], &[]);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });

    let t = eventually("a window with the user's series", LIMIT, || async {
        let t = client.ask(GetTelemetry::default()).await.unwrap();
        let n = part(&t, "t1@localhost");
        (n.window_ms >= 2_000
            && matches!(series(n, "orders_total"), Some(SeriesValue::Counter { per_s, .. }) if *per_s > 0.0))
        .then_some(t)
    })
    .await;
    work.abort();
    assert!(t.missing.is_empty(), "{t:?}");
    assert_eq!(t.nodes.len(), 2);
    let n = part(&t, "t1@localhost");
    let orders = n.series.iter().find(|s| s.name == "orders_total").unwrap();
    assert_eq!(orders.labels, [("shop".to_owned(), "north".to_owned())]);
    match &orders.value {
        // 10 per iteration, at most 100 iterations a second.
        SeriesValue::Counter { total, per_s } => {
            assert!(*total >= 10 && total % 10 == 0, "{total}");
            assert!(*per_s > 10.0 && *per_s <= 1_000.0, "{per_s}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        series(n, "queue_depth"),
        Some(&SeriesValue::Gauge { value: 42.0 })
    );
    match series(n, "order_seconds") {
        Some(SeriesValue::Histogram { count, window, .. }) => {
            assert!(*count > 0);
            let p50 = clustertop_proto::quantile(window, 0.5).unwrap();
            let p99 = clustertop_proto::quantile(window, 0.99).unwrap();
            assert!((0.0175..=0.0225).contains(&p50), "p50 {p50}");
            assert!((0.44..=0.56).contains(&p99), "p99 {p99}");
            // Two nodes' windows of one series merge bucket by bucket.
            let both = clustertop_proto::merge_buckets([&window[..], &window[..]]);
            let merged: u64 = both.iter().map(|b| b.count).sum();
            let one: u64 = window.iter().map(|b| b.count).sum();
            assert_eq!(merged, 2 * one);
        }
        other => panic!("{other:?}"),
    }
    let placed = n
        .events
        .iter()
        .find(|e| e.name == "shop.order.placed")
        .unwrap_or_else(|| panic!("{:?}", n.events));
    assert!(placed.total > 0 && placed.per_s > 0.0, "{placed:?}");
    // No telemetry was initialised here: no endpoints to show.
    assert!(n.endpoints.is_empty(), "{:?}", n.endpoints);

    // One node only.
    let one = client
        .ask(GetTelemetry {
            node: Some("t2@localhost".into()),
        })
        .await
        .unwrap();
    assert_eq!(one.nodes.len(), 1);
    assert_eq!(one.nodes[0].node, "t2@localhost");
    assert!(series(&one.nodes[0], "orders_total").is_some());
    match client
        .ask(GetTelemetry {
            node: Some("nobody@localhost".into()),
        })
        .await
    {
        Err(ClientError::Agent(e)) => assert!(e.to_string().contains("nobody"), "{e}"),
        other => panic!("{other:?}"),
    }
}
