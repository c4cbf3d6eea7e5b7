//! PubSub across a real cluster (TCP on 127.0.0.1): broadcast reaches every
//! subscriber once, one frame per remote node; the `_from`, local and
//! direct variants; per-publisher order; subscribers that exit and nodes
//! that leave.

mod support;

use clustertop_runtime::app::pubsub::PubSub;
use clustertop_runtime::{ExitReason, Node, Pid, Received};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

const LIMIT: Duration = Duration::from_secs(10);

/// A process that forwards what it receives, with its node's name.
fn subscriber<M>(node: &Node) -> (Pid<M>, UnboundedReceiver<(String, M)>)
where
    M: clustertop_runtime::Message,
{
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let name = node.name().to_owned();
    let pid = node.spawn::<M, _, _>(move |mut ctx| async move {
        while let Received::Msg(v) = ctx.recv().await {
            if tx.send((name.clone(), v)).is_err() {
                break;
            }
        }
    });
    (pid, rx)
}

async fn next<M>(rx: &mut UnboundedReceiver<(String, M)>) -> (String, M) {
    tokio::time::timeout(LIMIT, rx.recv())
        .await
        .expect("a message in time")
        .expect("the subscriber is alive")
}

/// Nothing more arrives within a short grace (after a message that was
/// sent later has arrived, so "nothing" is meaningful).
fn nothing_queued<M: std::fmt::Debug>(rx: &mut UnboundedReceiver<(String, M)>) {
    if let Ok(extra) = rx.try_recv() {
        panic!("unexpected delivery: {extra:?}");
    }
}

