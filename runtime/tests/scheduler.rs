//! The process scheduler: a chain of messages does not starve queued
//! processes, work that waits spreads to an idle driver, and tokio inside
//! a process works.

use clustertop_runtime::{Node, NodeConfig, Pid, Received};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
enum Hop {
    Next(Pid<Hop>),
    Token(u64),
}

/// Two processes passing a message back and forth wake each other into
/// their driver's next slot forever; a third process queued on the same
/// driver still gets its turn.
#[tokio::test]
async fn a_ping_pong_pair_does_not_starve_a_queued_process() {
    let node = Node::start(NodeConfig::new("fair@localhost")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let mut pair = Vec::new();
    for _ in 0..2 {
        let (stop, rounds) = (stop.clone(), rounds.clone());
        pair.push(node.spawn::<Hop, _, _>(move |mut ctx| async move {
            let mut other = None;
            while let Received::Msg(hop) = ctx.recv().await {
                match hop {
                    Hop::Next(p) => other = Some(p),
                    Hop::Token(n) if !stop.load(Ordering::Relaxed) => {
                        rounds.store(n, Ordering::Relaxed);
                        if let Some(o) = &other {
                            o.send(Hop::Token(n + 1));
                        }
                    }
                    Hop::Token(_) => return,
                }
            }
        }));
    }
    pair[0].send(Hop::Next(pair[1].clone()));
    pair[1].send(Hop::Next(pair[0].clone()));
    let (ran_tx, ran_rx) = tokio::sync::oneshot::channel::<u64>();
    let starter_rounds = rounds.clone();
    let starter_node = node.clone();
    let first = pair[0].clone();
    // From inside a process, so the pair and the third one share the
    // driver's queue: start the pair, then spawn the third.
    // (A spawned or woken process runs next; the one it displaces waits
    // in the queue: here the third.)
    node.spawn::<(), _, _>(move |_ctx| async move {
        let seen = starter_rounds.clone();
        starter_node.spawn::<(), _, _>(move |_ctx| async move {
            let _ = ran_tx.send(seen.load(Ordering::Relaxed));
        });
        first.send(Hop::Token(0));
    });
    // The test's own task shares the one thread too: it runs between two
    // turns of the driver, so it does not wait for the pair to stop.
    let at = tokio::time::timeout(Duration::from_secs(30), ran_rx)
        .await
        .expect("the third process ran while the pair played")
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    assert!(
        rounds.load(Ordering::Relaxed) > at,
        "the pair was still playing when the third process ran"
    );
}

/// Two busy processes started together run at the same time on two
/// workers: waiting work wakes the idle driver, and the waker's turn ends
/// so the idle worker can take it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_work_spreads_to_an_idle_driver() {
    let node = Node::start(NodeConfig::new("spread@localhost")).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<(bool, bool)>();
    let parent_node = node.clone();
    node.spawn::<(), _, _>(move |_ctx| async move {
        let started = [
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        ];
        let (res_tx, mut res_rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..2 {
            let (mine, other) = (started[i].clone(), started[1 - i].clone());
            let res = res_tx.clone();
            // Each spins, without yielding, until it sees the other one
            // running, or gives up after 5 s.
            parent_node.spawn::<(), _, _>(move |_ctx| async move {
                mine.store(true, Ordering::SeqCst);
                let until = Instant::now() + Duration::from_secs(5);
                while !other.load(Ordering::SeqCst) && Instant::now() < until {
                    std::hint::spin_loop();
                }
                let _ = res.send(other.load(Ordering::SeqCst));
            });
        }
        let a = res_rx.recv().await.unwrap();
        let b = res_rx.recv().await.unwrap();
        let _ = tx.send((a, b));
    });
    let (a, b) = tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .expect("both finished")
        .unwrap();
    assert!(a && b, "the two processes did not overlap: {a} {b}");
}

/// Processes wait on tokio timers and channels, and a woken process on a
/// current-thread runtime (one driver) runs: tokio's paused clock
/// advances only when every process waits.
#[tokio::test(start_paused = true)]
async fn processes_use_tokio_timers_under_a_paused_clock() {
    let node = Node::start(NodeConfig::new("timers@localhost")).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..100u64 {
        let tx = tx.clone();
        node.spawn::<(), _, _>(move |_ctx| async move {
            tokio::time::sleep(Duration::from_secs(100 - i)).await;
            tx.send(i).unwrap();
        });
    }
    drop(tx);
    let started = tokio::time::Instant::now();
    let mut order = Vec::new();
    while let Some(i) = rx.recv().await {
        order.push(i);
    }
    assert_eq!(order, (0..100).rev().collect::<Vec<_>>());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(100) && took < Duration::from_secs(101),
        "{took:?}"
    );
}
