//! The article's global counter across two nodes (OS processes): one
//! instance, started by whichever node came first; the other node's start
//! is refused as already started, and its calls reach the one instance.

mod support;

use support::Proc;

const BIN: &str = env!("CARGO_BIN_EXE_counter");

#[test]
fn one_counter_for_the_cluster_called_from_every_node() {
    let mut a = Proc::start(BIN, "a@localhost", &["--increments", "2"]);
    a.wait_line("a start", |l| l.starts_with("started Counter"));
    a.wait_line("a's count", |l| l == "count 2");

    let mut b = Proc::start(
        BIN,
        "b@localhost",
        &["--connect", &a.addr.clone(), "--increments", "3"],
    );
    b.wait_line("b refused", |l| l == "already started on a@localhost");
    let answers = {
        b.wait_line("b's count", |l| l == "count 5");
        b.lines_with(|l| l.starts_with("incremented to "))
    };
    assert_eq!(
        answers,
        ["incremented to 3", "incremented to 4", "incremented to 5"],
        "b's calls reach the counter a started"
    );
    // b's job is done: it exits 0; a, which holds the counter, serves on.
    assert!(b.wait_exit("its count").success());

    // A node with no increments serves. The counter lives on a: with a
    // gone, so is the state (the article's first limitation), and a third
    // node can start a fresh one.
    let mut d = Proc::start(BIN, "d@localhost", &["--connect", &a.addr.clone()]);
    d.wait_line("d refused", |l| l == "already started on a@localhost");
    a.kill();
    let mut c = Proc::start(BIN, "c@localhost", &["--connect", &d.addr.clone()]);
    c.wait_line("c starts a new counter", |l| {
        l.starts_with("started Counter")
    });
    c.wait_line("c's count", |l| l == "count 0");
}

/// Every example node serves Prometheus metrics: the port it prints
/// answers with the runtime's series, labelled with the node.
#[test]
fn an_example_node_serves_its_metrics() {
    use std::io::{Read, Write};
    let port = clustertop_testkit::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut a = Proc::start(
        BIN,
        "m@localhost",
        &["--metrics", &addr, "--increments", "1"],
    );
    a.wait_line("the metrics line", |l| {
        l == format!("metrics http://{addr}/metrics")
    });
    a.wait_line("a's count", |l| l == "count 1");
    let deadline = std::time::Instant::now() + support::LIMIT;
    let body = loop {
        let mut got = String::new();
        if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
            let _ = write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
            let _ = s.read_to_string(&mut got);
        }
        if got.contains("clustertop_processes_spawned_total") {
            break got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no metrics at {addr}: {got}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(body.contains("node=\"m@localhost\""), "{body}");
}
