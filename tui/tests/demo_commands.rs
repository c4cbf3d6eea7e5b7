//! `clustertop snapshot --json` and `clustertop logs` against a running
//! demo cluster (three nodes as child processes of `clustertop demo`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_clustertop");

/// A headless demo cluster with a home of its own (or shared with another
/// demo), stopped when dropped.
struct Demo {
    child: Child,
    addr: String,
    home: std::sync::Arc<tempfile::TempDir>,
}

impl Demo {
    /// A demo whose standard input is empty, as from a script: it runs
    /// until a signal all the same.
    fn start() -> Demo {
        Demo::start_in(std::sync::Arc::new(tempfile::tempdir().unwrap()))
    }

    fn start_in(home: std::sync::Arc<tempfile::TempDir>) -> Demo {
        let mut child = Command::new(BIN)
            .args(["demo", "--headless", "--port", "0"])
            .env("HOME", home.path())
            .env_remove("CLUSTERTOP_COOKIE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("clustertop demo starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "demo cluster up: a, b, c at 127.0.0.1:PORT (cookie in FILE; ...)"
        let addr = line
            .split(" at ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Demo { child, addr, home }
    }

    /// `clustertop --node ADDR args…`, with no cookie: it finds the demo's.
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(["--node", &self.addr])
            .args(args)
            .env("HOME", self.home.path())
            .env_remove("CLUSTERTOP_COOKIE")
            .output()
            .expect("clustertop runs")
    }

    /// This demo's file: `~/.clustertop.demos/PID`.
    fn file(&self) -> std::path::PathBuf {
        self.home
            .path()
            .join(".clustertop.demos")
            .join(self.child.id().to_string())
    }

    fn cookie(&self) -> String {
        let text = std::fs::read_to_string(self.file()).unwrap();
        text.lines().nth(1).unwrap().to_owned()
    }
}

impl Demo {
    /// Stops the demo and its nodes (SIGTERM).
    fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            clustertop_testkit::signal_and_wait(&mut self.child, "TERM");
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop();
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
            .all(|n| n["status"] == "up")
    );
    assert_eq!(overview["entry"], "demo-1@localhost");
    assert_eq!(overview["schema_version"], 1);
    // The snapshot's own connection is not one of the cluster's links.
    assert!(
        overview["links"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| NODES.contains(&l["peer"].as_str().unwrap())),
        "{}",
        overview["links"]
    );
    // Beside the overview, each node's telemetry: its Prometheus endpoint
    // (which serves the node's series) and the chat's own counter.
    let telemetry = overview["telemetry"]["nodes"]
        .as_array()
        .expect("telemetry");
    let with_endpoint: Vec<&str> = telemetry
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    assert_eq!(with_endpoint, NODES);
    for n in telemetry {
        let url = n["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "prometheus")
            .and_then(|e| e["url"].as_str())
            .unwrap_or_else(|| panic!("no Prometheus endpoint: {n}"));
        let port: u16 = url
            .trim_start_matches("http://127.0.0.1:")
            .trim_end_matches("/metrics")
            .parse()
            .unwrap_or_else(|_| panic!("{url}"));
        let text = clustertop_testkit::http_get(port, "/metrics").expect("the endpoint answers");
        let node = n["node"].as_str().unwrap();
        assert!(
            text.contains(&format!("clustertop_processes{{node=\"{node}\"}}")),
            "{url}:\n{text}"
        );
        assert!(
            n["series"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["name"] == "clustertop_processes"),
            "{n}"
        );
    }

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
    // The snapshots above attached as hidden clients: tools that come and
    // go are not logged at info, so a polling script floods nothing.
    assert!(
        !text.contains("client attached") && !text.contains("hidden=true"),
        "hidden clients logged at info:\n{text}"
    );
    // One record per line: time, level, node.
    let first = text.lines().next().unwrap();
    let fields: Vec<&str> = first.split_whitespace().collect();
    assert_eq!(fields[0].len(), "00:00:00.000".len(), "{first}");
    assert!(["INFO", "WARN", "ERROR"].contains(&fields[1]), "{first}");

    // `--tail N` prints the last N records cluster-wide, however many
    // nodes there are and whatever they log meanwhile (three nodes have at
    // least their three "demo node up" records).
    for (n, want) in [("0", 0), ("2", 2), ("3", 3)] {
        let out = demo.run(&["logs", "--tail", n]);
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.lines().count(), want, "--tail {n}:\n{text}");
    }

