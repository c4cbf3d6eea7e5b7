//! The remote scenarios of `clustertop-bench` on ractor 0.16 with
//! `ractor_cluster`, written the way ractor_cluster's own examples and
//! integration tests write them: a `NodeServer` on each side with a cookie,
//! `client_connect`, actors found through process groups (`ractor::pg`),
//! messages derived with `RactorClusterMessage`, casts for one-way
//! messages and `call!` with an `RpcReplyPort` for calls.
//!
//! ```text
//! clustertop-bench-ractor-remote remote-oneway|remote-bulk|remote-call-rtt [--quick]
//! clustertop-bench-ractor-remote serve      (the second node; used internally)
//! ```
//!
//! The sizes, the windows of unacknowledged messages and the output (one
//! JSON line per result, the keys of `clustertop-bench --json`) are those
//! of `clustertop-bench`'s own remote scenarios, so `compare` sets the two
//! side by side. The second node is a separate OS process on loopback.

#[path = "../../remote-peer.rs"]
mod peer;

use peer::{Run, Server, bulk_line, oneway_line, rtt_line};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::{NodeServer, NodeServerMessage, NodeSessionMessage, RactorClusterMessage};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const COOKIE: &str = "clustertop-bench";
const RUNTIME: &str = "ractor";
const SINK: &str = "bench-sink";
const ECHO: &str = "bench-echo";
const ACKER: &str = "bench-acker";

type ActorResult<T> = Result<T, ActorProcessingErr>;

/// Messages to the sink.
#[derive(RactorClusterMessage)]
enum SinkMsg {
    /// Ack to the remote acker after every this many data messages.
    Start(u64),
    /// A small payload.
    Small(Vec<u8>),
    /// A large payload.
    Bulk(Vec<u8>),
}

/// Acks from the sink: data messages received so far.
#[derive(RactorClusterMessage)]
enum AckMsg {
    Acked(u64),
}

/// The call-RTT server's messages.
#[derive(RactorClusterMessage)]
enum EchoMsg {
    #[rpc]
    Call(u64, RpcReplyPort<u64>),
}

struct Sink;

struct SinkState {
    batch: u64,
    n: u64,
    acker: Option<ActorRef<AckMsg>>,
}

impl Actor for Sink {
    type Msg = SinkMsg;
    type State = SinkState;
    type Arguments = ();

    async fn pre_start(&self, me: ActorRef<SinkMsg>, _: ()) -> ActorResult<SinkState> {
        ractor::pg::join(SINK.to_owned(), vec![me.get_cell()]);
        Ok(SinkState {
            batch: u64::MAX,
            n: 0,
            acker: None,
        })
    }

    async fn handle(
        &self,
        _: ActorRef<SinkMsg>,
        msg: SinkMsg,
        s: &mut SinkState,
    ) -> ActorResult<()> {
        match msg {
            SinkMsg::Start(batch) => {
                s.batch = batch;
                s.n = 0;
                s.acker = remote_member(ACKER);
            }
            SinkMsg::Small(_) | SinkMsg::Bulk(_) => {
                s.n += 1;
                if s.n.is_multiple_of(s.batch) {
                    if s.acker.is_none() {
                        s.acker = remote_member(ACKER);
                    }
                    if let Some(a) = &s.acker {
                        a.cast(AckMsg::Acked(s.n))?;
                    }
                }
            }
        }
        Ok(())
    }
}

struct Echo;

impl Actor for Echo {
    type Msg = EchoMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, me: ActorRef<EchoMsg>, _: ()) -> ActorResult<()> {
        ractor::pg::join(ECHO.to_owned(), vec![me.get_cell()]);
        Ok(())
    }

    async fn handle(&self, _: ActorRef<EchoMsg>, msg: EchoMsg, _: &mut ()) -> ActorResult<()> {
        match msg {
            EchoMsg::Call(v, reply) => {
                let _ = reply.send(v);
            }
        }
        Ok(())
    }
}

struct Acker;

impl Actor for Acker {
    type Msg = AckMsg;
    type State = Arc<AtomicU64>;
    type Arguments = Arc<AtomicU64>;

    async fn pre_start(
        &self,
        me: ActorRef<AckMsg>,
        acked: Arc<AtomicU64>,
    ) -> ActorResult<Arc<AtomicU64>> {
        ractor::pg::join(ACKER.to_owned(), vec![me.get_cell()]);
        Ok(acked)
    }

    async fn handle(
        &self,
        _: ActorRef<AckMsg>,
        msg: AckMsg,
        acked: &mut Arc<AtomicU64>,
    ) -> ActorResult<()> {
        let AckMsg::Acked(n) = msg;
        acked.store(n, Ordering::Release);
        Ok(())
    }
}

/// The first member of `group` on another node.
fn remote_member<M: ractor::Message>(group: &str) -> Option<ActorRef<M>> {
    ractor::pg::get_members(&group.to_owned())
        .into_iter()
        .find(|a| !a.get_id().is_local())
        .map(ActorRef::from)
}

