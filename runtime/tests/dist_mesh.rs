//! Nodes connect over real TCP on 127.0.0.1, authenticate and form a full
//! mesh; hidden nodes stay out of it; node events reach processes.

mod support;

use clustertop_runtime::dist::{DistConfig, NodeDownReason, NodeEvent};
use clustertop_runtime::{Node, NodeConfig, Received};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_form_a_full_mesh_from_one_seed() {
    let names = [
        "n1@localhost",
        "n2@localhost",
        "n3@localhost",
        "n4@localhost",
        "n5@localhost",
    ];
    let nodes: Vec<Node> = names
        .iter()
        .map(|n| support::dist_node(n, "mesh-cookie", TICK))
        .collect();
    let seed = support::addr(&nodes[0]);
    for node in &nodes[1..] {
        assert_eq!(node.connect(&seed).await.unwrap(), "n1@localhost");
    }
    for (i, node) in nodes.iter().enumerate() {
        let others: Vec<&str> = names
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| *n)
            .collect();
        support::wait_nodes(node, &others, LIMIT).await;
    }
    // Connecting again is a no-op that names the peer.
    assert_eq!(nodes[1].connect(&seed).await.unwrap(), "n1@localhost");
    assert_eq!(nodes[0].nodes().len(), 4);
    // Each pair shares exactly one connection.
    for node in &nodes {
        let peers = node.dist().peer_stats();
        assert_eq!(peers.len(), 4, "{} has {:?}", node.name(), peers);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_nodes_are_not_listed_or_meshed() {
    let a = support::dist_node("a@localhost", "c", TICK);
    let b = support::dist_node("b@localhost", "c", TICK);
    b.connect(&support::addr(&a)).await.unwrap();
    support::wait_nodes(&a, &["b@localhost"], LIMIT).await;

    let tui = Node::start(
        NodeConfig::new("tui@localhost").dist(DistConfig::default().cookie("c").hidden(true)),
    )
    .unwrap();
    assert_eq!(tui.dist().listen_addr(), None);
    assert_eq!(
        tui.connect(&support::addr(&a)).await.unwrap(),
        "a@localhost"
    );
    let deadline = tokio::time::Instant::now() + LIMIT;
    while a.dist().hidden_nodes().is_empty() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::task::yield_now().await;
    }
    assert_eq!(a.dist().hidden_nodes(), ["tui@localhost"]);
    assert_eq!(
        a.nodes(),
        ["b@localhost"],
        "a hidden node is not in nodes()"
    );
    assert_eq!(tui.nodes(), ["a@localhost"]);
    // The hidden node is not propagated: b never connects to it, and the
    // hidden node does not connect to b.
    assert!(b.dist().hidden_nodes().is_empty());
    assert_eq!(tui.nodes(), ["a@localhost"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_emits_nodedown_on_both_sides() {
    let a = support::dist_node("a@localhost", "c", TICK);
    let b = support::dist_node("b@localhost", "c", TICK);
    let mut a_events = a.dist().node_events().unwrap();
    let mut b_events = b.dist().node_events().unwrap();
    b.connect(&support::addr(&a)).await.unwrap();
    support::wait_nodes(&a, &["b@localhost"], LIMIT).await;
    assert!(a.dist().disconnect("b@localhost"));
    let (reason, _) = support::wait_down(&mut a_events, "b@localhost", LIMIT).await;
    assert_eq!(reason, NodeDownReason::Disconnected);
    let (reason, _) = support::wait_down(&mut b_events, "a@localhost", LIMIT).await;
    assert_eq!(reason, NodeDownReason::ConnectionClosed);
    assert!(a.nodes().is_empty() && b.nodes().is_empty());
    assert!(!a.dist().disconnect("b@localhost"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_monitoring_nodes_get_up_and_down() {
    let a = support::dist_node("a@localhost", "c", TICK);
    let b = support::dist_node("b@localhost", "c", TICK);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    a.spawn::<(), _, _>(move |mut ctx| async move {
        ctx.monitor_nodes(true);
        ready_tx.send(()).unwrap();
        loop {
            if let Received::Node(event) = ctx.recv().await {
                tx.send(event).unwrap();
            }
        }
    });
    ready_rx.await.unwrap();
    b.connect(&support::addr(&a)).await.unwrap();
    let up = tokio::time::timeout(LIMIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        up,
        NodeEvent::Up {
            node: "b@localhost".into(),
            hidden: false
        }
    );
    b.dist().disconnect("a@localhost");
    let down = tokio::time::timeout(LIMIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        down,
        NodeEvent::Down {
            node: "b@localhost".into(),
            reason: NodeDownReason::ConnectionClosed
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_measure_rtt_and_count_traffic() {
    let tick = Duration::from_millis(400);
    let a = support::dist_node("a@localhost", "c", tick);
    let b = support::dist_node("b@localhost", "c", tick);
    b.connect(&support::addr(&a)).await.unwrap();
    support::wait_nodes(&a, &["b@localhost"], LIMIT).await;
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let stats = a.dist().peer_stats();
        if let Some(rtt) = stats[0].heartbeat_rtt {
            assert!(rtt < tick, "loopback heartbeat rtt {rtt:?}");
            assert!(stats[0].frames_in >= 2 && stats[0].frames_out >= 2);
            assert!(stats[0].bytes_in > 0 && stats[0].bytes_out > 0);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no heartbeat answered"
        );
        tokio::time::sleep(tick / 4).await;
    }
    // Well past several ticks, heartbeats keep the idle connection up.
    tokio::time::sleep(tick * 3).await;
    assert_eq!(a.nodes(), ["b@localhost"]);
}
