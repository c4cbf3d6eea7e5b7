//! `clustertop-agent-node` sets up telemetry as every node does: it says
//! where it serves Prometheus metrics, and the endpoint serves the node's
//! series.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn the_standalone_node_serves_its_metrics_and_says_where() {
    let child = Command::new(env!("CARGO_BIN_EXE_clustertop-agent-node"))
        .args(["solo@localhost", "127.0.0.1:0"])
        .env("CLUSTERTOP_COOKIE", "agent-node-test")
        .env_remove("CLUSTERTOP_METRICS")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("clustertop-agent-node starts");
    let mut child = clustertop_testkit::KillOnDrop(child);
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut lines = [String::new(), String::new()];
    for l in &mut lines {
        out.read_line(l).unwrap();
    }
    assert!(lines[0].starts_with("listening 127.0.0.1:"), "{lines:?}");
    let port: u16 = lines[1]
        .trim()
        .strip_prefix("metrics http://127.0.0.1:")
        .and_then(|r| r.strip_suffix("/metrics"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{lines:?}"));
    let text = clustertop_testkit::http_get(port, "/metrics").expect("the endpoint answers");
    assert!(
        text.contains("clustertop_processes{node=\"solo@localhost\"}"),
        "{text}"
    );
}
