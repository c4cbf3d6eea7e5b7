//! `clustertop-agent-node` sets up telemetry as every node does: it says
//! where it serves Prometheus metrics, and the endpoint serves the node's
//! series.

mod support;

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

/// Starts `clustertop-agent-node` as `name` with a 1 s tick, joining
/// `join` if given; returns it and where it listens.
fn agent_node(name: &str, join: Option<&str>) -> (clustertop_testkit::KillOnDrop, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clustertop-agent-node"));
    cmd.args([name, "127.0.0.1:0"])
        .args(join)
        .env("CLUSTERTOP_COOKIE", "agent-node-test")
        .env("CLUSTERTOP_METRICS", "off")
        .env("CLUSTERTOP_TICK_MS", "1000")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child =
        clustertop_testkit::KillOnDrop(cmd.spawn().expect("clustertop-agent-node starts"));
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned();
    (child, addr)
}

/// Whether `name` is up in the cluster as the node at `entry` sees it.
async fn up(entry: &str, name: &str) -> bool {
    let config = clustertop_client::ClientConfig::new(entry).cookie("agent-node-test");
    let Ok(client) = clustertop_client::Client::connect(config).await else {
        return false;
    };
    let up = client.overview().await.is_ok_and(|o| {
        o.nodes
            .iter()
            .any(|n| n.name == name && n.status == clustertop_proto::NodeStatus::Up)
    });
    client.close();
    up
}

/// A node paused past its tick is declared down, and when it resumes it
/// rejoins by itself: it keeps the member it joined and retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_paused_past_the_tick_rejoins_when_it_resumes() {
    use std::time::Duration;
    let (_a, a_addr) = agent_node("pa@localhost", None);
    let (b, _) = agent_node("pb@localhost", Some(&a_addr));
    let limit = Duration::from_secs(10);
    let b_up = async |want: bool| (up(&a_addr, "pb@localhost").await == want).then_some(());
    support::eventually("b up", limit, || b_up(true)).await;
    let pid = b.0.id().to_string();
    let signal = |s: &str| {
        Command::new("kill").args([s, &pid]).status().unwrap();
    };
    signal("-STOP");
    support::eventually("b down", limit, || b_up(false)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    signal("-CONT");
    support::eventually("b back", limit, || b_up(true)).await;
}

/// An error is one plain line: no log line before it, no colour on a pipe.
#[test]
fn a_failing_start_says_one_plain_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_clustertop-agent-node"))
        .args(["lone@localhost", "127.0.0.1:0", "127.0.0.1:1"])
        .env("CLUSTERTOP_COOKIE", "agent-node-test")
        .env("CLUSTERTOP_METRICS", "off")
        .env_remove("RUST_LOG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .expect("clustertop-agent-node runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains('\u{1b}'), "colour on a pipe: {err:?}");
    assert!(
        err.starts_with("clustertop-agent-node: connect 127.0.0.1:1"),
        "{err}"
    );
}
