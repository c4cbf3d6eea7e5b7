//! The remote scenarios of `clustertop-bench` on kameo 0.22's remote
//! actors, written the way kameo's documentation and `custom_swarm`
//! example write them: a libp2p swarm on each side (TCP, noise, yamux)
//! carrying `kameo::remote::Behaviour`, actors derived `RemoteActor` and
//! registered by name in the swarm's registry (Kademlia), found with
//! `RemoteActorRef::lookup`, messages marked `#[remote_message]`, calls
//! by `ask(..).await` and one-way messages by `tell(..).send_ack()`.
//!
//! ```text
//! clustertop-bench-kameo-remote remote-oneway|remote-bulk|remote-call-rtt [--quick]
//! clustertop-bench-kameo-remote serve ADDR (the second node; used internally)
//! ```
//!
//! The sizes and the output (one JSON line per result, the keys of
//! `clustertop-bench --json`) are those of `clustertop-bench`'s own
//! remote scenarios, so `compare` sets the two side by side; remote-oneway
//! sends a tenth of the messages (its rate is a hundredth of ours). The
//! second node is a separate OS process on loopback.
//!
//! kameo carries each remote message as one libp2p request-response
//! exchange (a yamux stream per message, answered even for a `tell`).
//! The messaging configuration is kameo's default but for the largest
//! request, 4 MiB: the request is CBOR, where the encoded message is an
//! array of integers, up to two bytes for each byte of it, so a 1 MiB
//! payload takes up to 2 MiB and more than the default limit (1 MiB).
//! One-way senders keep at most [`IN_FLIGHT`] messages unanswered, where
//! the other runtimes keep a window of messages not yet handled.
//! libp2p's noise handshake authenticates peers by key; there is no
//! cookie.

#[path = "../../remote-peer.rs"]
mod peer;

use futures::StreamExt;
use kameo::actor::{ActorRef, RemoteActorRef, Spawn};
use kameo::message::{Context, Message};
use kameo::{Actor, RemoteActor, remote, remote_message};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{DialError, NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, noise, tcp, yamux};
use peer::{Run, Server, bulk_line, oneway_line, rtt_line};
use serde::{Deserialize, Serialize};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

const RUNTIME: &str = "kameo";
const SINK: &str = "bench-sink";
const ECHO: &str = "bench-echo";
const ACKER: &str = "bench-acker";

/// Sets the batch: the sink acks after every this many data messages.
#[derive(Serialize, Deserialize)]
struct Start(u64);

