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

    // The counter lives on a: with a gone, so is the state (the article's
    // first limitation), and a third node can start a fresh one.
    a.kill();
    let mut c = Proc::start(BIN, "c@localhost", &["--connect", &b.addr.clone()]);
    c.wait_line("c starts a new counter", |l| {
        l.starts_with("started Counter")
    });
    c.wait_line("c's count", |l| l == "count 0");
}
