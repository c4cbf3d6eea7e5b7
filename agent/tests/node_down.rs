//! A node that stops answering never holds up a cluster overview: a
//! frozen node (SIGSTOP) is marked slow within the per-node timeout, a
//! killed one (SIGKILL) down, and the answer arrives either way. The third
//! node is a separate OS process running `clustertop-agent-node`.

mod support;

use clustertop_client::{Client, ClientConfig};
use clustertop_proto::{NodeStatus, WarningKind};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{cluster, eventually, fast_config};

struct OsNode(Child);

impl Drop for OsNode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `clustertop-agent-node` in its own OS process, once it listens, and
/// the address it listens on.
fn agent_node(args: &[&str]) -> (OsNode, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clustertop-agent-node"))
        .args(args)
        .env("CLUSTERTOP_COOKIE", support::COOKIE)
        .env("CLUSTERTOP_TICK_MS", "20000")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("clustertop-agent-node starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "listening 127.0.0.1:PORT"
    assert!(line.starts_with("listening "), "{line:?}");
    let addr = line.split_whitespace().nth(1).unwrap().to_owned();
    (OsNode(child), addr)
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(ok.success());
    if sig == "-STOP" {
        wait_stopped(child.id());
    }
}

/// `kill` returns once the signal is queued; each thread stops when it
/// next leaves the kernel, which on a loaded machine can be later than a
/// request the test sends next. Waits until every thread reports `T`.
fn wait_stopped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let states: Vec<char> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .expect("the node's threads")
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
            // "pid (comm) S ...": the state follows the last ')'.
            .filter_map(|stat| stat.rsplit_once(')')?.1.trim_start().chars().next())
            .collect();
        if !states.is_empty() && states.iter().all(|s| matches!(s, 'T' | 't')) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {pid} not stopped: {states:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn status_of(o: &clustertop_proto::ClusterOverview, name: &str) -> NodeStatus {
    o.nodes
        .iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("{name} missing from {:?}", o.nodes))
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_node_is_slow_and_a_killed_node_is_down_and_the_overview_still_arrives() {
    let config = fast_config();
    let timeout = config.peer_timeout;
    let (nodes, _agents) = cluster(&["a@localhost", "b@localhost"], config).await;
    let (c, _) = agent_node(&["c@localhost", "127.0.0.1:0", &support::addr(&nodes[0])]);
    let client = Client::connect(
        ClientConfig::new(support::addr(&nodes[0]))
            .cookie(support::COOKIE)
            .timeout(Duration::from_secs(10)),
    )
    .await
    .unwrap();
    eventually("c to be up", Duration::from_secs(20), || async {
        let o = client.overview().await.unwrap();
        (o.nodes.len() == 3 && o.nodes.iter().all(|n| n.status == NodeStatus::Up)).then_some(())
    })
    .await;

    // Frozen: connected, but its agent cannot answer.
    signal(&c.0, "-STOP");
    let started = Instant::now();
    let o = client.overview().await.unwrap();
    let took = started.elapsed();
    assert_eq!(status_of(&o, "c@localhost"), NodeStatus::Slow);
    assert_eq!(status_of(&o, "b@localhost"), NodeStatus::Up);
    assert!(
        took < timeout + Duration::from_secs(1),
        "the overview took {took:?} with a per-node timeout of {timeout:?}"
    );

    // Killed: its connection closes and it is down, with a warning.
    signal(&c.0, "-KILL");
    let o = eventually("c to be down", Duration::from_secs(20), || async {
        let o = client.overview().await.unwrap();
        matches!(status_of(&o, "c@localhost"), NodeStatus::Down { .. }).then_some(o)
    })
    .await;
    match status_of(&o, "c@localhost") {
        NodeStatus::Down { last_seen_unix_ms } => assert!(last_seen_unix_ms.is_some()),
        other => panic!("{other:?}"),
    }
    assert_eq!(status_of(&o, "a@localhost"), NodeStatus::Up);
    assert!(
        o.warnings
            .iter()
            .any(|w| w.node == "c@localhost" && w.kind == WarningKind::NodeDown),
        "{:?}",
        o.warnings
    );
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_to_an_entry_node_that_dies_fail_at_once_and_nodes_say_where_they_listen() {
    let (node, addr) = agent_node(&["solo@localhost", "127.0.0.1:0"]);
    // A timeout far longer than the test: only the connection going down
    // can end the request below.
    let client = Client::connect(
        ClientConfig::new(addr.clone())
            .cookie(support::COOKIE)
            .timeout(Duration::from_secs(600)),
    )
    .await
    .unwrap();
    let o = client.overview().await.unwrap();
    assert_eq!(o.nodes[0].addr.as_deref(), Some(addr.as_str()), "{o:?}");

    // Frozen, a request waits; killed, it fails as disconnected.
    signal(&node.0, "-STOP");
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.overview().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    if waiting.is_finished() {
        panic!(
            "a request to a frozen node ended: {:?}",
            waiting.await.unwrap()
        );
    }
    signal(&node.0, "-KILL");
    match waiting.await.unwrap() {
        Err(clustertop_client::ClientError::Disconnected(n)) => assert_eq!(n, "solo@localhost"),
        other => panic!("{other:?}"),
    }
    // And so does the next one, without being sent.
    assert!(matches!(
        client.overview().await,
        Err(clustertop_client::ClientError::Disconnected(_))
    ));
    drop(node);
}
