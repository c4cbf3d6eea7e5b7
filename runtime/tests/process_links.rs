//! Exit reasons, links, trap_exit, monitors and exit signals.

mod support;

use clustertop_runtime::{Down, Exit, ExitReason, Received};
use std::time::Duration;
use tokio::sync::oneshot;

#[tokio::test(start_paused = true)]
async fn panic_becomes_exit_reason_and_node_goes_on() {
    let node = support::node();
    let pid = node.spawn::<(), _, _>(|_ctx| async {
        panic!("index out of bounds");
    });
    assert_eq!(
        pid.exited().await,
        ExitReason::Panic("index out of bounds".into())
    );
    assert!(!pid.is_alive());
    // The node still runs processes.
    let ok = node.spawn::<(), _, _>(|_ctx| async {});
    assert_eq!(ok.exited().await, ExitReason::Normal);
    assert_eq!(node.stats().crashed, 1);
}

#[tokio::test(start_paused = true)]
async fn linked_process_dies_with_the_crash_reason() {
    let node = support::node();
    let (child_tx, child_rx) = oneshot::channel();
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let parent = node.spawn::<(), _, _>(move |ctx| async move {
        let child = ctx.spawn_link::<(), _, _>(move |_ctx| async move {
            go_rx.await.unwrap();
            panic!("child crashed");
        });
        child_tx.send(child).unwrap();
        std::future::pending::<()>().await;
    });
    let child = child_rx.await.unwrap();
    let parent_exit = parent.exited();
    go_tx.send(()).unwrap();
    assert_eq!(
        child.exited().await,
        ExitReason::Panic("child crashed".into())
    );
    assert_eq!(parent_exit.await, ExitReason::Panic("child crashed".into()));
}

