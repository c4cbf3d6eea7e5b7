//! The local scenarios on actix 0.13, written the way its documentation
//! does: actors started on the system's arbiter (actix's default, one
//! thread; more cores take one arbiter each, chosen by hand), one-way
//! messages by `do_send`, calls by `send(..).await`.
//!
//! actix has no distribution of its own, so it runs no remote scenario.

use crate::Scenario;
use crate::local::{idle_sample, oneway_sample, ring_sample, rss_bytes, size, spawn_sample};
use crate::report::{Sample, rtt_sample, time_calls};
use actix::prelude::*;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Runs `scenario`, or `None` when actix cannot express it.
pub(crate) fn run(scenario: Scenario, quick: bool) -> Option<Vec<Sample>> {
    let system = System::new();
    let out = system.block_on(async move {
        match scenario {
            Scenario::LocalOneway => Some(vec![oneway(quick).await]),
            Scenario::Ring => {
                let mut out = Vec::new();
                for &(n, laps) in size::ring(quick) {
                    out.push(ring_sample(n, laps, ring(n, laps).await));
                }
                Some(out)
            }
            Scenario::CallRtt => Some(vec![call_rtt(quick).await]),
            Scenario::Spawn => Some(vec![spawn(quick).await]),
            Scenario::IdleMemory => Some(vec![idle_memory(quick).await]),
            _ => None,
        }
    });
    System::current().stop();
    out
}

#[derive(Message)]
#[rtype(result = "()")]
struct Num(u64);

struct Receiver {
    left: u64,
    sum: u64,
    done: Option<oneshot::Sender<u64>>,
}

impl Actor for Receiver {
    type Context = Context<Self>;
}

impl Handler<Num> for Receiver {
    type Result = ();
    fn handle(&mut self, Num(v): Num, _: &mut Context<Self>) {
        self.sum = self.sum.wrapping_add(v);
        self.left -= 1;
        if self.left == 0 {
            let _ = self.done.take().map(|d| d.send(self.sum));
        }
    }
}

/// Sends its numbers in slices of 1,024, then lets the arbiter run the
/// receiver before the next slice (`notify` to itself), as a long job in
/// an actix actor is written.
struct Sender {
    to: Addr<Receiver>,
    next: u64,
    end: u64,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Go;

impl Actor for Sender {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.notify(Go);
    }
}

impl Handler<Go> for Sender {
    type Result = ();
    fn handle(&mut self, _: Go, ctx: &mut Context<Self>) {
        let stop = (self.next + 1024).min(self.end);
        for i in self.next..stop {
            self.to.do_send(Num(i));
        }
        self.next = stop;
        if stop < self.end {
            ctx.notify(Go);
        } else {
            ctx.stop();
        }
    }
}

async fn oneway(quick: bool) -> Sample {
    let n = size::oneway(quick);
    let (tx, rx) = oneshot::channel();
    let to = Receiver {
        left: n,
        sum: 0,
        done: Some(tx),
    }
    .start();
    let start = Instant::now();
    Sender {
        to,
        next: 0,
        end: n,
    }
    .start();
    let sum = rx.await.expect("receiver done");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(sum, n * (n - 1) / 2);
    oneway_sample(n, secs)
}

#[derive(Message)]
#[rtype(result = "()")]
enum RingMsg {
    Next(Addr<RingNode>),
    Token(u64),
}

struct RingNode {
    next: Option<Addr<RingNode>>,
    done: Rc<Cell<Option<oneshot::Sender<()>>>>,
}

impl Actor for RingNode {
    type Context = Context<Self>;
}

impl Handler<RingMsg> for RingNode {
    type Result = ();
    fn handle(&mut self, msg: RingMsg, _: &mut Context<Self>) {
        match msg {
            RingMsg::Next(a) => self.next = Some(a),
            RingMsg::Token(0) => {
                let _ = self.done.take().map(|d| d.send(()));
            }
            RingMsg::Token(h) => {
                if let Some(n) = &self.next {
                    n.do_send(RingMsg::Token(h - 1));
                }
            }
        }
    }
}

async fn ring(n: usize, laps: u64) -> f64 {
    let (tx, rx) = oneshot::channel();
    let done = Rc::new(Cell::new(Some(tx)));
    let nodes: Vec<Addr<RingNode>> = (0..n)
        .map(|_| {
            RingNode {
                next: None,
                done: done.clone(),
            }
            .start()
        })
        .collect();
    for i in 0..n {
        nodes[i].do_send(RingMsg::Next(nodes[(i + 1) % n].clone()));
    }
    let hops = n as u64 * laps;
    let start = Instant::now();
    nodes[0].do_send(RingMsg::Token(hops));
    rx.await.expect("token back");
    let ns = start.elapsed().as_nanos() as f64 / hops as f64;
    // Dropping the last addresses stops the actors (their `Next` links
    // form a cycle, so stop them explicitly).
    for a in &nodes {
        a.do_send(Stop);
    }
    ns
}

#[derive(Message)]
#[rtype(result = "()")]
struct Stop;

impl Handler<Stop> for RingNode {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        self.next = None;
        ctx.stop();
    }
}

#[derive(Message)]
#[rtype(result = "u64")]
struct Echo(u64);

struct EchoServer;

impl Actor for EchoServer {
    type Context = Context<Self>;
}

impl Handler<Echo> for EchoServer {
    type Result = u64;
    fn handle(&mut self, Echo(v): Echo, _: &mut Context<Self>) -> u64 {
        v
    }
}

async fn call_rtt(quick: bool) -> Sample {
    let n = size::calls(quick);
    let server = EchoServer.start();
    let server = &server;
    let h = time_calls(
        n,
        |i| async move { server.send(Echo(i)).await.expect("reply") },
    )
    .await;
    rtt_sample("call-rtt", n, &h)
}

/// Stops as soon as it has started, counting its exit.
struct Brief(Rc<Cell<u64>>);

impl Actor for Brief {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
    fn stopped(&mut self, _: &mut Context<Self>) {
        self.0.set(self.0.get() + 1);
    }
}

async fn spawn(quick: bool) -> Sample {
    let n = size::spawns(quick);
    let exited = Rc::new(Cell::new(0u64));
    let start = Instant::now();
    for i in 0..n {
        Brief(exited.clone()).start();
        if i % 128 == 127 {
            tokio::task::yield_now().await;
        }
    }
    while exited.get() < n {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    spawn_sample(n, start.elapsed().as_secs_f64())
}

struct Idle;

impl Actor for Idle {
    type Context = Context<Self>;
}

async fn idle_memory(quick: bool) -> Sample {
    let n = size::idle(quick);
    // Warm the allocator and the arbiter up first.
    drop((0..1000).map(|_| Idle.start()).collect::<Vec<_>>());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = rss_bytes();
    let addrs: Vec<Addr<Idle>> = (0..n).map(|_| Idle.start()).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_bytes();
    let held = (n * std::mem::size_of::<Addr<Idle>>()) as u64;
    drop(addrs);
    idle_sample(n, before, after, held)
}
