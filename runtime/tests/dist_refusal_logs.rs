//! A member that refuses this node (a wrong cookie) is said at warn level,
//! naming it, and said again only at a bounded rate while the formation
//! keeps retrying. In its own test binary: it installs the global
//! subscriber, so every thread's events are captured.

mod support;

use clustertop_runtime::dist::{DistConfig, Static};
use clustertop_runtime::{Node, NodeConfig};
use std::time::Duration;

fn node(name: &str, cookie: &str) -> Node {
    let dist = DistConfig::listen("127.0.0.1:0".parse().unwrap()).cookie(cookie);
    Node::start(NodeConfig::new(name).dist(dist)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_refuses_the_cookie_is_named_once_a_minute_at_most() {
    let captured = clustertop_testkit::Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let cluster = node("a@localhost", "the-cluster's");
    let stray = node("b@localhost", "another");
    let addr = support::addr(&cluster);
    let _formation = stray.dist().start_cluster(Static::new([addr.clone()]));
    // Backoff from 100 ms: about five attempts in 3 s, all refused.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(stray.nodes().is_empty());
    let text = captured.text();
    let said: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("refuses this node"))
        .collect();
    assert_eq!(said.len(), 1, "{text}");
    assert!(said[0].contains("WARN"), "{}", said[0]);
    assert!(said[0].contains(&addr), "{}", said[0]);
    assert!(said[0].contains("cookie"), "{}", said[0]);
}