    // The plain snapshot names every node too.
    let out = demo.run(&["snapshot"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for node in NODES {
        assert!(text.contains(node), "{text}");
    }
}

#[test]
fn the_demo_cookie_is_random_private_and_off_the_command_line() {
    use std::os::unix::fs::PermissionsExt;
    let demo = Demo::start();
    let cookie = demo.cookie();
    assert_eq!(cookie.len(), 20, "{cookie}");
    assert!(cookie.bytes().all(|b| b.is_ascii_uppercase()), "{cookie}");
    let file = demo.file();
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir = std::fs::metadata(file.parent().unwrap()).unwrap();
    assert_eq!(dir.permissions().mode() & 0o777, 0o700);
    // Opened to others, the file is refused, as a cookie file is: the
    // commands attach without its cookie (and say why).
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = demo.run(&["snapshot"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("others may read it"), "{err}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // No process of the demo shows the cookie on its command line.
    let children = Command::new("pgrep")
        .args(["-P", &demo.child.id().to_string()])
        .output()
        .unwrap();
    let pids: Vec<String> = String::from_utf8(children.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(pids.len(), NODES.len(), "{pids:?}");
    for pid in pids.iter().chain([&demo.child.id().to_string()]) {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let cmdline = String::from_utf8_lossy(&cmdline);
        assert!(
            !cmdline.contains(&cookie),
            "the cookie is on a command line: {cmdline}"
        );
    }
    // snapshot found the cookie by itself.
    let out = demo.run(&["snapshot", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut demo = demo;
    demo.stop();
    assert!(
        !file.exists(),
        "the demo file is removed when the demo stops"
    );
}

#[test]
fn errors_a_user_hits_are_one_line_and_a_failure_status() {
    let demo = Demo::start();
    let out = Command::new(BIN)
        .args(["--node", &demo.addr, "--cookie", "wrong", "snapshot"])
        .env("HOME", demo.home.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("refused the cookie"), "{err}");

    // Nothing listens: said first, cookie or not, with what to do.
    for cookie in [&["--cookie", "x"][..], &[]] {
        let out = Command::new(BIN)
            .args(["--node", "127.0.0.1:1"])
            .args(cookie)
            .arg("snapshot")
            .env("HOME", demo.home.path())
            .env_remove("CLUSTERTOP_COOKIE")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8(out.stderr).unwrap();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(
            lines[0].contains("no clustertop node at 127.0.0.1:1"),
            "{err}"
        );
        assert!(lines[1].contains("clustertop demo"), "{err}");
    }

    // A collector that is not a URL is named by its flag, before any node
    // starts.
    let out = Command::new(BIN)
        .args(["demo", "--headless", "--port", "0", "--otlp", "not a url"])
        .env("HOME", demo.home.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--otlp \"not a url\" is not a collector URL"),
        "{err}"
    );

    // Something else listens (an HTTP server, as a metrics port): said so.
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = http.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut conn in http.incoming().flatten() {
            let mut buf = [0u8; 512];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    let out = Command::new(BIN)
        .args([
            "--node",
            &format!("127.0.0.1:{port}"),
            "--cookie",
            "x",
            "snapshot",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("does not speak the clustertop protocol"),
        "{err}"
    );
}

#[test]
fn a_client_without_a_cookie_says_so_and_creates_none() {
    let demo = Demo::start();
    // A home of its own: no demo file, no cookie file.
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["--node", &demo.addr, "snapshot"])
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

#[test]
fn one_meaning_per_flag_on_either_side_of_the_subcommand() {
    let demo = Demo::start();
    let clustertop = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("HOME", demo.home.path())
            .env_remove("CLUSTERTOP_COOKIE")
            .env_remove("CLUSTERTOP_NODE")
            .output()
            .expect("clustertop runs")
    };
    let names = |out: &std::process::Output| -> Vec<String> {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_owned())
            .collect()
    };
    // --node before or after the subcommand, and none at all: the running
    // demo's entry.
    assert_eq!(
        names(&clustertop(&["--node", &demo.addr, "snapshot", "--json"])),
        NODES
    );
    assert_eq!(
        names(&clustertop(&["snapshot", "--node", &demo.addr, "--json"])),
        NODES
    );
    assert_eq!(names(&clustertop(&["snapshot", "--json"])), NODES);

    // The log filter takes a node's short name...
    let out = clustertop(&["logs", "--only-node", "demo-2", "--tail", "200"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("demo node up"), "{text}");
    assert!(
        text.lines().all(|l| l.contains("demo-2@localhost")),
        "records of other nodes:\n{text}"
    );
    // ...and says so when it matches no node.
    let out = clustertop(&["logs", "--only-node", "127.0.0.1:9"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("no node of the cluster has that name") && err.contains("demo-1@localhost"),
        "{err}"
    );
    let out = clustertop(&["logs", "--only-node", "demo-"]);
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("several nodes")
    );

    // The demo starts its own cluster: an entry address is refused.
    let out = clustertop(&["demo", "--node", "127.0.0.1:9"]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("--port"));

    // --interval is offered where it does something.
    let help = |args: &[&str]| String::from_utf8(clustertop(args).stdout).unwrap();
    assert!(help(&["--help"]).contains("--interval"));
    assert!(help(&["demo", "--help"]).contains("--interval"));
    assert!(!help(&["snapshot", "--help"]).contains("--interval"));
    assert!(!help(&["logs", "--help"]).contains("--interval"));
    assert!(help(&["logs", "--help"]).contains("--node"));
}

#[test]
fn snapshot_names_the_saturated_process_in_its_warning() {
    let demo = Demo::start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let (warning, top) = loop {
        let out = demo.run(&["snapshot", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let found = v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["kind"] == "saturated")
            .cloned();
        if let Some(w) = found {
            break (w, v["top_processes"][0].clone());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no saturation warning: {v}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert_eq!(warning["name"], "ChatSystem.MessageStore", "{warning}");
    let pid = warning["pid"].as_str().expect("a pid string");
    assert!(pid.starts_with("<demo-") && pid.ends_with('>'), "{pid}");
    assert_eq!(top["pid"], warning["pid"]);
    assert!(
        warning["util_permille"].as_u64().unwrap() >= 900,
        "{warning}"
    );
    assert_eq!(warning["behaviour"], "MessageStore", "{warning}");
    assert_eq!(top["name"], "ChatSystem.MessageStore", "{top}");
    assert!(top["util_permille"].as_u64().unwrap() >= 900, "{top}");
}

#[test]
fn two_demos_keep_their_own_files() {
    let first = Demo::start();
    let mut second = Demo::start_in(first.home.clone());
    assert_ne!(first.addr, second.addr);
    assert_ne!(first.cookie(), second.cookie());
    // Each is found by its address, with its own cookie.
    for demo in [&first, &second] {
        let out = demo.run(&["snapshot", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Stopping the second leaves the first's file, and the first found.
    second.stop();
    assert!(first.file().exists());
    assert!(!second.file().exists());
    let out = first.run(&["snapshot"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_headless_demo_runs_until_a_signal_and_then_cleans_up() {
    for signal in ["INT", "TERM", "HUP"] {
        let mut demo = Demo::start();
        let pid = demo.child.id().to_string();
        let children = Command::new("pgrep").args(["-P", &pid]).output().unwrap();
        let nodes: Vec<String> = String::from_utf8(children.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(nodes.len(), NODES.len());
        // Its standard input is empty (a script's): it still serves.
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert!(
            demo.child.try_wait().unwrap().is_none(),
            "the demo ended with empty standard input"
        );
        assert!(demo.run(&["snapshot"]).status.success());
        let status = clustertop_testkit::signal_and_wait(&mut demo.child, signal)
            .unwrap_or_else(|| panic!("clustertop demo still ran 10 s after SIG{signal}"));
        assert!(status.success(), "SIG{signal}: {status}");
        for node in nodes {
            assert!(
                !std::path::Path::new(&format!("/proc/{node}")).exists()
                    || std::fs::read_to_string(format!("/proc/{node}/stat"))
                        .is_ok_and(|s| s.contains(") Z ")),
                "SIG{signal}: node process {node} outlived the demo"
            );
        }
        // Its file and its Prometheus targets file are gone.
        let left: Vec<_> = std::fs::read_dir(demo.home.path().join(".clustertop.demos"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "SIG{signal} left {left:?}");
    }
}

#[test]
fn snapshot_and_logs_attach_elsewhere_when_the_entry_node_is_gone() {
    let demo = Demo::start();
    // The entry node, demo-1, is killed outright.
    let entry = Command::new("pgrep")
        .args([
            "-P",
            &demo.child.id().to_string(),
            "-f",
            "name demo-1@localhost",
        ])
        .output()
        .unwrap();
    let entry = String::from_utf8(entry.stdout).unwrap();
    let entry = entry.trim();
    assert!(!entry.is_empty(), "no demo-1 process");
    assert!(
        Command::new("kill")
            .args(["-KILL", entry])
            .status()
            .unwrap()
            .success()
    );
    // Until it is gone (a zombie of the demo's counts as gone).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{entry}/stat")).is_ok_and(|s| !s.contains(") Z "))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "demo-1 outlived SIGKILL"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Without --node: the demo's entry, then its other nodes.
    let home_run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("HOME", demo.home.path())
            .env_remove("CLUSTERTOP_COOKIE")
            .env_remove("CLUSTERTOP_NODE")
            .output()
            .expect("clustertop runs")
    };
    for out in [
        home_run(&["snapshot", "--json"]),
        demo.run(&["snapshot", "--json"]),
    ] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("attached at"), "{stderr}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let down = v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == "demo-1@localhost")
            .map(|n| n["status"].clone());
        assert!(
            down.is_none() || down.as_ref().is_some_and(|s| s != "up"),
            "{v}"
        );
    }
    let out = home_run(&["logs", "--tail", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 2);
}
