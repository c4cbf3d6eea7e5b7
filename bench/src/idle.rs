//! What an idle cluster costs.
//!
//! - `idle-cpu`: three nodes, each its own OS process with the agent on
//!   (default settings: a sample every second) and a full mesh over
//!   loopback with the default heartbeat, doing no work; the CPU time each
//!   process uses over a window (30 s, 5 s with `--quick`), from
//!   `/proc/<pid>/stat`, after 3 s to settle.
//! - `scale-mesh`: sixteen such nodes. The first starts alone; the other
//!   fifteen start at once and each connects to the first only: the time
//!   until every one of them sees all fifteen others (the mesh completes
//!   itself), process start included; then the same idle CPU window; then
//!   a client attached to the first node, as clustertop attaches, asks
//!   for the cluster overview and for the cluster-wide top 20 processes
//!   (the default ranking, every node asked) 200 times each (50 with
//!   `--quick`), one after the other: p50 and p99 of each.

use crate::report::Sample;
use clustertop_agent::{Agent, AgentConfig};
use clustertop_runtime::dist::DistConfig;
use clustertop_runtime::{Node, NodeConfig};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const COOKIE: &str = "clustertop-bench-idle";
const NODES: usize = 3;
const SCALE_NODES: usize = 16;

/// One idle node with the agent (used internally): joins the mesh through
/// the first of `peers`, waits to see `expect` other nodes, prints
/// `listening ADDR`, and runs until killed.
pub(crate) async fn serve_idle(name: &str, peers: &[String], expect: usize) {
    let node = Node::start(
        NodeConfig::new(name)
            .dist(DistConfig::listen("127.0.0.1:0".parse().expect("addr")).cookie(COOKIE)),
    )
    .expect("node");
    // The first node is enough: the mesh connects the others.
    if let Some(p) = peers.first() {
        node.connect(p).await.expect("connect");
    }
    while node.nodes().len() < expect {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _agent = Agent::start(&node, AgentConfig::default())
        .await
        .expect("agent");
    println!("listening {}", node.listen_addr().expect("listening"));
    std::future::pending::<()>().await;
}

/// A node's OS process, killed when dropped.
struct Idle(Child);

impl Drop for Idle {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a node's process; read its address with [`address`].
fn launch(name: &str, peers: &[String], expect: usize) -> Idle {
    let exe = std::env::current_exe().expect("own path");
    let child = Command::new(exe)
        .args([
            "serve-idle",
            "--name",
            name,
            "--expect",
            &expect.to_string(),
        ])
        .args(peers.iter().flat_map(|p| ["--peer", p.as_str()]))
        .stdout(Stdio::piped())
        .spawn()
        .expect("node process");
    Idle(child)
}

/// Waits until the node's process has printed its address (it does once it
/// sees the nodes it expects) and returns it.
fn address(node: &mut Idle) -> String {
    let mut line = String::new();
    BufReader::new(node.0.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("its address");
    line.trim().trim_start_matches("listening ").to_owned()
}

/// User + system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parens.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13
    // after the name and state.
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

fn ticks_per_s() -> f64 {
    // The kernel's USER_HZ: 100 on every Linux this runs on; read it
    // through getconf where present.
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

pub(crate) async fn idle_cpu(quick: bool) -> Vec<Sample> {
    let mut nodes = Vec::new();
    let mut addrs: Vec<String> = Vec::new();
    for i in 0..NODES {
        let mut node = launch(&format!("idle-{i}@localhost"), &addrs, i);
        addrs.push(address(&mut node));
        nodes.push(node);
    }
    let (mean, max, window) = idle_window(&mut nodes, quick).await;
    vec![Sample {
        scenario: "idle-cpu",
        params: vec![("nodes", json!(NODES)), ("window_s", json!(window))],
        figures: vec![("cpu_ms_per_s_per_node", mean), ("cpu_ms_per_s_max", max)],
    }]
}

pub(crate) async fn scale_mesh(quick: bool) -> Vec<Sample> {
    let mut first = launch("scale-0@localhost", &[], 0);
    let entry = vec![address(&mut first)];
    let start = Instant::now();
    let mut nodes: Vec<Idle> = (1..SCALE_NODES)
        .map(|i| launch(&format!("scale-{i}@localhost"), &entry, SCALE_NODES - 1))
        .collect();
    for node in &mut nodes {
        address(node);
    }
    let mesh_ms = start.elapsed().as_secs_f64() * 1000.0;
    nodes.insert(0, first);
    let (mean, max, window) = idle_window(&mut nodes, quick).await;
    let asks = if quick { 50 } else { 200 };
    let (overview, top) = attached_latency(&entry[0], asks).await;
    vec![Sample {
        scenario: "scale-mesh",
        params: vec![
            ("nodes", json!(SCALE_NODES)),
            ("window_s", json!(window)),
            ("asks", json!(asks)),
        ],
        figures: vec![
            ("mesh_ms", mesh_ms),
            ("cpu_ms_per_s_per_node", mean),
            ("cpu_ms_per_s_max", max),
            ("overview_p50_ms", overview.0),
            ("overview_p99_ms", overview.1),
            ("top20_p50_ms", top.0),
            ("top20_p99_ms", top.1),
        ],
    }]
}

/// Attaches to `addr` and times `asks` overviews, then `asks` cluster-wide
/// top-20 pages: (p50, p99) of each, in ms.
async fn attached_latency(addr: &str, asks: usize) -> ((f64, f64), (f64, f64)) {
    use clustertop_client::{Client, ClientConfig};
    use clustertop_proto::{ProcessFilter, ProcessQuery, SortKey};
    let client = Client::connect(ClientConfig::new(addr).cookie(COOKIE))
        .await
        .expect("attach");
    // Every node's agent has answered at least once.
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.overview().await.expect("overview").nodes.len() < SCALE_NODES {
        assert!(
            Instant::now() < deadline,
            "the overview never listed every node"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut overview = Vec::with_capacity(asks);
    for _ in 0..asks {
        let t = Instant::now();
        let o = client.overview().await.expect("overview");
        overview.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(o.nodes.len(), SCALE_NODES);
    }
    let query = ProcessQuery {
        filter: ProcessFilter {
            include_system: true,
            ..ProcessFilter::default()
        },
        sort: SortKey::Default,
        descending: true,
        offset: 0,
        limit: 20,
    };
    let mut top = Vec::with_capacity(asks);
    for _ in 0..asks {
        let t = Instant::now();
        let page = client.processes(query.clone()).await.expect("processes");
        top.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(page.rows.len() as u64, page.total_matching.min(20));
    }
    (p50_p99(&mut overview), p50_p99(&mut top))
}

fn p50_p99(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}

/// After 3 s to settle, the CPU each node's process uses over the window
/// (30 s, 5 s quick): mean and max in ms per second, and the window in s.
async fn idle_window(nodes: &mut [Idle], quick: bool) -> (f64, f64, u64) {
    let window = Duration::from_secs(if quick { 5 } else { 30 });
    tokio::time::sleep(Duration::from_secs(3)).await;
    for n in nodes.iter_mut() {
        assert!(
            n.0.try_wait().expect("status").is_none(),
            "an idle node exited early"
        );
    }
    let pids: Vec<u32> = nodes.iter().map(|n| n.0.id()).collect();
    let before: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p)).collect();
    let start = Instant::now();
    tokio::time::sleep(window).await;
    let secs = start.elapsed().as_secs_f64();
    let after: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p)).collect();
    for n in nodes.iter_mut() {
        assert!(
            n.0.try_wait().expect("status").is_none(),
            "an idle node exited while measured"
        );
    }
    let hz = ticks_per_s();
    let per_node: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a - b) as f64 / hz / secs * 1000.0)
        .collect();
    let mean = per_node.iter().sum::<f64>() / per_node.len() as f64;
    let max = per_node.iter().copied().fold(0.0, f64::max);
    (mean, max, window.as_secs())
}
