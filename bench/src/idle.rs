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
//!   `--quick`), one after the other: p50 and p99 of each. Last, remote
//!   throughput while such a client polls: a hidden node of the bench's own
//!   sends small messages to a sink on the second node, three runs without
//!   and three with the client polling the first node every second,
//!   alternated.
//! - `scale-processes`: four such nodes holding 250,000 idle processes each
//!   (10,000 with `--quick`) and one process whose mailbox grows (fed 1,000
//!   messages a second, never read). Each node reports the resident memory
//!   its agent added (RSS before the agent starts and after three samples)
//!   and the bytes of its sample; a client attached to the first node asks
//!   for the process view's first page (50 rows) sorted by mailbox growth,
//!   every node asked: p50 and p99 over 50 asks (20 with `--quick`).

use crate::report::Sample;
use clustertop_agent::{Agent, AgentConfig};
use clustertop_runtime::dist::DistConfig;
use clustertop_runtime::{Node, NodeConfig, Received};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const COOKIE: &str = "clustertop-bench-idle";
const NODES: usize = 3;
const SCALE_NODES: usize = 16;

/// One idle node with the agent (used internally): joins the mesh through
/// the first of `peers`, waits to see `expect` other nodes, starts a `sink`
/// (see `remote`), `processes` idle processes and, with processes, one
/// whose mailbox grows; starts the agent, prints `listening ADDR` and then
/// `agent RSS_BYTES SAMPLE_BYTES` (what the agent added to the resident
/// set after three samples, and its sample's bytes), and runs until
/// killed.
pub(crate) async fn serve_idle(name: &str, peers: &[String], expect: usize, processes: usize) {
    let node = Node::start(
        NodeConfig::new(name)
            .dist(DistConfig::listen("127.0.0.1:0".parse().expect("addr")).cookie(COOKIE)),
    )
    .expect("node");
    // The first node is enough: the mesh connects the others. All the
    // nodes start at once from one address, past the seed's handshakes per
    // IP (8 by default), which closes the excess at once: retry, as a
    // joining node would.
    if let Some(p) = peers.first() {
        let mut attempt = 0u64;
        while let Err(e) = node.connect(p).await {
            attempt += 1;
            assert!(attempt < 50, "connect to {p}: {e}");
            tokio::time::sleep(Duration::from_millis(20 * attempt.min(10))).await;
        }
    }
    while node.nodes().len() < expect {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    crate::remote::spawn_sink(&node);
    let _held = populate(&node, processes).await;
    let before = rss_bytes();
    let agent = Agent::start(&node, AgentConfig::default())
        .await
        .expect("agent");
    if processes > 0 {
        // Three samples, at the default interval of a second.
        tokio::time::sleep(Duration::from_millis(3_300)).await;
    }
    let added = rss_bytes().saturating_sub(before);
    println!(
        "listening {}",
        node.dist().listen_addr().expect("listening")
    );
    println!("agent {added} {}", agent.memory().sample_bytes);
    std::future::pending::<()>().await;
}

/// Spawns `n` idle processes and, if `n > 0`, one registered as `slow`
/// whose mailbox grows by 1,000 messages a second; waits until every one
/// has run to its first wait. Returns their pids, to hold.
async fn populate(node: &Node, n: usize) -> Vec<clustertop_runtime::Pid<()>> {
    let mut pids = Vec::with_capacity(n);
    if n == 0 {
        return pids;
    }
    for i in 0..n {
        pids.push(node.spawn::<(), _, _>(|mut ctx| async move {
            while let Received::Msg(()) = ctx.recv().await {}
        }));
        if i % 1024 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let slow = node.spawn::<(), _, _>(|_ctx| std::future::pending::<()>());
    node.register("slow", slow.id()).expect("register");
    node.spawn::<(), _, _>(move |_ctx| async move {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        loop {
            tick.tick().await;
            for _ in 0..10 {
                slow.send(());
            }
        }
    });
    loop {
        let mut started = 0;
        node.introspect()
            .scan(|p| started += usize::from(p.polls > 0));
        if started >= n {
            return pids;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// This process's resident set, in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
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
    launch_with(name, peers, expect, 0)
}

/// [`launch`], the node holding `processes` idle processes.
fn launch_with(name: &str, peers: &[String], expect: usize, processes: usize) -> Idle {
    let exe = std::env::current_exe().expect("own path");
    let child = Command::new(exe)
        .args([
            "serve-idle",
            "--name",
            name,
            "--expect",
            &expect.to_string(),
            "--processes",
            &processes.to_string(),
        ])
        .args(peers.iter().flat_map(|p| ["--peer", p.as_str()]))
        .stdout(Stdio::piped())
        .spawn()
        .expect("node process");
    Idle(child)
}

/// Waits until the node's process has printed its address (it does once it
/// sees the nodes it expects) and returns it, with the agent's memory:
/// (resident bytes it added, its sample's bytes).
fn address_and_agent(node: &mut Idle) -> (String, (u64, u64)) {
    let mut out = BufReader::new(node.0.stdout.take().expect("piped"));
    let mut line = String::new();
    out.read_line(&mut line).expect("its address");
    let addr = line.trim().trim_start_matches("listening ").to_owned();
    line.clear();
    out.read_line(&mut line).expect("its agent's memory");
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    (
        addr,
        (
            f.first().copied().unwrap_or(0),
            f.get(1).copied().unwrap_or(0),
        ),
    )
}

fn address(node: &mut Idle) -> String {
    address_and_agent(node).0
}

/// User + system CPU time of a process, in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parens.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13
    // after the name and state.
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

pub(crate) fn ticks_per_s() -> f64 {
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
    let addrs: Vec<String> = nodes.iter_mut().map(address).collect();
    let mesh_ms = start.elapsed().as_secs_f64() * 1000.0;
    nodes.insert(0, first);
    let (mean, max, window) = idle_window(&mut nodes, quick).await;
    let asks = if quick { 50 } else { 200 };
    let (overview, top) = attached_latency(&entry[0], asks).await;
    let (plain, polled) = polled_throughput(&entry[0], &addrs[0], quick).await;
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
            ("remote_msgs_per_s", plain),
            ("remote_msgs_per_s_polled", polled),
            ("remote_lost_pct_polled", (1.0 - polled / plain) * 100.0),
        ],
    }]
}

/// Small messages from a hidden node of this process to the sink of the
/// node at `target` (`scale-1`), three runs without and three with a
/// client polling `entry` every second, alternated: the median msg/s of
/// each.
async fn polled_throughput(entry: &str, target: &str, quick: bool) -> (f64, f64) {
    let total: u64 = if quick { 300_000 } else { 3_000_000 };
    let node = Node::start(
        NodeConfig::new("scale-bench@localhost")
            .dist(DistConfig::default().cookie(COOKIE).hidden(true)),
    )
    .expect("bench node");
    let to = node.connect(target).await.expect("connect");
    let run = || {
        crate::remote::pump(&node, &to, 1, total, 10_000, 200_000, || {
            crate::remote::SinkMsg::Small([7; 16])
        })
    };
    // A warm-up run.
    run().await;
    let (mut plain, mut polled) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        plain.push(total as f64 / run().await);
        let poller = crate::agent::attach_and_poll(entry, COOKIE).await;
        polled.push(total as f64 / run().await);
        poller.abort();
    }
    (median(&mut plain), median(&mut polled))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Four nodes of 250,000 idle processes each (10,000 quick): the agent's
/// memory per node, and the time for the first page sorted by mailbox
/// growth through the first node.
pub(crate) async fn scale_processes(quick: bool) -> Vec<Sample> {
    const NODES: usize = 4;
    const PAGE: u32 = 50;
    let per_node = if quick { 10_000 } else { 250_000 };
    let mut first = launch_with("many-0@localhost", &[], 0, per_node);
    let (entry, first_agent) = address_and_agent(&mut first);
    let peers = vec![entry.clone()];
    let mut nodes: Vec<Idle> = (1..NODES)
        .map(|i| launch_with(&format!("many-{i}@localhost"), &peers, 1, per_node))
        .collect();
    let mut agents = vec![first_agent];
    agents.extend(nodes.iter_mut().map(|n| address_and_agent(n).1));
    nodes.insert(0, first);

    use clustertop_client::{Client, ClientConfig};
    use clustertop_proto::{ProcessFilter, ProcessQuery, SortKey};
    let client = Client::connect(ClientConfig::new(&entry).cookie(COOKIE))
        .await
        .expect("attach");
    let query = ProcessQuery {
        filter: ProcessFilter::default(),
        sort: SortKey::MailboxGrowth,
        descending: true,
        offset: 0,
        limit: PAGE,
    };
    // Every node is in the mesh and its slow process is growing.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = client.processes(query.clone()).await.expect("processes");
        let growing =
            page.rows.iter().take(NODES).filter(|r| {
                r.name.as_deref() == Some("slow") && r.figures.mailbox_growth_per_s > 0
            });
        if growing.count() == NODES && page.total_matching >= (NODES * per_node) as u64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first page never showed the four growing mailboxes first"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let asks = if quick { 20 } else { 50 };
    let mut times = Vec::with_capacity(asks);
    for _ in 0..asks {
        let t = Instant::now();
        let page = client.processes(query.clone()).await.expect("processes");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(page.rows.len(), PAGE as usize);
    }
    let (p50, p99) = p50_p99(&mut times);
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    let rss: Vec<f64> = agents.iter().map(|a| mib(a.0)).collect();
    let sample: Vec<f64> = agents.iter().map(|a| mib(a.1)).collect();
    let ((rss_mean, rss_max), (sample_mean, _)) = (mean_max(&rss), mean_max(&sample));
    drop(nodes);
    vec![Sample {
        scenario: "scale-processes",
        params: vec![
            ("nodes", json!(NODES)),
            ("processes_per_node", json!(per_node)),
            ("page_rows", json!(PAGE)),
            ("asks", json!(asks)),
        ],
        figures: vec![
            ("first_page_p50_ms", p50),
            ("first_page_p99_ms", p99),
            ("agent_rss_mib_per_node", rss_mean),
            ("agent_rss_mib_max", rss_max),
            ("agent_sample_mib_per_node", sample_mean),
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
    let (mean, max) = mean_max(&per_node);
    (mean, max, window.as_secs())
}

/// The mean and the maximum of `v`.
fn mean_max(v: &[f64]) -> (f64, f64) {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (mean, v.iter().copied().fold(0.0, f64::max))
}