/// A free port on 127.0.0.1 (a `NodeServer` is given a port, not a
/// listener).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn node_server(name: &str, port: u16) -> ActorRef<NodeServerMessage> {
    let server = NodeServer::new(
        port,
        COOKIE.to_owned(),
        name.to_owned(),
        "localhost".to_owned(),
        None,
        None,
    )
    .with_listen_addr([127, 0, 0, 1].into());
    let (server, _) = Actor::spawn(None, server, ()).await.expect("node server");
    server
}

/// The second node: a sink and an echo server, until killed.
async fn serve() {
    let port = free_port();
    let _server = node_server("bench-server", port).await;
    Actor::spawn(None, Sink, ()).await.expect("sink");
    Actor::spawn(None, Echo, ()).await.expect("echo");
    println!("listening {port}");
    std::future::pending::<()>().await;
}

/// Starts the second node, connects to it, and waits until its sink and
/// echo server are in this node's process groups (and this node's acker
/// in its). Returns the process and the acked count.
async fn connect() -> (Server, ActorRef<SinkMsg>, ActorRef<EchoMsg>, Arc<AtomicU64>) {
    let (server, port) = Server::start(&[]);
    let port: u16 = port.parse().expect("a port");

    let acked = Arc::new(AtomicU64::new(0));
    Actor::spawn(None, Acker, acked.clone())
        .await
        .expect("acker");
    let node = node_server("bench-client", free_port()).await;
    ractor_cluster::client_connect(&node, format!("127.0.0.1:{port}"))
        .await
        .expect("connect");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the nodes never became ready");
        let sessions =
            ractor::call_t!(node, NodeServerMessage::GetSessions, 1000).expect("sessions");
        let mut ready = false;
        for s in sessions.into_values() {
            ready |=
                ractor::call_t!(s.actor, NodeSessionMessage::GetReadyState, 1000).unwrap_or(false);
        }
        if ready && let (Some(sink), Some(echo)) = (remote_member(SINK), remote_member(ECHO)) {
            return (server, sink, echo, acked);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `senders` tasks send `total` messages made by `make` to the sink,
/// keeping at most `window` unacknowledged; seconds elapsed.
async fn pump(
    sink: &ActorRef<SinkMsg>,
    acked: &Arc<AtomicU64>,
    senders: u64,
    total: u64,
    batch: u64,
    window: u64,
    make: impl Fn() -> SinkMsg + Clone + Send + 'static,
) -> f64 {
    acked.store(0, Ordering::Release);
    sink.cast(SinkMsg::Start(batch)).expect("start");
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..senders {
        let (sink, sent, acked, make) = (sink.clone(), sent.clone(), acked.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = sent.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return;
                }
                while n >= acked.load(Ordering::Acquire) + window {
                    tokio::task::yield_now().await;
                }
                sink.cast(make()).expect("cast");
                if n.is_multiple_of(256) {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender");
    }
    while acked.load(Ordering::Acquire) < total {
        tokio::task::yield_now().await;
    }
    start.elapsed().as_secs_f64()
}

async fn oneway(quick: bool) {
    let total: u64 = if quick { 200_000 } else { 3_000_000 };
    let (_server, sink, _, acked) = connect().await;
    for senders in [1u64, 4] {
        let secs = pump(&sink, &acked, senders, total, 10_000, 200_000, || {
            SinkMsg::Small(vec![7; 16])
        })
        .await;
        oneway_line(RUNTIME, senders, total, secs);
    }
}

async fn bulk(quick: bool) {
    let total: u64 = if quick { 200 } else { 2_000 };
    let (_server, sink, _, acked) = connect().await;
    let block = vec![42u8; 1 << 20];
    // A message owns its bytes (`Vec<u8>` is how ractor_cluster carries
    // them), so each is a copy of the block.
    let secs = pump(&sink, &acked, 1, total, 8, 64, move || {
        SinkMsg::Bulk(block.clone())
    })
    .await;
    bulk_line(RUNTIME, total, secs);
}

async fn call_rtt(quick: bool) {
    let n: u64 = if quick { 5_000 } else { 50_000 };
    let (_server, _, echo, _) = connect().await;
    let mut us = Vec::with_capacity(n as usize);
    for i in 0..n {
        let t = Instant::now();
        let v = ractor::call_t!(echo, EchoMsg::Call, 5000, i).expect("call");
        us.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(v, i);
    }
    rtt_line(RUNTIME, us);
}

fn main() -> ExitCode {
    let (run, quick) = match peer::args("clustertop-bench-ractor-remote") {
        Ok(a) => a,
        Err(code) => return code,
    };
    let rt = peer::tokio_runtime();
    match run {
        Run::Serve(args) => {
            if !args.is_empty() {
                eprintln!("usage: clustertop-bench-ractor-remote serve");
                return ExitCode::from(2);
            }
            rt.block_on(serve())
        }
        Run::Oneway => rt.block_on(oneway(quick)),
        Run::Bulk => rt.block_on(bulk(quick)),
        Run::CallRtt => rt.block_on(call_rtt(quick)),
    }
    ExitCode::SUCCESS
}
