//! Replicated CRDTs across a real cluster: deltas reach every replica,
//! replicas converge after a partition heals and after a node restarts,
//! and a large state travels in bounded parts.

mod support;

use clustertop_runtime::Node;
use clustertop_runtime::app::crdt::{GCounter, ORSet};
use clustertop_runtime::app::replica::{Replica, ReplicaConfig};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(15);

fn fast() -> ReplicaConfig {
    ReplicaConfig {
        sync_interval: Duration::from_millis(20),
        anti_entropy_interval: Duration::from_millis(200),
        ..ReplicaConfig::default()
    }
}

fn value(r: &Replica<GCounter>) -> u64 {
    r.read(GCounter::value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn increments_on_every_node_reach_every_replica() {
    let nodes = support::mesh(
        &["a@localhost", "b@localhost", "c@localhost"],
        "r1",
        Duration::from_secs(60),
    )
    .await;
    let replicas: Vec<Replica<GCounter>> = nodes
        .iter()
        .map(|n| Replica::start(n, "hits", fast()).unwrap())
        .collect();
    for (i, r) in replicas.iter().enumerate() {
        for _ in 0..100 * (i as u64 + 1) {
            r.mutate(|c, me| c.increment(me, 1));
        }
    }
    support::wait_for("every replica to count 600", LIMIT, || {
        replicas.iter().all(|r| value(r) == 600)
    })
    .await;
    let a = replicas[0].get();
    assert_eq!(a.counts().count(), 3, "one count per replica");
    // A part is counted once its send returns, which can be after the
    // peer has joined it.
    support::wait_for("a counts its deltas to b and c", LIMIT, || {
        replicas[0].stats().deltas_out >= 2
    })
    .await;
    assert_eq!(replicas[1].stats().decode_errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_converge_after_a_partition_heals() {
    let tick = Duration::from_millis(400);
    let a = support::dist_node("a@localhost", "r2", tick);
    let b = support::dist_node("b@localhost", "r2", tick);
    b.connect(&support::addr(&a)).await.unwrap();
    support::wait_nodes(&a, &["b@localhost"], LIMIT).await;
    let ra: Replica<ORSet<String>> = Replica::start(&a, "set", fast()).unwrap();
    let rb: Replica<ORSet<String>> = Replica::start(&b, "set", fast()).unwrap();
    ra.mutate(|s, me| s.add(me, "x".to_owned()));
    support::wait_for("b to see x", LIMIT, || {
        rb.read(|s| s.contains(&"x".to_owned()))
    })
    .await;

    a.dist().set_partitioned("b@localhost", true);
    b.dist().set_partitioned("a@localhost", true);
    support::wait_for("the partition to be seen", LIMIT, || {
        a.nodes().is_empty() && b.nodes().is_empty()
    })
    .await;
    // On each side: a removes x, b re-adds it concurrently and adds y.
    ra.mutate(|s, _| s.remove(&"x".to_owned()));
    rb.mutate(|s, me| s.add(me, "x".to_owned()));
    rb.mutate(|s, me| s.add(me, "y".to_owned()));
    ra.mutate(|s, me| s.add(me, "z".to_owned()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !ra.read(|s| s.contains(&"y".to_owned())),
        "nothing crosses a partition"
    );

    a.dist().set_partitioned("b@localhost", false);
    b.dist().set_partitioned("a@localhost", false);
    b.connect(&support::addr(&a)).await.unwrap();
    support::wait_for("both replicas to agree", LIMIT, || ra.get() == rb.get()).await;
    let items: Vec<String> = ra.read(|s| s.iter().cloned().collect());
    assert_eq!(
        items,
        ["x", "y", "z"],
        "b's concurrent add of x wins over a's remove"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_gets_the_state_back_and_counts_as_a_new_replica() {
    let tick = Duration::from_secs(60);
    let a = support::dist_node("a@localhost", "r3", tick);
    let b = support::dist_node("b@localhost", "r3", tick);
    b.connect(&support::addr(&a)).await.unwrap();
    let ra: Replica<GCounter> = Replica::start(&a, "hits", fast()).unwrap();
    let rb: Replica<GCounter> = Replica::start(&b, "hits", fast()).unwrap();
    ra.mutate(|c, me| c.increment(me, 5));
    rb.mutate(|c, me| c.increment(me, 7));
    support::wait_for("12 on both", LIMIT, || value(&ra) == 12 && value(&rb) == 12).await;

    // b "restarts": the old incarnation leaves, a new one with its name joins.
    b.dist().disconnect("a@localhost");
    support::wait_for("a to lose b", LIMIT, || a.nodes().is_empty()).await;
    drop(rb);
    let b2: Node = support::dist_node("b@localhost", "r3", tick);
    assert_ne!(b2.creation(), b.creation());
    let rb2: Replica<GCounter> = Replica::start(&b2, "hits", fast()).unwrap();
    assert_eq!(value(&rb2), 0, "a new incarnation starts empty");
    b2.connect(&support::addr(&a)).await.unwrap();
    support::wait_for("b2 to get the state", LIMIT, || value(&rb2) == 12).await;
    rb2.mutate(|c, me| c.increment(me, 1));
    support::wait_for("13 on both", LIMIT, || {
        value(&ra) == 13 && value(&rb2) == 13
    })
    .await;
    assert_eq!(
        ra.read(|c| c.counts().count()),
        3,
        "b's two lives count apart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_state_travels_in_parts_of_bounded_size() {
    let tick = Duration::from_secs(60);
    let a = support::dist_node("a@localhost", "r4", tick);
    let config = ReplicaConfig {
        max_message_bytes: 4096,
        ..fast()
    };
    let ra: Replica<ORSet<String>> = Replica::start(&a, "big", config.clone()).unwrap();
    for i in 0..3_000 {
        ra.mutate(|s, me| s.add(me, format!("user-{i:05}")));
    }
    for i in (0..3_000).step_by(3) {
        ra.mutate(|s, _| s.remove(&format!("user-{i:05}")));
    }
    let b = support::dist_node("b@localhost", "r4", tick);
    let rb: Replica<ORSet<String>> = Replica::start(&b, "big", config).unwrap();
    b.connect(&support::addr(&a)).await.unwrap();
    support::wait_for("b to hold a's state", LIMIT, || rb.get() == ra.get()).await;
    assert_eq!(rb.read(ORSet::len), 2_000);
    let sent = ra.stats();
    assert!(sent.states_out >= 10, "{sent:?}");
    assert!(
        sent.bytes_out <= (sent.states_out + sent.deltas_out) * 4096,
        "{sent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_out_of_range_and_a_taken_name_are_refused() {
    let node = support::node();
    let zero = ReplicaConfig {
        sync_interval: Duration::ZERO,
        ..ReplicaConfig::default()
    };
    let err = Replica::<GCounter>::start(&node, "x", zero).unwrap_err();
    assert!(err.to_string().contains("intervals"), "{err}");
    let _first = Replica::<GCounter>::start(&node, "x", ReplicaConfig::default()).unwrap();
    let err = Replica::<GCounter>::start(&node, "x", ReplicaConfig::default()).unwrap_err();
    assert!(err.to_string().contains("\"x\""), "{err}");
}
