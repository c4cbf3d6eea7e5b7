//! Mailboxes: ordering, dead letters, bounded policies and introspection.

mod support;

use clustertop_runtime::{MailboxConfig, Received, SendError, SpawnOptions};
use std::time::Duration;
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_is_kept_per_sender_receiver_pair() {
    let node = support::node();
    let (tx, mut rx) = mpsc::unbounded_channel();
    const SENDERS: u64 = 4;
    const PER_SENDER: u64 = 20_000;
    let sink = node.spawn(move |mut ctx| async move {
        let mut next = [0u64; SENDERS as usize];
        for _ in 0..SENDERS * PER_SENDER {
            let (sender, seq): (u64, u64) = ctx.recv().await.into_msg().unwrap();
            assert_eq!(seq, next[sender as usize], "sender {sender} out of order");
            next[sender as usize] += 1;
        }
        tx.send(next).unwrap();
    });
    for s in 0..SENDERS {
        let sink = sink.clone();
        node.spawn::<(), _, _>(move |_ctx| async move {
            for i in 0..PER_SENDER {
                sink.send((s, i));
                if i % 1000 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        });
    }
    let counts = rx.recv().await.unwrap();
    assert_eq!(counts, [PER_SENDER; SENDERS as usize]);
}

#[tokio::test(start_paused = true)]
async fn blocked_process_reports_exact_depth_and_growing_age() {
    let node = support::node();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let (count_tx, count_rx) = tokio::sync::oneshot::channel();
    let pid = node.spawn(move |mut ctx| async move {
        release_rx.await.unwrap();
        let mut n = 0;
        while ctx.try_recv().is_some() {
            n += 1;
        }
        count_tx.send(n).unwrap();
    });
    for i in 0..1_000u32 {
        pid.send(i);
    }
    let info = node.introspect().process_info(pid.id()).unwrap();
    assert_eq!(info.mailbox_len, 1_000);
    assert_eq!(info.received, 1_000);
    assert_eq!(info.handled, 0);
    let first_age = info.oldest_message_age.unwrap();

    tokio::time::advance(Duration::from_secs(3)).await;
    let info = node.introspect().process_info(pid.id()).unwrap();
    assert_eq!(info.mailbox_len, 1_000);
    let age = info.oldest_message_age.unwrap();
    assert!(
        age >= first_age + Duration::from_secs(3),
        "age {age:?} did not grow"
    );

    let detail = node.introspect().process_detail(pid.id(), 3).unwrap();
    assert_eq!(detail.mailbox_head, vec!["0", "1", "2"]);
    assert_eq!(detail.message_type, "u32");

    release_tx.send(()).unwrap();
    assert_eq!(count_rx.await.unwrap(), 1_000);
    assert_eq!(pid.exited().await, clustertop_runtime::ExitReason::Normal);
}

/// A message sent from a process of the same node is stamped with the
/// start of the sender's poll (no clock read); one sent from a process of
/// another node in the same OS process, whose clock started elsewhere,
/// is stamped on the receiver's clock.
#[tokio::test(start_paused = true)]
async fn a_message_from_a_process_of_another_node_is_stamped_on_the_receivers_clock() {
    use clustertop_runtime::{ClockSource, Node, NodeConfig};
    let here = support::node();
    tokio::time::advance(Duration::from_secs(60)).await;
    let there = Node::start(NodeConfig::new("there@localhost").clock(ClockSource::Tokio))
        .expect("node starts");
    // A poll starting at 0 on a clock reads as no stamp at all.
    tokio::time::advance(Duration::from_secs(1)).await;
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let held = here.spawn(move |mut ctx| async move {
        release_rx.await.unwrap();
        while ctx.try_recv().is_some() {}
    });
    let (sent_tx, sent_rx) = tokio::sync::oneshot::channel();
    let to = held.clone();
    let near = held.clone();
    there.spawn::<(), _, _>(move |_ctx| async move {
        to.send(1u32);
        sent_tx.send(()).unwrap();
    });
    sent_rx.await.unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    here.spawn::<(), _, _>(move |_ctx| async move {
        near.send(2u32);
    });
    support::wait_for("both messages queued", Duration::from_secs(1), || {
        here.introspect()
            .process_info(held.id())
            .is_some_and(|i| i.mailbox_len == 2)
    })
    .await;
    let age = here
        .introspect()
        .process_info(held.id())
        .unwrap()
        .oldest_message_age
        .unwrap();
    // On the receiver's clock the first message waited the 2 s advanced
    // (and the wait's few ms); on the other node's, 60 s more.
    assert!(
        age >= Duration::from_secs(2) && age < Duration::from_secs(10),
        "the oldest message's age is {age:?}"
    );
    let detail = here.introspect().process_detail(held.id(), 2).unwrap();
    assert_eq!(detail.mailbox_head, vec!["1", "2"]);
    release_tx.send(()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn sends_to_dead_process_are_silent_dead_letters() {
    let node = support::node();
    let pid = node.spawn::<u8, _, _>(|_ctx| async {});
    pid.exited().await;
    let before = node.stats().dead_letters;
    pid.send(1);
    pid.send(2);
    assert!(matches!(pid.try_send(3), Err(SendError::NoProcess(3))));
    assert_eq!(node.stats().dead_letters, before + 2);
}

#[tokio::test(start_paused = true)]
async fn bounded_mailbox_fails_or_waits_by_call() {
    let node = support::node();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let pid = node.spawn_opts(
        SpawnOptions::new().mailbox(MailboxConfig::Bounded { capacity: 2 }),
        move |mut ctx| async move {
            go_rx.await.unwrap();
            while let Received::Msg(m) = ctx.recv().await {
                done_tx.send(m).unwrap();
            }
        },
    );
    pid.try_send(1u32).unwrap();
    pid.try_send(2).unwrap();
    assert!(matches!(pid.try_send(3), Err(SendError::Full(3))));
    let dead_before = node.stats().dead_letters;
    pid.send(4); // dropped: the mailbox is full
    assert_eq!(node.stats().dead_letters, dead_before + 1);

    let waiter = {
        let pid = pid.clone();
        tokio::spawn(async move { pid.send_wait(5).await })
    };
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished(), "send_wait must wait while full");
    go_tx.send(()).unwrap();
    waiter.await.unwrap().unwrap();
    let mut got = Vec::new();
    while got.len() < 3 {
        got.push(done_rx.recv().await.unwrap());
    }
    assert_eq!(got, vec![1, 2, 5]);
}

#[tokio::test(start_paused = true)]
async fn recv_timeout_gives_up() {
    let node = support::node();
    let (tx, rx) = tokio::sync::oneshot::channel();
    node.spawn::<u8, _, _>(move |mut ctx| async move {
        let got = ctx.recv_timeout(Duration::from_secs(5)).await;
        tx.send(got.is_none()).unwrap();
    });
    assert!(rx.await.unwrap());
}
