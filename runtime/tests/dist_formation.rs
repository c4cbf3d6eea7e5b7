//! Cluster formation strategies on loopback: static list with reconnects,
//! authenticated gossip, and DNS.

mod support;

use clustertop_runtime::dist::DistConfig;
use clustertop_runtime::dist::{Dns, Gossip, Static};
use clustertop_runtime::{Node, NodeConfig};
use std::net::Ipv4Addr;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(15);
const TICK: Duration = Duration::from_secs(60);

fn names(n: &Node, all: &[&str]) -> Vec<String> {
    all.iter()
        .filter(|x| **x != n.name())
        .map(|x| x.to_string())
        .collect()
}

async fn formed(nodes: &[&Node], all: &[&str]) {
    for n in nodes {
        let want = names(n, all);
        let want: Vec<&str> = want.iter().map(String::as_str).collect();
        support::wait_nodes(n, &want, LIMIT).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_members_connect_and_reconnect() {
    let all = ["a@localhost", "b@localhost", "c@localhost"];
    let a = support::dist_node(all[0], "f", TICK);
    let b = support::dist_node(all[1], "f", TICK);
    // c's port is known before c runs: the strategy retries until it is up.
    let c_addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let _h = b
        .dist()
        .start_cluster(Static::new([support::addr(&a), c_addr.to_string()]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = Node::start(
        NodeConfig::new(all[2]).dist(DistConfig::listen(c_addr).cookie("f").tick_time(TICK)),
    )
    .unwrap();
    formed(&[&a, &b, &c], &all).await;

    // A dropped connection comes back.
    let mut events = b.dist().node_events().unwrap();
    b.dist().disconnect("a@localhost");
    support::wait_down(&mut events, "a@localhost", LIMIT).await;
    formed(&[&a, &b, &c], &all).await;
}

fn gossip_port() -> u16 {
    // A port per run, so parallel test runs do not hear each other.
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_forms_a_cluster_and_ignores_other_cookies() {
    let all = ["a@localhost", "b@localhost", "c@localhost"];
    let gossip = Gossip {
        group: Ipv4Addr::new(239, 255, 42, 42),
        port: gossip_port(),
        interface: Ipv4Addr::LOCALHOST,
        interval: Duration::from_millis(100),
    };
    let nodes: Vec<Node> = all
        .iter()
        .map(|n| support::dist_node(n, "f", TICK))
        .collect();
    let outsider = support::dist_node("x@localhost", "other-cookie", TICK);
    let _handles: Vec<_> = nodes
        .iter()
        .chain([&outsider])
        .map(|n| n.dist().start_cluster(gossip.clone()))
        .collect();
    formed(&nodes.iter().collect::<Vec<_>>(), &all).await;
    // The outsider's heartbeats fail authentication: nobody connects to it,
    // and its own attempts fail the handshake.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(outsider.nodes().is_empty());
    for n in &nodes {
        assert!(!n.nodes().contains(&"x@localhost".to_string()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_forms_a_cluster_from_localhost() {
    let all = ["a@localhost", "b@localhost", "c@localhost"];
    let nodes: Vec<Node> = all
        .iter()
        .map(|n| support::dist_node(n, "f", TICK))
        .collect();
    let ports: Vec<u16> = nodes
        .iter()
        .map(|n| n.dist().listen_addr().unwrap().port())
        .collect();
    let _handles: Vec<_> = nodes
        .iter()
        .map(|n| {
            n.dist().start_cluster(Dns {
                query: "localhost".into(),
                ports: ports.clone(),
                interval: Duration::from_millis(200),
            })
        })
        .collect();
    formed(&nodes.iter().collect::<Vec<_>>(), &all).await;
}
