//! Links, monitors and exit signals between processes on different nodes,
//! and `noconnection` when a node is lost.

mod support;

use clustertop_runtime::dist::{NodeDownReason, NodeEvent};
use clustertop_runtime::{Down, Exit, ExitReason, Node, Pid, ProcessId, Received};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

const LIMIT: Duration = Duration::from_secs(10);

/// A process on `a` that waits for a command: `Some(reason)` exits with it.
fn target(a: &Node) -> (Pid<Option<String>>, ProcessId) {
    let pid = a.spawn::<Option<String>, _, _>(|mut ctx| async move {
        match ctx.recv().await.into_msg().flatten() {
            Some(reason) => ExitReason::custom(reason),
            None => ExitReason::Normal,
        }
    });
    pid.enable_remote();
    let id = pid.id();
    (pid, id)
}

/// `a`'s process id as `b` sees it.
async fn seen_from(b: &Node, a_pid: &Pid<Option<String>>) -> ProcessId {
    // Carry the pid to b inside a message, as processes learn of each other.
    let (tx, rx) = oneshot::channel();
    let receiver = b.spawn::<Pid<Option<String>>, _, _>(move |mut ctx| async move {
        tx.send(ctx.recv().await.into_msg().unwrap().id()).unwrap();
    });
    receiver.enable_remote();
    b.register("inbox", receiver.id()).unwrap();
    a_pid
        .node()
        .dist()
        .send_named_on(b.name(), "inbox", a_pid.clone())
        .unwrap();
    let id = tokio::time::timeout(LIMIT, rx).await.unwrap().unwrap();
    assert_ne!(id.node_index(), 0, "a remote pid");
    b.unregister("inbox").ok();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_crash_reaches_a_linked_process() {
    let (a, b) = support::pair(Duration::from_secs(60)).await;
    let (victim, _) = target(&a);
    let remote = seen_from(&b, &victim).await;

    // A trapping process on b gets the EXIT as a message.
    let (tx, rx) = oneshot::channel();
    let (linked_tx, linked_rx) = oneshot::channel();
    b.spawn::<(), _, _>(move |mut ctx| async move {
        ctx.trap_exit(true);
        ctx.link(remote).unwrap();
        linked_tx.send(()).unwrap();
        tx.send(ctx.recv().await).unwrap();
    });
    linked_rx.await.unwrap();
    let deadline = tokio::time::Instant::now() + LIMIT;
    while a.introspect().process_info(victim.id()).unwrap().links == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the link never reached a"
        );
        tokio::task::yield_now().await;
    }
    victim.send(Some("boom".into()));
    match tokio::time::timeout(LIMIT, rx).await.unwrap().unwrap() {
        Received::Exit(Exit { from, reason }) => {
            assert_eq!(from, remote);
            assert_eq!(reason, ExitReason::custom("boom"));
        }
        other => panic!("expected EXIT, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_trapping_linked_process_dies_with_the_remote_reason_both_ways() {
    let (a, b) = support::pair(Duration::from_secs(60)).await;
    let (victim, _) = target(&a);
    let remote = seen_from(&b, &victim).await;
    let (linked_tx, linked_rx) = oneshot::channel();
    let follower = b.spawn::<(), _, _>(move |ctx| async move {
        ctx.link(remote).unwrap();
        linked_tx.send(()).unwrap();
        std::future::pending::<()>().await;
    });
    linked_rx.await.unwrap();
    let deadline = tokio::time::Instant::now() + LIMIT;
    while a.introspect().process_info(victim.id()).unwrap().links == 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::task::yield_now().await;
    }
    let died = follower.exited();
    victim.send(Some("remote failure".into()));
    assert_eq!(
        tokio::time::timeout(LIMIT, died).await.unwrap(),
        ExitReason::custom("remote failure")
    );

    // And the other way: killing the process on b ends its link partner on a.
    let (victim2, _) = target(&a);
    let remote2 = seen_from(&b, &victim2).await;
    let (linked_tx, linked_rx) = oneshot::channel();
    let partner = b.spawn::<(), _, _>(move |ctx| async move {
        ctx.link(remote2).unwrap();
        linked_tx.send(()).unwrap();
        std::future::pending::<()>().await;
    });
    linked_rx.await.unwrap();
    while a.introspect().process_info(victim2.id()).unwrap().links == 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::task::yield_now().await;
    }
    let victim2_exit = victim2.exited();
    b.exit(partner.id(), ExitReason::Kill);
    assert_eq!(
        tokio::time::timeout(LIMIT, victim2_exit).await.unwrap(),
        ExitReason::Killed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_monitors_fire_down_once_and_noproc_for_the_dead() {
    let (a, b) = support::pair(Duration::from_secs(60)).await;
    let (victim, _) = target(&a);
    let remote = seen_from(&b, &victim).await;
    let (dead, _) = target(&a);
    let dead_remote = seen_from(&b, &dead).await;
    dead.send(None);
    dead.exited().await;

    let (tx, mut rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    b.spawn::<(), _, _>(move |mut ctx| async move {
        let live = ctx.monitor(remote);
        let gone = ctx.monitor(dead_remote);
        ready_tx.send((live, gone)).unwrap();
        loop {
            if let Received::Down(d) = ctx.recv().await {
                tx.send(d).unwrap();
            }
        }
    });
    let (live, gone) = ready_rx.await.unwrap();
    let first = tokio::time::timeout(LIMIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first,
        Down {
            monitor: gone,
            pid: dead_remote,
            reason: ExitReason::NoProc
        }
    );
    let deadline = tokio::time::Instant::now() + LIMIT;
    while a.introspect().process_info(victim.id()).unwrap().monitors == 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::task::yield_now().await;
    }
    victim.send(Some("bye".into()));
    let second = tokio::time::timeout(LIMIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        second,
        Down {
            monitor: live,
            pid: remote,
            reason: ExitReason::custom("bye")
        }
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "a monitor fires once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_node_fires_links_and_monitors_with_noconnection() {
    let tick = Duration::from_millis(500);
    let (a, b) = support::pair(tick).await;
    let (victim, _) = target(&a);
    let remote = seen_from(&b, &victim).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    b.spawn::<(), _, _>(move |mut ctx| async move {
        ctx.trap_exit(true);
        ctx.link(remote).unwrap();
        ctx.monitor(remote);
        ready_tx.send(()).unwrap();
        loop {
            tx.send(ctx.recv().await).unwrap();
        }
    });
    ready_rx.await.unwrap();
    let deadline = tokio::time::Instant::now() + LIMIT;
    while a.introspect().process_info(victim.id()).unwrap().monitors == 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::task::yield_now().await;
    }
    let started = tokio::time::Instant::now();
    b.dist().set_partitioned("a@localhost", true);
    let mut got_exit = false;
    let mut got_down = false;
    while !(got_exit && got_down) {
        match tokio::time::timeout(LIMIT, rx.recv())
            .await
            .unwrap()
            .unwrap()
        {
            Received::Exit(e) => {
                assert_eq!((e.from, e.reason), (remote, ExitReason::NoConnection));
                got_exit = true;
            }
            Received::Down(d) => {
                assert_eq!((d.pid, d.reason), (remote, ExitReason::NoConnection));
                got_down = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        started.elapsed() <= tick * 2,
        "noconnection after {:?}, more than 2 ticks",
        started.elapsed()
    );
    // Linking to a process of a node that is not connected fires at once.
    let (tx2, rx2) = oneshot::channel();
    b.spawn::<(), _, _>(move |mut ctx| async move {
        ctx.trap_exit(true);
        ctx.link(remote).unwrap();
        tx2.send(ctx.recv().await).unwrap();
    });
    match tokio::time::timeout(LIMIT, rx2).await.unwrap().unwrap() {
        Received::Exit(e) => assert_eq!(e.reason, ExitReason::NoConnection),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_signals_reach_remote_processes() {
    let (a, b) = support::pair(Duration::from_secs(60)).await;
    let (victim, _) = target(&a);
    let remote = seen_from(&b, &victim).await;
    let gone = victim.exited();
    b.exit(remote, ExitReason::Shutdown);
    assert_eq!(
        tokio::time::timeout(LIMIT, gone).await.unwrap(),
        ExitReason::Shutdown
    );
}

/// `other` reconnects to `holder`, which still holds their old connection
/// half-open (cut on its side, closed on `other`'s): the old one is found
/// stale, its down processing runs (`noconnection` to a monitor, the `Down`
/// event) before the new one is up, and the new one carries relations.
async fn reconnect_over_a_half_open_connection(holder: &Node, other: &Node) {
    let (victim, _) = target(other);
    let remote = seen_from(holder, &victim).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    holder.spawn::<(), _, _>(move |mut ctx| async move {
        ctx.monitor(remote);
        loop {
            tx.send(ctx.recv().await).unwrap();
        }
    });
    let monitors = |n: usize| {
        let id = victim.id();
        move || other.introspect().process_info(id).unwrap().monitors == n
    };
    support::wait_for("the remote monitor", LIMIT, monitors(1)).await;

    let mut holder_events = holder.dist().node_events().unwrap();
    let mut other_events = other.dist().node_events().unwrap();
    assert!(holder.dist().cut_connection(other.name()));
    assert!(other.dist().disconnect(holder.name()));
    support::wait_down(&mut other_events, holder.name(), LIMIT).await;
    support::wait_for("the old monitor to go", LIMIT, monitors(0)).await;
    assert_eq!(holder.nodes(), [other.name()], "the holder saw nothing");

    assert_eq!(
        other.connect(&support::addr(holder)).await.unwrap(),
        holder.name()
    );
    let (reason, _) = support::wait_down(&mut holder_events, other.name(), LIMIT).await;
    assert_eq!(reason, NodeDownReason::Stale);
    match tokio::time::timeout(LIMIT, holder_events.recv()).await {
        Ok(Ok(NodeEvent::Up { node, .. })) => assert_eq!(node, other.name()),
        e => panic!("expected the new connection up after the down, got {e:?}"),
    }
    match tokio::time::timeout(LIMIT, rx.recv())
        .await
        .unwrap()
        .unwrap()
    {
        Received::Down(d) => assert_eq!((d.pid, d.reason), (remote, ExitReason::NoConnection)),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(holder.dist().stats().stale_closed, 1);
    assert_eq!(holder.nodes(), [other.name()]);
    assert_eq!(other.nodes(), [holder.name()]);

    // The new connection carries a new monitor.
    holder.spawn::<(), _, _>(move |mut ctx| async move {
        ctx.monitor(remote);
        let _ = ctx.recv().await;
    });
    support::wait_for("the new remote monitor", LIMIT, monitors(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_over_a_half_open_connection_that_it_would_replace() {
    // b dialed a; a dialing now wins the tie-break at b (the smaller name's
    // connection is kept), which alone would have swapped the connections
    // without a down on b.
    let (a, b) = support::pair(Duration::from_secs(60)).await;
    reconnect_over_a_half_open_connection(&b, &a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_over_a_half_open_connection_it_would_lose_to() {
    // b dialed a and dials again; the tie-break at a keeps a's held
    // connection, which alone would have refused b as a duplicate.
    let (a, b) = support::pair(Duration::from_secs(60)).await;
    reconnect_over_a_half_open_connection(&a, &b).await;
}