async fn cluster(cookie: &str) -> (Vec<Node>, Vec<PubSub>) {
    let nodes = support::mesh(
        &["a@localhost", "b@localhost", "c@localhost"],
        cookie,
        Duration::from_secs(60),
    )
    .await;
    let pubsubs = nodes
        .iter()
        .map(|n| PubSub::start(n, "app.pubsub").unwrap())
        .collect();
    (nodes, pubsubs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_reaches_every_subscriber_once_with_one_frame_per_node() {
    let (nodes, ps) = cluster("ps1").await;
    let (a1, mut ra1) = subscriber::<String>(&nodes[0]);
    let (b1, mut rb1) = subscriber::<String>(&nodes[1]);
    let (b2, mut rb2) = subscriber::<String>(&nodes[1]);
    let (c1, mut rc1) = subscriber::<String>(&nodes[2]);
    ps[0].subscribe("room:1", &a1);
    ps[1].subscribe("room:1", &b1);
    ps[1].subscribe("room:1", &b2);
    ps[2].subscribe("room:1", &c1);
    ps[2].subscribe("room:2", &c1);

    ps[0].broadcast("room:1", "hello".to_owned()).unwrap();
    for rx in [&mut ra1, &mut rb1, &mut rb2, &mut rc1] {
        assert_eq!(next(rx).await.1, "hello");
    }
    assert_eq!(ps[0].stats().frames_out, 2, "one frame per remote node");
    assert_eq!(ps[1].stats().frames_in, 1);

    // A marker on another topic, after which nothing else may be queued.
    ps[0].broadcast("room:2", "marker".to_owned()).unwrap();
    assert_eq!(next(&mut rc1).await.1, "marker");
    for rx in [&mut ra1, &mut rb1, &mut rb2, &mut rc1] {
        nothing_queued(rx);
    }

    let topics = ps[1].topics();
    let room = topics.iter().find(|t| t.topic == "room:1").unwrap();
    assert_eq!(room.subscribers, 2);
    assert_eq!(room.delivered, 2);
    assert_eq!(ps[2].subscriptions(c1.id()), ["room:1", "room:2"]);
    assert_eq!(PubSub::instances(&nodes[0]).len(), 1);
    assert_eq!(PubSub::instances(&nodes[0])[0].name(), "app.pubsub");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_local_and_direct_variants_reach_whom_they_say() {
    let (nodes, ps) = cluster("ps2").await;
    let (a1, mut ra1) = subscriber::<u32>(&nodes[0]);
    let (a2, mut ra2) = subscriber::<u32>(&nodes[0]);
    let (b1, mut rb1) = subscriber::<u32>(&nodes[1]);
    let (c1, mut rc1) = subscriber::<u32>(&nodes[2]);
    for (p, pid) in [(&ps[0], &a1), (&ps[0], &a2), (&ps[1], &b1), (&ps[2], &c1)] {
        p.subscribe("t", pid);
    }

    ps[0].broadcast_from(a1.id(), "t", 1u32).unwrap();
    assert_eq!(next(&mut ra2).await.1, 1);
    assert_eq!(next(&mut rb1).await.1, 1);
    assert_eq!(next(&mut rc1).await.1, 1);

    ps[0].local_broadcast("t", 2u32);
    assert_eq!(next(&mut ra1).await.1, 2);
    assert_eq!(next(&mut ra2).await.1, 2);

    ps[0].direct_broadcast("c@localhost", "t", 3u32).unwrap();
    assert_eq!(next(&mut rc1).await, ("c@localhost".to_owned(), 3));

    // Everyone gets 4; whoever got an extra 1, 2 or 3 shows it first.
    ps[0].broadcast("t", 4u32).unwrap();
    for rx in [&mut ra1, &mut ra2, &mut rb1, &mut rc1] {
        assert_eq!(next(rx).await.1, 4);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publishers_broadcasts_arrive_in_order() {
    let (nodes, ps) = cluster("ps3").await;
    let (b1, mut rb1) = subscriber::<u64>(&nodes[1]);
    let (c1, mut rc1) = subscriber::<u64>(&nodes[2]);
    ps[1].subscribe("seq", &b1);
    ps[2].subscribe("seq", &c1);
    const N: u64 = 2_000;
    let publisher = ps[0].clone();
    nodes[0].spawn::<(), _, _>(move |_ctx| async move {
        for i in 0..N {
            publisher.broadcast("seq", i).unwrap();
        }
    });
    for rx in [&mut rb1, &mut rc1] {
        for i in 0..N {
            assert_eq!(next(rx).await.1, i);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exits_unsubscribes_and_departed_nodes_leave_no_subscription() {
    let (nodes, ps) = cluster("ps4").await;
    let (b1, _rb1) = subscriber::<u32>(&nodes[1]);
    let (b2, mut rb2) = subscriber::<u32>(&nodes[1]);
    let (c1, _rc1) = subscriber::<u32>(&nodes[2]);
    ps[1].subscribe("t", &b1);
    ps[1].subscribe("t", &b2);
    ps[1].subscribe("u", &b1);
    ps[2].subscribe("t", &c1);

    nodes[1].exit(b1.id(), ExitReason::Kill);
    support::wait_for("b1 to leave its topics", LIMIT, || {
        ps[1].subscribers("t") == [b2.id()] && ps[1].subscribers("u").is_empty()
    })
    .await;
    assert!(ps[1].subscriptions(b1.id()).is_empty());

    ps[1].unsubscribe("t", b2.id());
    assert!(ps[1].subscribers("t").is_empty());
    let frames = ps[1].stats().frames_in;
    ps[0].broadcast("t", 7u32).unwrap();
    // Delivery follows the subscriptions at the time the frame arrives.
    support::wait_for("b to receive the frame", LIMIT, || {
        ps[1].stats().frames_in == frames + 1
    })
    .await;
    ps[1].subscribe("t", &b2);
    ps[0].broadcast("t", 8u32).unwrap();
    assert_eq!(next(&mut rb2).await.1, 8, "nothing while unsubscribed");

    // c leaves the cluster: a's broadcasts go to b only.
    let before = ps[0].stats().frames_out;
    assert!(nodes[0].dist().disconnect("c@localhost"));
    nodes[2].dist().disconnect("a@localhost");
    nodes[2].dist().disconnect("b@localhost");
    nodes[1].dist().disconnect("c@localhost");
    support::wait_for("c to be gone", LIMIT, || {
        nodes[0].nodes() == ["b@localhost"]
    })
    .await;
    ps[0].broadcast("t", 9u32).unwrap();
    assert_eq!(next(&mut rb2).await.1, 9);
    assert_eq!(ps[0].stats().frames_out, before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_of_a_type_no_subscriber_takes_is_counted_not_delivered() {
    let (nodes, ps) = cluster("ps5").await;
    let (b1, mut rb1) = subscriber::<u32>(&nodes[1]);
    ps[1].subscribe("t", &b1);
    ps[0].broadcast("t", "not a number".to_owned()).unwrap();
    support::wait_for("the mismatch to be counted", LIMIT, || {
        ps[1].stats().mismatched == 1
    })
    .await;
    ps[0].broadcast("t", 5u32).unwrap();
    assert_eq!(next(&mut rb1).await.1, 5);
    nothing_queued(&mut rb1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_of_one_name_is_refused() {
    let node = support::node();
    let _first = PubSub::start(&node, "dup").unwrap();
    let err = PubSub::start(&node, "dup").unwrap_err();
    assert!(err.to_string().contains("dup"), "{err}");
}

#[derive(Debug, PartialEq)]
enum RoomEvent {
    Number(u32),
    Text(String),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_takes_several_message_types_through_subscribe_as() {
    let (nodes, ps) = cluster("ps6").await;
    let (room, mut got) = subscriber::<RoomEvent>(&nodes[1]);
    ps[1].subscribe_as("room", &room, RoomEvent::Number);
    ps[1].subscribe_as("room", &room, RoomEvent::Text);
    ps[0].broadcast("room", 7u32).unwrap();
    ps[0].broadcast("room", "hi".to_owned()).unwrap();
    assert_eq!(next(&mut got).await.1, RoomEvent::Number(7));
    assert_eq!(next(&mut got).await.1, RoomEvent::Text("hi".into()));
    ps[1].local_broadcast("room", 8u32);
    assert_eq!(next(&mut got).await.1, RoomEvent::Number(8));
    assert_eq!(
        ps[1].stats().mismatched,
        0,
        "each message went to the sink of its type only"
    );
    ps[1].unsubscribe("room", room.id());
    assert!(ps[1].subscribers("room").is_empty());
}
