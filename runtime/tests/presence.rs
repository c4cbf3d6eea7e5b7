//! Presence across a real cluster: lists grouped by key on every node,
//! diffs over PubSub, exits untracked, a node that goes down leaves within
//! the heartbeat tick and comes back without duplicates.

mod support;

use clustertop_runtime::app::presence::{Presence, PresenceConfig, PresenceDiff};
use clustertop_runtime::app::pubsub::PubSub;
use clustertop_runtime::app::replica::ReplicaConfig;
use clustertop_runtime::{ExitReason, Node, Pid, Received};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

const LIMIT: Duration = Duration::from_secs(15);

type Diff = PresenceDiff<String>;

fn config() -> PresenceConfig {
    PresenceConfig {
        replica: ReplicaConfig {
            sync_interval: Duration::from_millis(20),
            anti_entropy_interval: Duration::from_millis(300),
            ..ReplicaConfig::default()
        },
        permdown: Duration::from_secs(30),
    }
}

struct Member {
    node: Node,
    pubsub: PubSub,
    presence: Presence<String>,
}

fn member(node: Node) -> Member {
    let pubsub = PubSub::start(&node, "ps").unwrap();
    let presence = Presence::start(&node, "presence", &pubsub, config()).unwrap();
    Member {
        node,
        pubsub,
        presence,
    }
}

/// A process to be tracked: it lives until killed.
fn user(node: &Node) -> Pid<()> {
    node.spawn::<(), _, _>(|mut ctx| async move { while ctx.recv().await.into_msg().is_some() {} })
}

/// A subscriber of a topic's presence diffs.
fn diffs(m: &Member, topic: &str) -> UnboundedReceiver<Diff> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let pid = m.node.spawn::<Diff, _, _>(move |mut ctx| async move {
        while let Received::Msg(d) = ctx.recv().await {
            if tx.send(d).is_err() {
                break;
            }
        }
    });
    m.pubsub.subscribe(topic, &pid);
    rx
}

fn listed(m: &Member, topic: &str) -> Vec<(String, Vec<String>)> {
    m.presence.list(topic)
}

fn keys(list: &[(String, Vec<String>)]) -> Vec<&str> {
    list.iter().map(|(k, _)| k.as_str()).collect()
}

