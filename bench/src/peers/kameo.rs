//! The local scenarios on kameo 0.22 (default features), written the way
//! its documentation does: `Actor::spawn` (a bounded mailbox of 64, its
//! default), one-way messages by `tell(..).await`, calls by `ask(..).await`.
//! Actors are tasks on the same tokio multi-thread runtime, with as many
//! worker threads, as ours.

use crate::Scenario;
use crate::local::{idle_sample, oneway_sample, ring_sample, rss_bytes, size, spawn_sample};
use crate::report::{Sample, rtt_sample, time_calls};
use kameo::Actor;
use kameo::actor::{ActorRef, Spawn, WeakActorRef};
use kameo::error::{ActorStopReason, Infallible};
use kameo::message::{Context, Message};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Runs `scenario`, or `None` when it is not one kameo runs here.
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

#[derive(Actor)]
struct Receiver {
    left: u64,
    sum: u64,
    done: Option<oneshot::Sender<u64>>,
}

impl Message<u64> for Receiver {
    type Reply = ();
    async fn handle(&mut self, v: u64, _: &mut Context<Self, ()>) {
        self.sum = self.sum.wrapping_add(v);
        self.left -= 1;
        if self.left == 0 {
            let _ = self.done.take().map(|d| d.send(self.sum));
        }
    }
}

async fn oneway(quick: bool) -> Sample {
    let n = size::oneway(quick);
    let (tx, rx) = oneshot::channel();
    let to = Receiver::spawn(Receiver {
        left: n,
        sum: 0,
        done: Some(tx),
    });
    let start = Instant::now();
    let sender = tokio::spawn(async move {
        for i in 0..n {
            to.tell(i).await.expect("sent");
        }
    });
    let sum = rx.await.expect("receiver done");
    let secs = start.elapsed().as_secs_f64();
    sender.await.expect("sender");
    assert_eq!(sum, n * (n - 1) / 2);
    oneway_sample(n, secs)
}

type Done = Arc<std::sync::Mutex<Option<oneshot::Sender<()>>>>;

#[derive(Actor)]
struct RingNode {
    next: Option<ActorRef<RingNode>>,
    done: Done,
}

struct Next(ActorRef<RingNode>);
struct Token(u64);

impl Message<Next> for RingNode {
    type Reply = ();
    async fn handle(&mut self, Next(a): Next, _: &mut Context<Self, ()>) {
        self.next = Some(a);
    }
}

impl Message<Token> for RingNode {
    type Reply = ();
    async fn handle(&mut self, Token(h): Token, _: &mut Context<Self, ()>) {
        if h == 0 {
            let _ = self
                .done
                .lock()
                .expect("not poisoned")
                .take()
                .map(|d| d.send(()));
        } else if let Some(n) = &self.next {
            n.tell(Token(h - 1)).await.expect("sent");
        }
    }
}

async fn ring(n: usize, laps: u64) -> f64 {
    let (tx, rx) = oneshot::channel();
    let done: Done = Arc::new(std::sync::Mutex::new(Some(tx)));
    let nodes: Vec<ActorRef<RingNode>> = (0..n)
        .map(|_| {
            RingNode::spawn(RingNode {
                next: None,
                done: done.clone(),
            })
        })
        .collect();
    for i in 0..n {
        nodes[i]
            .tell(Next(nodes[(i + 1) % n].clone()))
            .await
            .expect("sent");
    }
    let hops = n as u64 * laps;
    let start = Instant::now();
    nodes[0].tell(Token(hops)).await.expect("sent");
    rx.await.expect("token back");
    let ns = start.elapsed().as_nanos() as f64 / hops as f64;
    for a in &nodes {
        a.kill();
    }
    ns
}

#[derive(Actor)]
struct EchoServer;

impl Message<u64> for EchoServer {
    type Reply = u64;
    async fn handle(&mut self, v: u64, _: &mut Context<Self, u64>) -> u64 {
        v
    }
}

async fn call_rtt(quick: bool) -> Sample {
    let n = size::calls(quick);
    let server = EchoServer::spawn(EchoServer);
    // The client is a task of its own, as a calling actor would be.
    let client = {
        let server = server.clone();
        tokio::spawn(async move {
            let server = &server;
            time_calls(n, |i| async move { server.ask(i).await.expect("reply") }).await
        })
    };
    let h = client.await.expect("client");
    server.kill();
    rtt_sample("call-rtt", n, &h)
}

/// Stops as soon as it has started, counting its exit.
struct Brief(Arc<AtomicU64>);

impl Actor for Brief {
    type Args = Arc<AtomicU64>;
    type Error = Infallible;

    async fn on_start(exited: Self::Args, me: ActorRef<Self>) -> Result<Self, Infallible> {
        me.kill();
        Ok(Brief(exited))
    }

    async fn on_stop(
        &mut self,
        _: WeakActorRef<Self>,
        _: ActorStopReason,
    ) -> Result<(), Infallible> {
        self.0.fetch_add(1, Ordering::Relaxed);
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
            for i in 0..n {
                Brief::spawn(exited.clone());
                if i % 128 == 127 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    spawner.await.expect("spawner");
    while exited.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    spawn_sample(n, start.elapsed().as_secs_f64())
}

#[derive(Actor)]
struct Idle;

async fn idle_memory(quick: bool) -> Sample {
    let n = size::idle(quick);
    // Warm the allocator and the runtime up first.
    for a in (0..1000).map(|_| Idle::spawn(Idle)).collect::<Vec<_>>() {
        a.kill();
        a.wait_for_shutdown().await;
    }
    let before = rss_bytes();
    let refs: Vec<ActorRef<Idle>> = (0..n).map(|_| Idle::spawn(Idle)).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_bytes();
    let held = (n * std::mem::size_of::<ActorRef<Idle>>()) as u64;
    for a in &refs {
        a.kill();
    }
    idle_sample(n, before, after, held)
}
