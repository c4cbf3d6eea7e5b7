//! `clustertop demo --stack`: with Jaeger and Prometheus installed it
//! starts both wired to the demo, prints their URLs, and stops them with
//! the demo; without them it says in one line each how to get them and
//! the demo runs all the same. Needs `jaeger` (`JAEGER_BIN`, which
//! `.ci/run` builds) and `prometheus` (Debian's package): under `CI=true`
//! their absence fails the test, otherwise it prints a skip notice.

use clustertop_testkit::{KillOnDrop, http_get};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_clustertop");
const NODES: [&str; 3] = ["demo-1@localhost", "demo-2@localhost", "demo-3@localhost"];

/// Starts `clustertop demo --headless --port 0 --stack` and returns it
/// with every line of its ready text (it ends with the stack's lines).
fn demo(home: &std::path::Path, env: &[(&str, &str)], unset: &[&str]) -> (KillOnDrop, Vec<String>) {
    let mut cmd = Command::new(BIN);
    cmd.args(["demo", "--headless", "--port", "0", "--stack"])
        .env("HOME", home)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    for k in unset {
        cmd.env_remove(k);
    }
    let mut child = KillOnDrop(cmd.spawn().expect("clustertop demo starts"));
    let mut reader = BufReader::new(child.0.stdout.take().unwrap());
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.starts_with("prometheus:")) {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("the demo ended before its stack lines: {lines:?}");
        }
        lines.push(line.trim_end().to_owned());
    }
    (child, lines)
}

fn line<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} line in {lines:?}"))
}

/// The port of the first `http://127.0.0.1:PORT` in `text`.
fn port_in(text: &str) -> u16 {
    let rest = text
        .split("http://127.0.0.1:")
        .nth(1)
        .unwrap_or_else(|| panic!("no URL in {text:?}"));
    rest.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[test]
fn the_stack_starts_with_the_demo_and_stops_with_it() {
    // Neither program to be found: one line each on how to get it, and
    // the cluster comes up anyway.
    let home = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let (mut bare, lines) = demo(
        home.path(),
        &[("PATH", empty.path().to_str().unwrap())],
        &["JAEGER_BIN", "PROMETHEUS_BIN"],
    );
    assert!(lines[0].starts_with("demo cluster up"), "{lines:?}");
    let jaeger = line(&lines, "jaeger:");
    let prometheus = line(&lines, "prometheus:");
    assert!(
        jaeger.contains("not found") && jaeger.contains("JAEGER_BIN"),
        "{jaeger}"
    );
    assert!(
        prometheus.contains("not found") && prometheus.contains("apt-get install prometheus"),
        "{prometheus}"
    );
    clustertop_testkit::signal_and_wait(&mut bare.0, "TERM");

    let (Some(_), Some(_)) = (
        clustertop_testkit::require_program(
            "the_stack_starts_with_the_demo_and_stops_with_it",
            "jaeger",
            Some("JAEGER_BIN"),
            "set JAEGER_BIN to a jaeger binary; .ci/run builds one",
        ),
        clustertop_testkit::require_program(
            "the_stack_starts_with_the_demo_and_stops_with_it",
            "prometheus",
            Some("PROMETHEUS_BIN"),
            "apt-get install prometheus",
        ),
    ) else {
        return;
    };
    // Both installed: both started, wired to the demo, and their URLs
    // printed.
    let (mut demo, lines) = demo(home.path(), &[], &[]);
    let jaeger = line(&lines, "jaeger:");
    let prometheus = line(&lines, "prometheus:");
    assert!(
        jaeger.starts_with("jaeger: http://127.0.0.1:16686"),
        "{lines:?}"
    );
    let web = port_in(prometheus);
    let deadline = Instant::now() + Duration::from_secs(90);
    // Prometheus scrapes every node through the demo's discovery file.
    loop {
        let body = http_get(
            web,
            "/api/v1/query?query=up%7Bcluster%3D%22clustertop-demo%22%7D",
        )
        .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let mut up: Vec<String> = v["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["value"][1] == "1")
            .filter_map(|s| s["metric"]["node"].as_str().map(str::to_owned))
            .collect();
        up.sort();
        if up == NODES {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus never had the three nodes up: {body}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Jaeger gets the nodes' traces.
    loop {
        let body = http_get(16686, "/api/services").unwrap_or_default();
        if NODES.iter().all(|n| body.contains(n)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "jaeger never listed the demo's nodes: {body}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Traces only go to Jaeger: no export it refuses (metrics or logs,
    // which failed about once a second per node) fills the nodes' logs.
    std::thread::sleep(Duration::from_secs(3));
    let entry = lines[0]
        .split(" at ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("the demo's address");
    let out = Command::new(BIN)
        .args(["--node", entry, "logs", "--tail", "1000", "--level", "warn"])
        .env("HOME", home.path())
        .output()
        .expect("clustertop logs runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("Unimplemented") && !text.contains("opentelemetry"),
        "the nodes log failing exports:\n{text}"
    );
    // Quit: the stack goes with the demo.
    clustertop_testkit::signal_and_wait(&mut demo.0, "TERM");
    assert!(
        http_get(web, "/-/ready").is_none(),
        "prometheus still answers"
    );
    assert!(
        http_get(16686, "/api/services").is_none(),
        "jaeger still answers"
    );
}
