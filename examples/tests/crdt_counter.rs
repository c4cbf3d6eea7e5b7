//! The article's CRDT counter over two nodes (OS processes): the article's
//! map counter, the replicated GCounter and the replicated AWLWWMap all
//! reach the sum of both nodes' increments on both nodes, and a restarted
//! node catches up.

mod support;

use support::Proc;

const BIN: &str = env!("CARGO_BIN_EXE_crdt_counter");

fn all(n: u64) -> String {
    format!("values article={n} gcounter={n} awlwwmap={n}")
}

#[test]
fn both_nodes_reach_the_sum_of_their_increments() {
    let mut a = Proc::start(BIN, "a@localhost", &["--increments", "100"]);
    let mut b = Proc::start(
        BIN,
        "b@localhost",
        &["--connect", &a.addr.clone(), "--increments", "50"],
    );
    a.wait_line("a at 150", |l| l == all(150));
    b.wait_line("b at 150", |l| l == all(150));
    // b joined to add its increments: once the values settle, it exits 0;
    // a, the first node, serves on with them.
    assert!(b.wait_exit("the values settled").success());
    assert!(a.is_running());

    // b restarts (a new incarnation, starting empty) and adds 10 more: the
    // library's counters keep b's earlier 50 from a's replica; the
    // article's map counter, keyed by node name alone, takes b's fresh
    // count as smaller than the old one until b passes 50 again.
    let mut b2 = Proc::start(
        BIN,
        "b@localhost",
        &["--connect", &a.addr.clone(), "--increments", "10"],
    );
    b2.wait_line("b2 caught up", |l| l.contains("gcounter=160"));
    a.wait_line("a counts b2's increments", |l| l.contains("gcounter=160"));
    let last = b2.wait_line("b2's article counter", |l| {
        l.starts_with("values article=150 ")
    });
    assert!(last.contains("gcounter=160"), "{last}");
}
