//! Two-node scenarios over loopback TCP, the server node in a separate OS
//! process (`clustertop-bench serve`): one-way small messages from 1 and 4
//! senders, 1 MiB bulk messages, and GenServer call round trips.
//!
//! Senders keep a bounded window of unacknowledged messages (the sink acks
//! every batch), so memory stays bounded however fast the sender is.

use crate::report::Sample;
use clustertop_runtime::dist::DistConfig;
use clustertop_runtime::gen_server::ServerMsg;
use clustertop_runtime::{
    CallResult, ExitReason, GenServer, Node, NodeConfig, Payload, Pid, Received, ServerContext,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const COOKIE: &str = "clustertop-bench";
/// The server node's name.
const SERVER: &str = "bench-server@localhost";

/// Messages to the sink: data, or a request to ack every `batch` messages.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum SinkMsg {
    /// Ack to `to` after every `batch` data messages.
    Start { to: Pid<u64>, batch: u64 },
    /// A small payload.
    Small([u8; 16]),
    /// A large payload: out of band, written from the sender's buffer and
    /// sliced from the receiver's.
    Bulk(Payload),
}

/// The call-RTT server.
pub(crate) struct Echo;

impl GenServer for Echo {
    type Args = ();
    type Call = u64;
    type Reply = u64;
    type Cast = ();
    type Info = ();

    async fn init(_: (), ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        ctx.enable_remote();
        Ok(Echo)
    }

    async fn handle_call(&mut self, v: u64, _ctx: &mut ServerContext<Self>) -> CallResult<u64> {
        CallResult::Reply(v)
    }
}

/// Starts the `sink` process on `node`, registered as `sink`: it counts the
/// data messages it gets and acks every `batch` of them.
pub(crate) fn spawn_sink(node: &Node) {
    let sink = node.spawn::<SinkMsg, _, _>(|mut ctx| async move {
        let (mut to, mut batch, mut n) = (None::<Pid<u64>>, u64::MAX, 0u64);
        while let Received::Msg(msg) = ctx.recv().await {
            match msg {
                SinkMsg::Start { to: t, batch: b } => {
                    to = Some(t);
                    batch = b;
                    n = 0;
                }
                SinkMsg::Small(_) | SinkMsg::Bulk(_) => {
                    n += 1;
                    if n % batch == 0
                        && let Some(t) = &to
                    {
                        t.send(n);
                    }
                }
            }
        }
    });
    sink.enable_remote();
    node.register("sink", sink.id()).unwrap();
}

/// Runs the server node until killed: `sink` and `echo` services.
pub(crate) async fn serve() {
    let node = Node::start(
        NodeConfig::new(SERVER)
            .dist(DistConfig::listen("127.0.0.1:0".parse().unwrap()).cookie(COOKIE)),
    )
    .expect("server node");
    spawn_sink(&node);
    clustertop_runtime::gen_server::start::<Echo>(
        &node,
        (),
        clustertop_runtime::gen_server::ServerOptions::new().name("echo"),
    )
    .await
    .unwrap();
    println!("listening {}", node.dist().listen_addr().unwrap());
    std::future::pending::<()>().await;
}

/// The server node's OS process, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start() -> Server {
        let exe = std::env::current_exe().expect("own path");
        let mut child = Command::new(exe)
            .arg("serve")
            .stdout(Stdio::piped())
            .spawn()
            .expect("server process");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line.trim().trim_start_matches("listening ").to_owned();
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn client(name: &str) -> (Server, Node) {
    let server = Server::start();
    let node = Node::start(NodeConfig::new(name).dist(DistConfig::default().cookie(COOKIE)))
        .expect("client node");
    node.connect(&server.addr).await.expect("connect");
    (server, node)
}

/// `senders` processes send `total` messages made by `make` to the sink on
/// `to`, keeping at most `window` unacknowledged; returns seconds elapsed.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn pump(
    node: &Node,
    to: &str,
    senders: u64,
    total: u64,
    batch: u64,
    window: u64,
    make: impl Fn() -> SinkMsg + Clone + Send + 'static,
) -> f64 {
    let sink = node.dist().named_on::<SinkMsg>(to, "sink").unwrap();
    let acked = Arc::new(AtomicU64::new(0));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let acker = {
        let acked = acked.clone();
        node.spawn::<u64, _, _>(move |mut ctx| async move {
            while let Received::Msg(n) = ctx.recv().await {
                acked.store(n, Ordering::Release);
                if n >= total {
                    let _ = done_tx.send(());
                    return;
                }
            }
        })
    };
    acker.enable_remote();
    sink.send(SinkMsg::Start {
        to: acker.clone(),
        batch,
    });
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    for _ in 0..senders {
        let (sink, sent, acked, make) = (sink.clone(), sent.clone(), acked.clone(), make.clone());
        node.spawn::<(), _, _>(move |_ctx| async move {
            loop {
                let n = sent.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return;
                }
                while n >= acked.load(Ordering::Acquire) + window {
                    tokio::task::yield_now().await;
                }
                sink.send(make());
                if n % 256 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        });
    }
    done_rx.await.expect("all acked");
    start.elapsed().as_secs_f64()
}

pub(crate) async fn oneway(quick: bool) -> Vec<Sample> {
    let total: u64 = if quick { 200_000 } else { 3_000_000 };
    let (_server, node) = client("bench-client@localhost").await;
    let mut out = Vec::new();
    for senders in [1u64, 4] {
        let secs = pump(&node, SERVER, senders, total, 10_000, 200_000, || {
            SinkMsg::Small([7; 16])
        })
        .await;
        out.push(Sample {
            scenario: "remote-oneway",
            params: vec![
                ("senders", json!(senders)),
                ("messages", json!(total)),
                ("payload_bytes", json!(16)),
            ],
            figures: vec![("msgs_per_s", total as f64 / secs), ("seconds", secs)],
        });
    }
    out
}

pub(crate) async fn bulk(quick: bool) -> Vec<Sample> {
    let total: u64 = if quick { 200 } else { 2_000 };
    let (_server, node) = client("bench-client@localhost").await;
    let block = Payload::from(vec![42u8; 1 << 20]);
    let secs = pump(&node, SERVER, 1, total, 8, 64, move || {
        // One buffer, shared by every message (as the BEAM sends one binary).
        SinkMsg::Bulk(block.clone())
    })
    .await;
    let mb = total as f64 * 1.048576;
    vec![Sample {
        scenario: "remote-bulk",
        params: vec![
            ("messages", json!(total)),
            ("payload_bytes", json!(1 << 20)),
        ],
        figures: vec![("mb_per_s", mb / secs), ("seconds", secs)],
    }]
}

pub(crate) async fn call_rtt(quick: bool) -> Vec<Sample> {
    let n: u64 = if quick { 5_000 } else { 50_000 };
    let (_server, node) = client("bench-client@localhost").await;
    let echo = node
        .dist()
        .named_on::<ServerMsg<Echo>>(SERVER, "echo")
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    node.spawn::<(), _, _>(move |_ctx| async move {
        let echo = &echo;
        let h = crate::report::time_calls(n, |i| async move {
            echo.call(i, Duration::from_secs(5)).await.unwrap()
        })
        .await;
        tx.send(h).unwrap();
    });
    let h = rx.await.unwrap();
    vec![crate::report::rtt_sample("remote-call-rtt", n, &h)]
}
