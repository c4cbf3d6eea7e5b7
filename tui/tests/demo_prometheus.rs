//! `clustertop demo` exports to a user's own Prometheus: every demo node
//! serves metrics on its own port, and the demo writes a file-based
//! service-discovery file listing them with a `node` label. The real
//! Prometheus, configured only with that file, scrapes all three nodes.

use clustertop_testkit::{KillOnDrop, http_get};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_clustertop");
const NODES: [&str; 3] = ["demo-1@localhost", "demo-2@localhost", "demo-3@localhost"];

/// The query's result series as (node label, value).
fn query(port: u16, q: &str) -> Vec<(String, f64)> {
    let Some(body) = http_get(port, &format!("/api/v1/query?query={q}")) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let mut out: Vec<(String, f64)> = v["data"]["result"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|s| {
                    (
                        s["metric"]["node"].as_str().unwrap_or("").to_owned(),
                        s["value"][1].as_str().unwrap_or("0").parse().unwrap_or(0.0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn prometheus_finds_every_demo_node_through_the_discovery_file() {
    let Some(prometheus) = clustertop_testkit::require_program(
        "prometheus_finds_every_demo_node_through_the_discovery_file",
        "prometheus",
        Some("PROMETHEUS_BIN"),
        "apt-get install prometheus",
    ) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let mut demo = KillOnDrop(
        Command::new(BIN)
            .args(["demo", "--headless", "--port", "0"])
            .env("HOME", home.path())
            .env_remove("CLUSTERTOP_COOKIE")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("clustertop demo starts"),
    );
    let mut lines = BufReader::new(demo.0.stdout.take().unwrap()).lines();
    let mut next = || lines.next().expect("a line").expect("readable");
    let up = next();
    assert!(up.starts_with("demo cluster up: "), "{up}");
    let metrics = next();
    for node in NODES {
        assert!(
            metrics.contains(&format!("{node} http://127.0.0.1:")),
            "{metrics}"
        );
    }
    let targets = next();
    let path = targets
        .strip_prefix("prometheus targets (file_sd_configs): ")
        .unwrap_or_else(|| panic!("{targets}"))
        .to_owned();
    let listed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");

    // The three lines of scrape config the README gives.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: clustertop-demo\n    file_sd_configs:\n      - files: ['{path}']\n"
        ),
    )
    .unwrap();
    let web = clustertop_testkit::free_port();
    let _server = KillOnDrop(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let up = query(web, "up");
        let spawned = query(web, "clustertop_processes_spawned_total");
        let nodes =
            |series: &[(String, f64)]| series.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        if nodes(&up) == NODES && up.iter().all(|(_, v)| *v == 1.0) && nodes(&spawned) == NODES {
            assert!(spawned.iter().all(|(_, v)| *v > 0.0), "{spawned:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw all three nodes: up {up:?}, spawned {spawned:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // The file goes with the demo.
    clustertop_testkit::signal_and_wait(&mut demo.0, "TERM");
    assert!(!std::path::Path::new(&path).exists(), "{path} left behind");
}