/// A data message (small or bulk), its bytes as one msgpack bin.
#[derive(Serialize, Deserialize)]
struct Data(#[serde(with = "serde_bytes")] Vec<u8>);

/// The sink's ack: data messages received so far.
#[derive(Serialize, Deserialize)]
struct Acked(u64);

/// The call-RTT request, echoed back.
#[derive(Serialize, Deserialize)]
struct Call(u64);

#[derive(Actor, RemoteActor)]
struct Sink {
    batch: u64,
    n: u64,
    acker: Option<RemoteActorRef<Acker>>,
}

#[remote_message]
impl Message<Start> for Sink {
    type Reply = ();

    async fn handle(&mut self, Start(batch): Start, _: &mut Context<Self, ()>) {
        self.batch = batch;
        self.n = 0;
        if self.acker.is_none() {
            self.acker = Some(lookup::<Acker>(ACKER).await);
        }
    }
}

#[remote_message]
impl Message<Data> for Sink {
    type Reply = ();

    async fn handle(&mut self, _: Data, _: &mut Context<Self, ()>) {
        self.n += 1;
        if self.n.is_multiple_of(self.batch)
            && let Some(a) = &self.acker
        {
            let _ = a.tell(&Acked(self.n)).send();
        }
    }
}

#[derive(Actor, RemoteActor)]
struct Echo;

#[remote_message]
impl Message<Call> for Echo {
    type Reply = u64;

    async fn handle(&mut self, Call(v): Call, _: &mut Context<Self, u64>) -> u64 {
        v
    }
}

#[derive(Actor, RemoteActor)]
struct Acker(Arc<AtomicU64>);

#[remote_message]
impl Message<Acked> for Acker {
    type Reply = ();

    async fn handle(&mut self, Acked(n): Acked, _: &mut Context<Self, ()>) {
        // Each message is its own stream: acks may arrive out of order.
        self.0.fetch_max(n, Ordering::AcqRel);
    }
}

#[derive(NetworkBehaviour)]
struct Bench {
    kameo: remote::Behaviour,
}

/// Starts this process's swarm, listening on loopback; returns the
/// address it listens on (with its peer id) and a sender of addresses to
/// dial.
async fn swarm() -> (Multiaddr, tokio::sync::mpsc::UnboundedSender<Multiaddr>) {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp transport")
        .with_behaviour(|key| {
            let kameo = remote::Behaviour::new(
                key.public().to_peer_id(),
                remote::messaging::Config::default().with_request_size_maximum(4 << 20),
            );
            Ok(Bench { kameo })
        })
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
        .build();
    swarm.behaviour().kameo.init_global();
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("address"))
        .expect("listen");
    let peer = *swarm.local_peer_id();
    let (dial_tx, mut dial_rx) = tokio::sync::mpsc::unbounded_channel::<Multiaddr>();
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut addr_tx = Some(addr_tx);
        loop {
            tokio::select! {
                event = swarm.select_next_some() => {
                    if let SwarmEvent::NewListenAddr { address, .. } = event
                        && let Some(tx) = addr_tx.take()
                    {
                        let _ = tx.send(address.with_p2p(peer).expect("peer id"));
                    }
                }
                Some(addr) = dial_rx.recv() => {
                    // As kameo's bootstrap does with the peers mDNS finds:
                    // the address goes to the swarm (and so to the
                    // registry's Kademlia table), then the peer is dialed.
                    let Some(Protocol::P2p(peer)) = addr.iter().last() else {
                        panic!("{addr} has no peer id");
                    };
                    swarm.add_peer_address(peer, addr.clone());
                    let opts = DialOpts::peer_id(peer).addresses(vec![addr]).build();
                    match swarm.dial(opts) {
                        // The peer dialed this node first.
                        Ok(()) | Err(DialError::DialPeerConditionFalse(_)) => {}
                        Err(e) => panic!("dial: {e}"),
                    }
                }
            }
        }
    });
    (addr_rx.await.expect("a listen address"), dial_tx)
}

