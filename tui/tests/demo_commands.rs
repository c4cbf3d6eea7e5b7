//! `clustertop snapshot --json` and `clustertop logs` against a running
//! demo cluster (three nodes as child processes of `clustertop demo`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_clustertop");

/// A headless demo cluster, stopped when dropped.
struct Demo {
    child: Child,
    addr: String,
    cookie: String,
}

impl Demo {
    fn start() -> Demo {
        let cookie = format!("demo-test-{}", std::process::id());
        let mut child = Command::new(BIN)
            .args(["--cookie", &cookie, "demo", "--headless", "--port", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("clustertop demo starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "demo cluster up: a, b, c at 127.0.0.1:PORT (cookie C)"
        let addr = line
            .split(" at ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Demo {
            child,
            addr,
            cookie,
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(["--node", &self.addr, "--cookie", &self.cookie])
            .args(args)
            .output()
            .expect("clustertop runs")
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // Closing its standard input stops the demo and its nodes.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

const NODES: [&str; 3] = ["demo-1@localhost", "demo-2@localhost", "demo-3@localhost"];

#[test]
fn snapshot_json_lists_every_node_and_logs_print_records_from_every_node() {
    let demo = Demo::start();

    let out = demo.run(&["snapshot", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let overview: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let names: Vec<&str> = overview["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, NODES);
    assert!(
        overview["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["status"] == "Up")
    );
    assert_eq!(overview["entry"], "demo-1@localhost");

    // Every node logs "demo node up" when it starts: the backlog has it.
    let out = demo.run(&["logs", "--tail", "200"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for node in NODES {
        assert!(
            text.lines()
                .any(|l| l.contains(node) && l.contains("demo node up")),
            "no record from {node} in:\n{text}"
        );
    }
    // One record per line: time, level, node.
    let first = text.lines().next().unwrap();
    let fields: Vec<&str> = first.split_whitespace().collect();
    assert_eq!(fields[0].len(), "00:00:00.000".len(), "{first}");
    assert!(["INFO", "WARN", "ERROR"].contains(&fields[1]), "{first}");

    // The plain snapshot names every node too.
    let out = demo.run(&["snapshot"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for node in NODES {
        assert!(text.contains(node), "{text}");
    }
}

#[test]
fn errors_a_user_hits_are_one_line_and_a_failure_status() {
    let demo = Demo::start();
    let out = Command::new(BIN)
        .args(["--node", &demo.addr, "--cookie", "wrong", "snapshot"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("refused the cookie"), "{err}");

    let out = Command::new(BIN)
        .args(["--node", "127.0.0.1:1", "--cookie", "x", "snapshot"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no clustertop node at 127.0.0.1:1"), "{err}");
}

#[test]
fn a_client_without_a_cookie_says_so_and_creates_none() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["--node", "127.0.0.1:1", "snapshot"])
        .env("HOME", home.path())
        .env_remove("CLUSTERTOP_COOKIE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no cookie"), "{err}");
    assert!(err.contains("CLUSTERTOP_COOKIE"), "{err}");
    assert!(
        !home.path().join(".clustertop.cookie").exists(),
        "a client must not create the cookie"
    );
}
