//! The local scenarios on ractor 0.16 (default features), written the way
//! its documentation does: `Actor::spawn`, one-way messages by `cast`,
//! calls by `call!` with an `RpcReplyPort`. Actors are tasks on the same
//! tokio multi-thread runtime, with as many worker threads, as ours.

use crate::Scenario;
use crate::local::{idle_sample, oneway_sample, ring_sample, rss_bytes, size, spawn_sample};
use crate::report::{Sample, rtt_sample, time_calls};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, call};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Runs `scenario`, or `None` when it is not one ractor runs here.
pub(crate) async fn run(scenario: Scenario, quick: bool) -> Option<Vec<Sample>> {
    Some(match scenario {
        Scenario::LocalOneway => vec![oneway(quick).await],
        Scenario::Ring => {
            let mut out = Vec::new();
            for &(n, laps) in size::ring(quick) {
                out.push(ring_sample(n, laps, ring(n, laps).await));
            }
            out
        }
        Scenario::CallRtt => vec![call_rtt(quick).await],
        Scenario::Spawn => vec![spawn(quick).await],
        Scenario::IdleMemory => vec![idle_memory(quick).await],
        _ => return None,
    })
}

type ActorResult<T> = Result<T, ActorProcessingErr>;

struct Receiver;

struct ReceiverState {
    left: u64,
    sum: u64,
    done: Option<oneshot::Sender<u64>>,
}

impl Actor for Receiver {
    type Msg = u64;
    type State = ReceiverState;
    type Arguments = (u64, oneshot::Sender<u64>);

    async fn pre_start(
        &self,
        _: ActorRef<u64>,
        (left, done): Self::Arguments,
    ) -> ActorResult<ReceiverState> {
        Ok(ReceiverState {
            left,
            sum: 0,
            done: Some(done),
        })
    }

    async fn handle(&self, _: ActorRef<u64>, v: u64, s: &mut ReceiverState) -> ActorResult<()> {
        s.sum = s.sum.wrapping_add(v);
        s.left -= 1;
        if s.left == 0 {
            let _ = s.done.take().map(|d| d.send(s.sum));
        }
        Ok(())
    }
}

/// Casts `0..n` to a receiver when told to start.
struct Sender;

impl Actor for Sender {
    type Msg = (ActorRef<u64>, u64);
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Self::Msg>, _: ()) -> ActorResult<()> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<Self::Msg>,
        (to, n): Self::Msg,
        _: &mut (),
    ) -> ActorResult<()> {
        for i in 0..n {
            to.cast(i)?;
        }
        Ok(())
    }
}

async fn oneway(quick: bool) -> Sample {
    let n = size::oneway(quick);
    let (tx, rx) = oneshot::channel();
    let (to, _) = Actor::spawn(None, Receiver, (n, tx)).await.expect("spawn");
    let (sender, _) = Actor::spawn(None, Sender, ()).await.expect("spawn");
    let start = Instant::now();
    sender.cast((to.clone(), n)).expect("cast");
    let sum = rx.await.expect("receiver done");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(sum, n * (n - 1) / 2);
    to.stop(None);
    sender.stop(None);
    oneway_sample(n, secs)
}

enum RingMsg {
    Next(ActorRef<RingMsg>),
    Token(u64),
}

struct RingNode;

type Done = Arc<std::sync::Mutex<Option<oneshot::Sender<()>>>>;

impl Actor for RingNode {
    type Msg = RingMsg;
    type State = (Option<ActorRef<RingMsg>>, Done);
    type Arguments = Done;

    async fn pre_start(&self, _: ActorRef<RingMsg>, done: Done) -> ActorResult<Self::State> {
        Ok((None, done))
    }

    async fn handle(
        &self,
        _: ActorRef<RingMsg>,
        msg: RingMsg,
        (next, done): &mut Self::State,
    ) -> ActorResult<()> {
        match msg {
            RingMsg::Next(a) => *next = Some(a),
            RingMsg::Token(0) => {
                let _ = done
                    .lock()
                    .expect("not poisoned")
                    .take()
                    .map(|d| d.send(()));
            }
            RingMsg::Token(h) => {
                if let Some(n) = next {
                    n.cast(RingMsg::Token(h - 1))?;
                }
            }
        }
        Ok(())
    }
}