/// Registers `actor` under `name`, retrying until the registry has a
/// peer to store the record with.
async fn register<A: Actor + remote::RemoteActor>(actor: &ActorRef<A>, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = actor.register(name).await {
        assert!(Instant::now() < deadline, "cannot register {name}: {e}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Looks `name` up until a node has registered it.
async fn lookup<A: Actor + remote::RemoteActor>(name: &str) -> RemoteActorRef<A> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(a)) = RemoteActorRef::<A>::lookup(name).await {
            return a;
        }
        assert!(Instant::now() < deadline, "{name} was never found");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The second node: a sink and an echo server, until killed. It knows
/// the first node by `client` (each side's registry needs the other's
/// address).
async fn serve(client: Multiaddr) {
    let (addr, dial) = swarm().await;
    dial.send(client).expect("swarm running");
    let sink = Sink::spawn(Sink {
        batch: u64::MAX,
        n: 0,
        acker: None,
    });
    let echo = Echo::spawn(Echo);
    // A name is in the registry's records before `register` returns, but
    // its actor takes messages only once it has: announce the address
    // after both.
    register(&sink, SINK).await;
    register(&echo, ECHO).await;
    println!("listening {addr}");
    std::future::pending::<()>().await;
}

/// Starts the second node, connects to it, and waits until each side
/// finds the other's actors. Returns the process and the acked count.
async fn connect() -> (
    Server,
    RemoteActorRef<Sink>,
    RemoteActorRef<Echo>,
    Arc<AtomicU64>,
) {
    let (me, dial) = swarm().await;
    let (server, addr) = Server::start(&[me.to_string()]);
    let addr: Multiaddr = addr.parse().expect("an address");

    dial.send(addr).expect("swarm running");
    let acked = Arc::new(AtomicU64::new(0));
    let acker = Acker::spawn(Acker(acked.clone()));
    register(&acker, ACKER).await;
    let sink = lookup::<Sink>(SINK).await;
    let echo = lookup::<Echo>(ECHO).await;
    (server, sink, echo, acked)
}

/// Remote requests a node keeps unanswered at most, across its senders.
///
/// kameo sends each remote message as a request on a yamux stream of
/// its own, answered once the message is in the actor's mailbox. Told
/// with `send()` (fire and forget) as fast as a sender can, the requests
/// outrun the connection's streams: libp2p closes the connection and the
/// messages in flight are lost (`OutboundFailure { error:
/// ConnectionClosed }`, thousands per second in a trial). So senders use
/// `send_ack()` and keep at most this many unanswered, below messaging's
/// default of 100 concurrent streams.
const IN_FLIGHT: usize = 64;

/// `senders` tasks send `total` copies of `msg` to the sink, at most
/// [`IN_FLIGHT`] unanswered; seconds elapsed until the sink has handled
/// them all.
async fn pump(
    sink: &RemoteActorRef<Sink>,
    acked: &Arc<AtomicU64>,
    senders: u64,
    total: u64,
    batch: u64,
    msg: Data,
) -> f64 {
    acked.store(0, Ordering::Release);
    // Asked, not told: it must reach the sink before the first data
    // message, and each message is its own stream.
    sink.ask(&Start(batch)).await.expect("start");
    let sent = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    let msg = Arc::new(msg);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..senders {
        let (sink, sent, msg, in_flight) =
            (sink.clone(), sent.clone(), msg.clone(), in_flight.clone());
        tasks.push(tokio::spawn(async move {
            while sent.fetch_add(1, Ordering::Relaxed) < total {
                let permit = in_flight.clone().acquire_owned().await.expect("open");
                let (sink, msg) = (sink.clone(), msg.clone());
                tokio::spawn(async move {
                    sink.tell(&*msg).send_ack().await.expect("tell");
                    drop(permit);
                });
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender");
    }
    while acked.load(Ordering::Acquire) < total {
        tokio::time::sleep(Duration::from_micros(100)).await;
    }
    start.elapsed().as_secs_f64()
}

async fn oneway(quick: bool) {
    // A tenth of the other runtimes' count: at kameo's rate (about 15 k
    // messages a second here) theirs would take minutes a run.
    let total: u64 = if quick { 20_000 } else { 300_000 };
    let (_server, sink, _, acked) = connect().await;
    for senders in [1u64, 4] {
        let secs = pump(&sink, &acked, senders, total, 10_000, Data(vec![7; 16])).await;
        oneway_line(RUNTIME, senders, total, secs);
    }
}

async fn bulk(quick: bool) {
    let total: u64 = if quick { 200 } else { 2_000 };
    let (_server, sink, _, acked) = connect().await;
    // A remote message is encoded from a reference: one block serves
    // every send.
    let secs = pump(&sink, &acked, 1, total, 8, Data(vec![42u8; 1 << 20])).await;
    bulk_line(RUNTIME, total, secs);
}

async fn call_rtt(quick: bool) {
    let n: u64 = if quick { 5_000 } else { 50_000 };
    let (_server, _, echo, _) = connect().await;
    let mut us = Vec::with_capacity(n as usize);
    for i in 0..n {
        let t = Instant::now();
        let v = echo.ask(&Call(i)).await.expect("call");
        us.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(v, i);
    }
    rtt_line(RUNTIME, us);
}

fn main() -> ExitCode {
    let (run, quick) = match peer::args("clustertop-bench-kameo-remote") {
        Ok(a) => a,
        Err(code) => return code,
    };
    let rt = peer::tokio_runtime();
    match run {
        Run::Serve(args) => {
            let Some(client) = args.first().and_then(|a| a.parse().ok()) else {
                eprintln!("usage: clustertop-bench-kameo-remote serve CLIENT-MULTIADDR");
                return ExitCode::from(2);
            };
            rt.block_on(serve(client))
        }
        Run::Oneway => rt.block_on(oneway(quick)),
        Run::Bulk => rt.block_on(bulk(quick)),
        Run::CallRtt => rt.block_on(call_rtt(quick)),
    }
    ExitCode::SUCCESS
}
