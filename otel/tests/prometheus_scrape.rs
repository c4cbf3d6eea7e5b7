//! The real Prometheus server scrapes a node's metrics endpoint, and its
//! query API returns the runtime's series. Needs the `prometheus` binary
//! (Debian's package, installed by `.ci/run`): under `CI=true` its absence
//! fails the test; otherwise the test prints a skip notice.

use clustertop_otel::{LogFormat, TelemetryConfig};
use clustertop_runtime::{Node, NodeConfig};
mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_node_and_answers_queries() {
    let Some(prometheus) = clustertop_testkit::require_program(
        "prometheus_scrapes_the_node_and_answers_queries",
        "prometheus",
        Some("PROMETHEUS_BIN"),
        "apt-get install prometheus",
    ) else {
        return;
    };
    // Port 0: the endpoint binds a free port itself and says which.
    let telemetry = clustertop_otel::init(TelemetryConfig {
        node: "a@localhost".into(),
        log_format: LogFormat::Human,
        log_filter: Some("warn".into()),
        log_writer: Some(tracing_subscriber::fmt::writer::BoxMakeWriter::new(
            std::io::sink,
        )),
        prometheus: Some(([127, 0, 0, 1], 0).into()),
        prometheus_fallback: false,
        traces: None,
        metrics_otlp: None,
        logs_otlp: None,
        otlp_log_filter: None,
        trace_filter: None,
        extra_layer: None,
    })
    .unwrap();
    let addr = telemetry.prometheus_addr().expect("an endpoint");
    assert_ne!(addr.port(), 0);
    assert_eq!(clustertop_otel::exports().prometheus, Some(addr));
    let metrics_port = addr.port();
    let node = Node::start(NodeConfig::new("a@localhost")).unwrap();
    for _ in 0..25 {
        node.spawn::<(), _, _>(|_ctx| async {}).exited().await;
    }
    // A user's own series, recorded once.
    metrics::counter!("orders_total", "shop" => "north").increment(7);
    metrics::histogram!("order_seconds").record(0.25);
    // The endpoint serves the runtime's series and the user's.
    let text = support::http_get(metrics_port, "/metrics").expect("the metrics endpoint answers");
    assert!(
        text.contains("clustertop_processes_spawned_total"),
        "{text}"
    );
    assert!(text.contains("orders_total{shop=\"north\"} 7"), "{text}");
    // The same calls fed the store the agent reads: one recorder, two
    // outputs.
    let store = clustertop_otel::series::store();
    let infos = store.describe(0);
    let mut readings = Vec::new();
    store.read(&mut readings);
    let at = |name: &str| infos.iter().position(|i| i.name == name).expect(name);
    let orders = at("orders_total");
    assert_eq!(
        infos[orders].labels,
        [("shop".to_owned(), "north".to_owned())]
    );
    assert_eq!(
        readings[orders],
        clustertop_otel::series::Reading::Counter(7)
    );
    match &readings[at("order_seconds")] {
        clustertop_otel::series::Reading::Histogram {
            count,
            sum,
            buckets,
        } => {
            assert_eq!((*count, *sum), (1, 0.25));
            let (lo, hi) = clustertop_otel::series::bucket_bounds(buckets[0].0.into());
            assert!(lo <= 0.25 && 0.25 < hi);
        }
        other => panic!("{other:?}"),
    }
    let spawned = at("clustertop_processes_spawned_total");
    assert!(matches!(readings[spawned], clustertop_otel::series::Reading::Counter(n) if n >= 25));

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: clustertop\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
        ),
    )
    .unwrap();
    let web_port = clustertop_testkit::free_port();
    let _server = support::Server(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    );
    let query = "/api/v1/query?query=clustertop_processes_spawned_total";
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(body) = support::http_get(web_port, query) {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if let Some(series) = v["data"]["result"].as_array().and_then(|r| r.first()) {
                assert_eq!(v["status"], "success");
                assert_eq!(series["metric"]["node"], "a@localhost");
                let value: f64 = series["value"][1].as_str().unwrap().parse().unwrap();
                assert!(value >= 25.0, "spawned total {value}");
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "prometheus never reported the series"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