async fn ring(n: usize, laps: u64) -> f64 {
    let (tx, rx) = oneshot::channel();
    let done: Done = Arc::new(std::sync::Mutex::new(Some(tx)));
    let mut nodes = Vec::with_capacity(n);
    for _ in 0..n {
        let (a, _) = Actor::spawn(None, RingNode, done.clone())
            .await
            .expect("spawn");
        nodes.push(a);
    }
    for i in 0..n {
        nodes[i]
            .cast(RingMsg::Next(nodes[(i + 1) % n].clone()))
            .expect("cast");
    }
    let hops = n as u64 * laps;
    let start = Instant::now();
    nodes[0].cast(RingMsg::Token(hops)).expect("cast");
    rx.await.expect("token back");
    let ns = start.elapsed().as_nanos() as f64 / hops as f64;
    for a in &nodes {
        a.stop(None);
    }
    ns
}

enum EchoMsg {
    Echo(u64, RpcReplyPort<u64>),
}

struct EchoServer;

impl Actor for EchoServer {
    type Msg = EchoMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<EchoMsg>, _: ()) -> ActorResult<()> {
        Ok(())
    }

    async fn handle(&self, _: ActorRef<EchoMsg>, msg: EchoMsg, _: &mut ()) -> ActorResult<()> {
        let EchoMsg::Echo(v, reply) = msg;
        reply.send(v)?;
        Ok(())
    }
}

async fn call_rtt(quick: bool) -> Sample {
    let n = size::calls(quick);
    let (server, _) = Actor::spawn(None, EchoServer, ()).await.expect("spawn");
    // The client is a task of its own, as a calling actor would be.
    let client = {
        let server = server.clone();
        tokio::spawn(async move {
            let server = &server;
            time_calls(n, |i| async move {
                call!(server, EchoMsg::Echo, i).expect("reply")
            })
            .await
        })
    };
    let h = client.await.expect("client");
    server.stop(None);
    rtt_sample("call-rtt", n, &h)
}

/// Stops as soon as it has started, counting its exit.
struct Brief;

impl Actor for Brief {
    type Msg = ();
    type State = ();
    type Arguments = Arc<AtomicU64>;

    async fn pre_start(&self, myself: ActorRef<()>, exited: Arc<AtomicU64>) -> ActorResult<()> {
        myself.stop(None);
        // Counted here: `post_stop` has no access to the arguments.
        exited.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

async fn spawn(quick: bool) -> Sample {
    let n = size::spawns(quick);
    let exited = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let spawner = {
        let exited = exited.clone();
        tokio::spawn(async move {
            let mut handles = Vec::new();
            for _ in 0..n {
                let (_, h) = Actor::spawn(None, Brief, exited.clone())
                    .await
                    .expect("spawn");
                handles.push(h);
            }
            for h in handles {
                h.await.expect("stopped");
            }
        })
    };
    spawner.await.expect("spawner");
    assert_eq!(exited.load(Ordering::Relaxed), n);
    spawn_sample(n, start.elapsed().as_secs_f64())
}

struct Idle;

impl Actor for Idle {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> ActorResult<()> {
        Ok(())
    }
}

async fn idle_memory(quick: bool) -> Sample {
    let n = size::idle(quick);
    // Warm the allocator and the runtime up first.
    for _ in 0..1000 {
        let (a, h) = Actor::spawn(None, Idle, ()).await.expect("spawn");
        a.stop(None);
        h.await.expect("stopped");
    }
    let before = rss_bytes();
    let mut refs = Vec::with_capacity(n);
    for _ in 0..n {
        let (a, _) = Actor::spawn(None, Idle, ()).await.expect("spawn");
        refs.push(a);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_bytes();
    let held = (n * std::mem::size_of::<ActorRef<()>>()) as u64;
    for a in &refs {
        a.stop(None);
    }
    idle_sample(n, before, after, held)
}
