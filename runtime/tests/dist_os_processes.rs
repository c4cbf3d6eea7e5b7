//! Nodes as separate OS processes (the `clustertop-node` binary): a mesh
//! across processes, messages through it, and a killed node seen down.

mod support;

use clustertop_runtime::dist::NodeDownReason;
use clustertop_runtime::{ExitReason, Pid, Received};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// A `clustertop-node` child process, killed when dropped.
struct OsNode {
    child: Child,
    addr: String,
}

impl OsNode {
    fn start(name: &str, tick_ms: u64, connect: Option<&str>) -> OsNode {
        OsNode::start_with(name, tick_ms, connect, &[])
    }

    fn start_with(name: &str, tick_ms: u64, connect: Option<&str>, extra: &[&str]) -> OsNode {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_clustertop-node"));
        cmd.args([
            "--name",
            name,
            "--listen",
            "127.0.0.1:0",
            "--cookie",
            "os-cookie",
        ])
        .args(["--tick-ms", &tick_ms.to_string()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        if let Some(seed) = connect {
            cmd.args(["--connect", seed]);
        }
        let mut child = cmd.spawn().expect("clustertop-node starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        OsNode { child, addr }
    }
}

impl OsNode {
    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }
}

impl Drop for OsNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Fired = (&'static str, clustertop_runtime::ProcessId, ExitReason);

/// The next two signals are a DOWN and an EXIT about `pid`, both with
/// reason `noconnection`.
async fn expect_noconnection(
    seen: &mut tokio::sync::mpsc::UnboundedReceiver<Fired>,
    pid: clustertop_runtime::ProcessId,
) {
    let mut fired = Vec::new();
    for _ in 0..2 {
        fired.push(
            tokio::time::timeout(LIMIT, seen.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    fired.sort_by_key(|f| f.0);
    assert_eq!(
        fired,
        [
            ("DOWN", pid, ExitReason::NoConnection),
            ("EXIT", pid, ExitReason::NoConnection)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_os_processes_mesh_talk_and_detect_a_kill() {
    let tick = Duration::from_millis(600);
    let n1 = OsNode::start("os1@localhost", 600, None);
    let mut n2 = OsNode::start("os2@localhost", 600, Some(&n1.addr));
    // This test process is the third node; it joins through os1 only.
    let me = support::dist_node("os3@localhost", "os-cookie", tick);
    me.connect(&n1.addr).await.unwrap();
    support::wait_nodes(&me, &["os1@localhost", "os2@localhost"], LIMIT).await;

    // Ask each OS-process node's echo service; the answers name the node.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let asker = me.spawn::<String, _, _>(move |mut ctx| async move {
        let me = ctx.pid();
        for node in ["os1@localhost", "os2@localhost"] {
            ctx.node()
                .dist()
                .send_named_on(node, "echo", (me.clone(), format!("hello {node}")))
                .unwrap();
        }
        for _ in 0..2 {
            if let Received::Msg(answer) = ctx.recv().await {
                tx.send(answer).unwrap();
            }
        }
    });
    let mut answers = vec![
        tokio::time::timeout(LIMIT, rx.recv())
            .await
            .unwrap()
            .unwrap(),
        tokio::time::timeout(LIMIT, rx.recv())
            .await
            .unwrap()
            .unwrap(),
    ];
    answers.sort();
    assert_eq!(
        answers,
        [
            "os1@localhost: hello os1@localhost",
            "os2@localhost: hello os2@localhost"
        ]
    );
    let _ = asker;

    // A process here links to and monitors a process on each of os1, os2.
    let (sleepers_tx, sleepers_rx) = tokio::sync::oneshot::channel();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    me.spawn::<Pid<u64>, _, _>(move |mut ctx| async move {
        ctx.trap_exit(true);
        let me = ctx.pid();
        let mut sleepers = Vec::new();
        for node in ["os1@localhost", "os2@localhost"] {
            ctx.node()
                .dist()
                .send_named_on(node, "sleeper", me.clone())
                .unwrap();
            if let Received::Msg(pid) = ctx.recv().await {
                ctx.link(pid.id()).unwrap();
                ctx.monitor(pid.id());
                sleepers.push(pid.id());
            }
        }
        sleepers_tx.send(sleepers).unwrap();
        loop {
            match ctx.recv().await {
                Received::Exit(e) => seen_tx.send(("EXIT", e.from, e.reason)).unwrap(),
                Received::Down(d) => seen_tx.send(("DOWN", d.pid, d.reason)).unwrap(),
                _ => {}
            }
        }
    });
    let sleepers = tokio::time::timeout(LIMIT, sleepers_rx)
        .await
        .unwrap()
        .unwrap();

    // Kill os2 outright: its connection closes, the node is down, and the
    // link and monitor fire with noconnection.
    let mut events = me.dist().node_events().unwrap();
    n2.child.kill().unwrap();
    let (reason, _) = support::wait_down(&mut events, "os2@localhost", LIMIT).await;
    assert!(
        matches!(
            reason,
            NodeDownReason::ConnectionClosed | NodeDownReason::Io(_)
        ),
        "{reason:?}"
    );
    assert_eq!(me.nodes(), ["os1@localhost"]);
    expect_noconnection(&mut seen, sleepers[1]).await;

    // Freeze os1 (SIGSTOP): its socket stays open but heartbeats stop, so
    // it is declared down within two ticks.
    let started = tokio::time::Instant::now();
    let stop = Command::new("kill")
        .args(["-STOP", &n1.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stop.success());
    let (reason, _) = support::wait_down(&mut events, "os1@localhost", LIMIT).await;
    assert_eq!(reason, NodeDownReason::HeartbeatTimeout);
    assert!(
        started.elapsed() <= tick * 2,
        "a frozen node was declared down after {:?}, more than 2 ticks",
        started.elapsed()
    );
    expect_noconnection(&mut seen, sleepers[0]).await;
    assert!(me.nodes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_rejoins_the_mesh_and_its_global_names_resolve() {
    let tick = Duration::from_millis(1_000);
    let a = OsNode::start("pa@localhost", 1_000, None);
    let _b = OsNode::start("pb@localhost", 1_000, Some(&a.addr));
    let c = OsNode::start_with("pc@localhost", 1_000, Some(&a.addr), &["--global", "svc-c"]);
    let me = support::dist_node("pt@localhost", "os-cookie", tick);
    me.connect(&a.addr).await.unwrap();
    let all = ["pa@localhost", "pb@localhost", "pc@localhost"];
    support::wait_nodes(&me, &all, LIMIT).await;
    type Echo = (Pid<String>, String);
    support::wait_for("svc-c known", LIMIT, || {
        me.global().whereis::<Echo>("svc-c").is_some()
    })
    .await;

    // Paused past the tick: everyone declares it down, and forgets its
    // global names.
    let mut events = me.dist().node_events().unwrap();
    c.signal("-STOP");
    support::wait_down(&mut events, "pc@localhost", LIMIT).await;
    support::wait_for("svc-c forgotten", LIMIT, || {
        me.global().whereis::<Echo>("svc-c").is_none()
    })
    .await;

    // Resumed: it connects to its member again, the mesh forms around it,
    // and its global name resolves and answers.
    c.signal("-CONT");
    support::wait_nodes(&me, &all, LIMIT).await;
    support::wait_for("svc-c known again", LIMIT, || {
        me.global().whereis::<Echo>("svc-c").is_some()
    })
    .await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    me.spawn::<String, _, _>(move |mut ctx| async move {
        let svc = ctx.node().global().whereis::<Echo>("svc-c").unwrap();
        svc.send((ctx.pid(), "back".into()));
        if let Received::Msg(answer) = ctx.recv().await {
            tx.send(answer).unwrap();
        }
    });
    let answer = tokio::time::timeout(LIMIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer, "pc@localhost: back");
}

/// A `clustertop-node` started by `sh` after `ulimit`, and its address.
fn limited_node(ulimit: &str) -> (Child, String) {
    let bin = env!("CARGO_BIN_EXE_clustertop-node");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit {ulimit} && exec {bin} --name fd@localhost --listen 127.0.0.1:0 --cookie os-cookie"
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().strip_prefix("listening ").unwrap().to_owned();
    (child, addr)
}

/// The soft and hard open-files limits of process `pid`.
fn open_files_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let cols: Vec<&str> = line.split_whitespace().collect();
    (cols[3].to_owned(), cols[4].to_owned())
}

#[test]
fn a_listening_node_raises_its_open_files_limit_to_the_hard_limit() {
    let (mut child, _) = limited_node("-S -n 256");
    let (soft, hard) = open_files_limits(child.id());
    let _ = child.kill();
    let _ = child.wait();
    assert_ne!(soft, "256", "the soft limit was not raised");
    assert_eq!(soft, hard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_a_node_closes_new_connections_at_once() {
    use tokio::io::AsyncReadExt;
    // 32 descriptors in all (soft and hard): a few are the node's own.
    let (mut child, addr) = limited_node("-n 32");
    let target: std::net::SocketAddr = addr.parse().unwrap();
    let mut held = Vec::new();
    for ip in 2..8 {
        for _ in 0..8 {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket
                .bind(format!("127.0.0.{ip}:0").parse().unwrap())
                .unwrap();
            held.push(socket.connect(target).await.unwrap());
        }
    }
    // 48 strangers: those past the node's descriptors are closed at once,
    // not left in the backlog until they give up.
    let mut closed = 0;
    for s in &mut held {
        let mut buf = [0u8; 16];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await
        {
            closed += 1;
        }
    }
    assert!(closed >= 16, "only {closed} of 48 closed");
    // Once they are gone, the node serves again.
    drop(held);
    let me = support::dist_node("fdt@localhost", "os-cookie", Duration::from_secs(60));
    support::wait_for_async("a connection", LIMIT, || {
        let me = me.clone();
        let addr = addr.clone();
        async move { me.connect(&addr).await.is_ok() }
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
}
