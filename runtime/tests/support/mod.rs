//! Helpers shared by the runtime's integration tests.
#![allow(dead_code, unreachable_pub)]

use clustertop_runtime::{ClockSource, Node, NodeConfig, ProcessId};
use std::future::Future;
use std::time::Duration;

/// A node on tokio's clock, so `start_paused` tests control time.
pub fn node() -> Node {
    Node::start(NodeConfig::new("test@localhost").clock(ClockSource::Tokio)).expect("node starts")
}

/// Polls `cond` every millisecond of (paused or real) tokio time until it
/// holds, for at most `limit`. Panics with `what` otherwise.
pub async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Like [`wait_for`] with an async condition.
pub async fn wait_for_async<F, Fut>(what: &str, limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits until `pid` is no longer alive on `node`.
pub async fn wait_dead(node: &Node, pid: ProcessId) {
    let n = node.clone();
    wait_for(
        &format!("{pid} to exit"),
        Duration::from_secs(10),
        move || !n.is_alive(pid),
    )
    .await;
}

/// A distributed node listening on an ephemeral loopback port.
pub fn dist_node(name: &str, cookie: &str, tick: Duration) -> Node {
    use clustertop_runtime::dist::DistConfig;
    let config = DistConfig::listen("127.0.0.1:0".parse().unwrap())
        .cookie(cookie)
        .tick_time(tick)
        .handshake_timeout(Duration::from_secs(2));
    Node::start(NodeConfig::new(name).dist(config)).expect("node starts")
}

/// The `host:port` a node listens on.
pub fn addr(node: &Node) -> String {
    node.dist().listen_addr().expect("listening").to_string()
}

/// Two distributed nodes, `a@localhost` and `b@localhost` (cookie `c`),
/// `b` connected to `a`, once `a` sees `b`.
pub async fn pair(tick: Duration) -> (Node, Node) {
    let a = dist_node("a@localhost", "c", tick);
    let b = dist_node("b@localhost", "c", tick);
    b.connect(&addr(&a)).await.unwrap();
    wait_nodes(&a, &["b@localhost"], Duration::from_secs(10)).await;
    (a, b)
}

/// Waits (on node events, not by polling) until `node.nodes()` equals
/// `expected` (sorted), for at most `limit`.
pub async fn wait_nodes(node: &Node, expected: &[&str], limit: Duration) {
    let mut events = node.dist().node_events().expect("distributed");
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if node.nodes() == expected {
            return;
        }
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(_) => {}
            Err(_) => panic!(
                "{}: nodes() is {:?}, expected {:?}",
                node.name(),
                node.nodes(),
                expected
            ),
        }
    }
}

/// Waits for the next `Down` event about `peer`; returns how long it took.
pub async fn wait_down(
    events: &mut tokio::sync::broadcast::Receiver<clustertop_runtime::dist::NodeEvent>,
    peer: &str,
    limit: Duration,
) -> (clustertop_runtime::dist::NodeDownReason, Duration) {
    use clustertop_runtime::dist::NodeEvent;
    let start = tokio::time::Instant::now();
    loop {
        match tokio::time::timeout_at(start + limit, events.recv()).await {
            Ok(Ok(NodeEvent::Down { node, reason })) if node == peer => {
                return (reason, start.elapsed());
            }
            Ok(_) => {}
            Err(_) => panic!("no nodedown for {peer} within {limit:?}"),
        }
    }
}