#[tokio::test(start_paused = true)]
async fn normal_exit_does_not_propagate_over_links() {
    let node = support::node();
    let (tx, rx) = oneshot::channel();
    let parent = node.spawn::<u8, _, _>(move |mut ctx| async move {
        let child = ctx.spawn_link::<(), _, _>(|_ctx| async {});
        child.exited().await;
        // Still alive and serving after the linked child exited normally.
        let got = ctx.recv().await.into_msg();
        tx.send(got).unwrap();
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    parent.send(7);
    assert_eq!(rx.await.unwrap(), Some(7));
}

#[tokio::test(start_paused = true)]
async fn trapping_process_gets_exit_message() {
    let node = support::node();
    let (tx, rx) = oneshot::channel();
    let parent = node.spawn::<(), _, _>(move |mut ctx| async move {
        ctx.trap_exit(true);
        let child = ctx.spawn_link::<(), _, _>(|_ctx| async { panic!("boom") });
        let got = ctx.recv().await;
        tx.send((child.id(), got)).unwrap();
    });
    let (child, got) = rx.await.unwrap();
    match got {
        Received::Exit(Exit { from, reason }) => {
            assert_eq!(from, child);
            assert_eq!(reason, ExitReason::Panic("boom".into()));
        }
        other => panic!("expected EXIT, got {other:?}"),
    }
    assert_eq!(parent.exited().await, ExitReason::Normal);
}

#[tokio::test(start_paused = true)]
async fn kill_cannot_be_trapped_and_links_see_killed() {
    let node = support::node();
    let (tx, rx) = oneshot::channel();
    let (victim_tx, victim_rx) = oneshot::channel();
    let watcher = node.spawn::<(), _, _>(move |mut ctx| async move {
        ctx.trap_exit(true);
        let victim = ctx.spawn_link::<(), _, _>(|ctx| async move {
            ctx.trap_exit(true);
            std::future::pending::<()>().await;
        });
        victim_tx.send(victim.id()).unwrap();
        tx.send(ctx.recv().await).unwrap();
    });
    let victim = victim_rx.await.unwrap();
    node.exit(victim, ExitReason::Kill);
    match rx.await.unwrap() {
        Received::Exit(e) => assert_eq!((e.from, e.reason), (victim, ExitReason::Killed)),
        other => panic!("expected EXIT, got {other:?}"),
    }
    watcher.exited().await;
}

#[tokio::test(start_paused = true)]
async fn exit_signal_shutdown_ends_non_trapping_process() {
    let node = support::node();
    let pid = node.spawn::<(), _, _>(|_ctx| std::future::pending::<()>());
    let exited = pid.exited();
    node.exit(pid.id(), ExitReason::Normal);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(
        pid.is_alive(),
        "exit(pid, normal) is ignored by a non-trapping process"
    );
    node.exit(pid.id(), ExitReason::Shutdown);
    assert_eq!(exited.await, ExitReason::Shutdown);
}

#[tokio::test(start_paused = true)]
async fn monitor_fires_down_once_and_noproc_for_dead() {
    let node = support::node();
    let target = node.spawn::<(), _, _>(|_ctx| async { ExitReason::custom("done") });
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let live = node.spawn::<(), _, _>(move |_ctx| async move {
        go_rx.await.unwrap();
        ExitReason::custom("bye")
    });
    target.exited().await;
    let (tx, rx) = oneshot::channel();
    let (live_id, target_id) = (live.id(), target.id());
    node.spawn::<(), _, _>(move |mut ctx| async move {
        let dead_ref = ctx.monitor(target_id);
        let live_ref = ctx.monitor(live_id);
        let first = ctx.recv().await;
        go_tx.send(()).unwrap();
        let second = ctx.recv().await;
        let third = ctx.recv_timeout(Duration::from_secs(1)).await;
        tx.send((dead_ref, live_ref, first, second, third.is_none()))
            .unwrap();
    });
    let (dead_ref, live_ref, first, second, nothing_more) = rx.await.unwrap();
    match first {
        Received::Down(Down {
            monitor,
            pid,
            reason,
        }) => {
            assert_eq!(
                (monitor, pid, reason),
                (dead_ref, target_id, ExitReason::NoProc)
            )
        }
        other => panic!("expected DOWN noproc, got {other:?}"),
    }
    match second {
        Received::Down(Down {
            monitor,
            pid,
            reason,
        }) => {
            assert_eq!(
                (monitor, pid, reason),
                (live_ref, live_id, ExitReason::custom("bye"))
            )
        }
        other => panic!("expected DOWN, got {other:?}"),
    }
    assert!(nothing_more, "a monitor fires exactly once");
}

#[tokio::test(start_paused = true)]
async fn demonitor_suppresses_down() {
    let node = support::node();
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let target = node.spawn::<(), _, _>(move |_ctx| async move {
        go_rx.await.unwrap();
    });
    let (tx, rx) = oneshot::channel();
    let target_id = target.id();
    node.spawn::<(), _, _>(move |mut ctx| async move {
        let m = ctx.monitor(target_id);
        assert!(ctx.demonitor(m));
        go_tx.send(()).unwrap();
        tx.send(ctx.recv_timeout(Duration::from_secs(1)).await.is_none())
            .unwrap();
    });
    assert!(rx.await.unwrap());
    let info_links = node
        .introspect()
        .processes()
        .iter()
        .map(|p| p.monitors)
        .sum::<usize>();
    assert_eq!(info_links, 0, "no monitor entries left behind");
}

#[tokio::test(start_paused = true)]
async fn link_to_dead_process_is_an_error() {
    let node = support::node();
    let dead = node.spawn::<(), _, _>(|_ctx| async {});
    dead.exited().await;
    let (tx, rx) = oneshot::channel();
    let dead_id = dead.id();
    node.spawn::<(), _, _>(move |ctx| async move {
        tx.send(ctx.link(dead_id)).unwrap();
    });
    assert_eq!(rx.await.unwrap(), Err(clustertop_runtime::NoProcess));
}

/// Sets its flag when dropped; panics in its drop when asked to.
struct Held {
    dropped: std::sync::Arc<std::sync::atomic::AtomicBool>,
    panic_on_drop: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.dropped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if self.panic_on_drop {
            panic!("dropping what the body held");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn what_a_body_held_is_released_before_its_exit_is_announced() {
    let node = support::node();
    let cases = [
        (false, false, ExitReason::custom("done")),
        (false, true, ExitReason::Killed),
        (
            true,
            false,
            ExitReason::Panic("dropping what the body held".into()),
        ),
    ];
    for (panic_on_drop, kill, expected) in cases {
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let held = Held {
            dropped: dropped.clone(),
            panic_on_drop,
        };
        let (go_tx, go_rx) = oneshot::channel::<()>();
        let target = node.spawn::<(), _, _>(move |_ctx| async move {
            let _held = held;
            let _ = go_rx.await;
            if panic_on_drop {
                ExitReason::Normal
            } else {
                ExitReason::custom("done")
            }
        });
        let (ready_tx, ready_rx) = oneshot::channel();
        let (seen_tx, seen_rx) = oneshot::channel();
        let target_id = target.id();
        node.spawn::<(), _, _>(move |mut ctx| async move {
            ctx.monitor(target_id);
            ready_tx.send(()).unwrap();
            let down = ctx.recv().await;
            // What the target held, as the Down arrives.
            let released = dropped.load(std::sync::atomic::Ordering::SeqCst);
            seen_tx.send((down, released)).unwrap();
        });
        ready_rx.await.unwrap();
        if kill {
            node.exit(target_id, ExitReason::Kill);
        } else {
            go_tx.send(()).unwrap();
        }
        let (down, released) = seen_rx.await.unwrap();
        match down {
            Received::Down(Down { pid, reason, .. }) => {
                assert_eq!((pid, &reason), (target_id, &expected));
            }
            other => panic!("expected DOWN, got {other:?}"),
        }
        assert!(released, "released before the Down ({expected:?})");
    }
}