async fn next_diff(rx: &mut UnboundedReceiver<Diff>) -> Diff {
    tokio::time::timeout(LIMIT, rx.recv())
        .await
        .expect("a diff in time")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_lists_every_presence_grouped_by_key_and_hears_the_diffs() {
    let nodes = support::mesh(
        &["a@localhost", "b@localhost", "c@localhost"],
        "p1",
        Duration::from_secs(60),
    )
    .await;
    let ms: Vec<Member> = nodes.into_iter().map(member).collect();
    let mut on_c = diffs(&ms[2], "room:1");

    let alice_a = user(&ms[0].node);
    let alice_b = user(&ms[1].node);
    let bob = user(&ms[1].node);
    ms[0]
        .presence
        .track(alice_a.id(), "room:1", "alice", "laptop".into())
        .unwrap();
    ms[1]
        .presence
        .track(alice_b.id(), "room:1", "alice", "phone".into())
        .unwrap();
    ms[1]
        .presence
        .track(bob.id(), "room:1", "bob", "phone".into())
        .unwrap();
    ms[1]
        .presence
        .track(bob.id(), "room:2", "bob", "phone".into())
        .unwrap();

    support::wait_for("c to list both users", LIMIT, || {
        let l = listed(&ms[2], "room:1");
        keys(&l) == ["alice", "bob"] && l[0].1.len() == 2
    })
    .await;
    let mut alice = listed(&ms[2], "room:1")[0].1.clone();
    alice.sort();
    assert_eq!(alice, ["laptop", "phone"], "one meta per process");
    // Each topic spreads on its own: a may hear room:2 after c has room:1.
    support::wait_for("a to list bob in room:2", LIMIT, || {
        keys(&listed(&ms[0], "room:2")) == ["bob"]
    })
    .await;

    // The joins add up to what is listed (in one diff or several).
    let mut joined = Vec::new();
    while joined.len() < 3 {
        let d = next_diff(&mut on_c).await;
        assert_eq!(d.topic, "room:1");
        assert!(d.leaves.is_empty(), "{d:?}");
        for (k, metas) in d.joins {
            joined.extend(metas.into_iter().map(|m| format!("{k}/{m}")));
        }
    }
    joined.sort();
    assert_eq!(joined, ["alice/laptop", "alice/phone", "bob/phone"]);

    // update: the old meta leaves, the new one joins.
    ms[1]
        .presence
        .update(bob.id(), "room:1", "bob", "away".into())
        .unwrap();
    let d = next_diff(&mut on_c).await;
    assert_eq!(d.joins["bob"], ["away"]);
    assert_eq!(d.leaves["bob"], ["phone"]);

    // untrack, and an exit: both leave.
    ms[0].presence.untrack(alice_a.id(), "room:1", "alice");
    let d = next_diff(&mut on_c).await;
    assert_eq!(d.leaves["alice"], ["laptop"]);
    ms[1].node.exit(bob.id(), ExitReason::Kill);
    let d = next_diff(&mut on_c).await;
    assert_eq!(d.leaves["bob"], ["away"]);
    support::wait_for("everyone to agree", LIMIT, || {
        ms.iter()
            .all(|m| listed(m, "room:1") == [("alice".to_owned(), vec!["phone".to_owned()])])
            && ms.iter().all(|m| listed(m, "room:2").is_empty())
    })
    .await;

    let err = ms[0]
        .presence
        .update(bob.id(), "room:1", "bob", "x".into())
        .unwrap_err();
    assert!(err.to_string().contains("not tracked"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_goes_down_leaves_and_comes_back_without_duplicates() {
    let tick = Duration::from_millis(400);
    let a = member(support::dist_node("a@localhost", "p2", tick));
    let b = member(support::dist_node("b@localhost", "p2", tick));
    b.node.connect(&support::addr(&a.node)).await.unwrap();
    let mut on_a = diffs(&a, "lobby");
    let carol = user(&b.node);
    b.presence
        .track(carol.id(), "lobby", "carol", "web".into())
        .unwrap();
    support::wait_for("a to list carol", LIMIT, || {
        keys(&listed(&a, "lobby")) == ["carol"]
    })
    .await;
    assert_eq!(next_diff(&mut on_a).await.joins["carol"], ["web"]);

    // A partition: b's entries leave a's list once the link is declared down.
    a.node.dist().set_partitioned("b@localhost", true);
    b.node.dist().set_partitioned("a@localhost", true);
    let d = next_diff(&mut on_a).await;
    assert_eq!(d.leaves["carol"], ["web"]);
    assert!(a.node.nodes().is_empty(), "left when the link went down");
    assert!(listed(&a, "lobby").is_empty());

    // Each end declares the link down on its own clock: wait for b's too,
    // or b would still count the old link as up and not connect again.
    support::wait_for("b to see the link down", LIMIT, || {
        b.node.nodes().is_empty()
    })
    .await;

    // Healed: the same incarnation's entries come back, once.
    a.node.dist().set_partitioned("b@localhost", false);
    b.node.dist().set_partitioned("a@localhost", false);
    b.node.connect(&support::addr(&a.node)).await.unwrap();
    assert_eq!(next_diff(&mut on_a).await.joins["carol"], ["web"]);
    assert_eq!(
        listed(&a, "lobby"),
        [("carol".to_owned(), vec!["web".to_owned()])]
    );

    // b restarts: the old incarnation's entries go, the new one's merge.
    b.node.dist().disconnect("a@localhost");
    let d = next_diff(&mut on_a).await;
    assert_eq!(d.leaves["carol"], ["web"]);
    let b2 = member(support::dist_node("b@localhost", "p2", tick));
    let carol2 = user(&b2.node);
    b2.presence
        .track(carol2.id(), "lobby", "carol", "app".into())
        .unwrap();
    b2.node.connect(&support::addr(&a.node)).await.unwrap();
    support::wait_for("a and b2 to agree on one carol", LIMIT, || {
        let want = [("carol".to_owned(), vec!["app".to_owned()])];
        listed(&a, "lobby") == want && listed(&b2, "lobby") == want
    })
    .await;
    // The old incarnation's entry never came back on b2 or a.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(listed(&a, "lobby").len(), 1);
    assert_eq!(listed(&b2, "lobby")[0].1.len(), 1);
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_local_processes_are_tracked_and_instances_are_listed() {
    let nodes = support::mesh(
        &["a@localhost", "b@localhost"],
        "p3",
        Duration::from_secs(60),
    )
    .await;
    let a = member(nodes[0].clone());
    let _b = member(nodes[1].clone());
    // A handle to a process of b, as a sees it.
    let there = a.node.dist().named_on::<()>("b@localhost", "x").unwrap();
    let err = a
        .presence
        .track(there.id(), "t", "k", "m".into())
        .unwrap_err();
    assert!(
        err.to_string().contains("not a process of this node"),
        "{err}"
    );
    let views = clustertop_runtime::app::presence::instances(&a.node);
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].name(), "presence");
    let me = user(&a.node);
    a.presence.track(me.id(), "t", "k", "m".into()).unwrap();
    assert_eq!(
        views[0].tracked_by(me.id()),
        [("t".to_owned(), "k".to_owned())]
    );
    let topics = views[0].topics();
    assert_eq!(topics.len(), 1);
    assert_eq!(
        (topics[0].tracked, topics[0].keys, topics[0].local),
        (1, 1, 1)
    );
}