/// A TCP proxy for one connection: records what the client sends and can
/// inject bytes into the client → server direction.
pub struct Proxy {
    /// Where clients connect.
    pub addr: String,
    /// Bytes the client has sent so far.
    pub recorded: std::sync::Arc<parking_lot::Mutex<Vec<u8>>>,
    inject: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    paused: std::sync::Arc<std::sync::atomic::AtomicBool>,
    deaf: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    /// Starts a proxy in front of `upstream`.
    pub async fn start(upstream: String) -> Proxy {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let recorded = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (inject, mut injected) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let rec = recorded.clone();
        let paused = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let is_paused = paused.clone();
        let deaf = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let is_deaf = deaf.clone();
        tokio::spawn(async move {
            let (client, _) = listener.accept().await.unwrap();
            let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    if is_deaf.load(std::sync::atomic::Ordering::Relaxed) {
                        // Stop reading: the server's socket buffers fill up.
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        continue;
                    }
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = cw.shutdown().await;
            });
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                if is_paused.load(std::sync::atomic::Ordering::Relaxed) {
                    // Stop reading: the client's socket buffers fill up.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                tokio::select! {
                    n = cr.read(&mut buf) => {
                        let n = match n { Ok(0) | Err(_) => break, Ok(n) => n };
                        rec.lock().extend_from_slice(&buf[..n]);
                        if sw.write_all(&buf[..n]).await.is_err() { break; }
                    }
                    bytes = injected.recv() => {
                        let Some(bytes) = bytes else { break };
                        if sw.write_all(&bytes).await.is_err() { break; }
                    }
                }
            }
        });
        Proxy {
            addr,
            recorded,
            inject,
            paused,
            deaf,
        }
    }

    /// Stops (or resumes) forwarding what the client sends.
    pub fn pause(&self, paused: bool) {
        self.paused
            .store(paused, std::sync::atomic::Ordering::Relaxed);
    }

    /// Stops (or resumes) forwarding what the server sends: the server
    /// sees a client that does not read.
    pub fn deafen(&self, deaf: bool) {
        self.deaf.store(deaf, std::sync::atomic::Ordering::Relaxed);
    }

    /// Writes `bytes` to the server as if the client had sent them.
    pub fn inject(&self, bytes: Vec<u8>) {
        self.inject.send(bytes).unwrap();
    }
}

/// Reads from `stream` until the peer closes it; panics after `limit`.
pub async fn expect_closed(stream: &mut tokio::net::TcpStream, limit: Duration) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the node did not close the connection within {limit:?}"),
        }
    }
}

/// A GenServer that answers every call with the node's name and the request.
pub struct Echo;

impl clustertop_runtime::GenServer for Echo {
    type Args = ();
    type Call = String;
    type Reply = String;
    type Cast = ();
    type Info = ();

    async fn init(
        _: (),
        ctx: &mut clustertop_runtime::ServerContext<Self>,
    ) -> Result<Self, clustertop_runtime::ExitReason> {
        ctx.enable_remote();
        Ok(Echo)
    }

    async fn handle_call(
        &mut self,
        request: String,
        ctx: &mut clustertop_runtime::ServerContext<Self>,
    ) -> clustertop_runtime::CallResult<String> {
        clustertop_runtime::CallResult::Reply(format!("{} {request}", ctx.node().name()))
    }
}

/// Makes a remote GenServer call from `from` to an `echo` server on `to`
/// (started there if needed) and checks the answer.
pub async fn remote_call_works(from: &Node, to: &Node) {
    use clustertop_runtime::gen_server::{self, ServerMsg, ServerOptions};
    if to.whereis("echo").is_none() {
        gen_server::start::<Echo>(to, (), ServerOptions::new().name("echo"))
            .await
            .unwrap();
    }
    let echo = from
        .dist()
        .named_on::<ServerMsg<Echo>>(to.name(), "echo")
        .unwrap();
    let answer = echo
        .call("ping".into(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(answer, format!("{} ping", to.name()));
}

/// Starts distributed nodes named `names` (cookie `cookie`), connects each
/// to the first, and waits until every node sees all the others.
pub async fn mesh(names: &[&str], cookie: &str, tick: Duration) -> Vec<Node> {
    let nodes: Vec<Node> = names.iter().map(|n| dist_node(n, cookie, tick)).collect();
    for n in &nodes[1..] {
        n.connect(&addr(&nodes[0])).await.unwrap();
    }
    for (i, n) in nodes.iter().enumerate() {
        let others: Vec<&str> = names
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, s)| *s)
            .collect();
        wait_nodes(n, &others, Duration::from_secs(10)).await;
    }
    nodes
}
