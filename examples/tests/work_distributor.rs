//! The article's work distributor over three nodes (OS processes): items
//! go round robin over the nodes, this node first, and every result names
//! the node that processed it.

mod support;

use support::Proc;

const BIN: &str = env!("CARGO_BIN_EXE_work_distributor");

#[test]
fn items_are_processed_round_robin_over_every_node() {
    let mut a = Proc::start(BIN, "a@localhost", &[]);
    let mut b = Proc::start(BIN, "b@localhost", &["--connect", &a.addr]);
    let mut c = Proc::start(
        BIN,
        "c@localhost",
        &["--connect", &a.addr, "--items", "7", "--wait-for", "3"],
    );
    c.wait_line("the last item", |l| l.starts_with("processed item-7 "));
    let results = c.lines_with(|l| l.starts_with("processed "));
    // c first, then the others in name order: c, a, b, c, a, b, c.
    assert_eq!(
        results,
        [
            "processed item-1 on c@localhost",
            "processed item-2 on a@localhost",
            "processed item-3 on b@localhost",
            "processed item-4 on c@localhost",
            "processed item-5 on a@localhost",
            "processed item-6 on b@localhost",
            "processed item-7 on c@localhost",
        ]
    );
    // process_item printed on the node that ran it.
    assert!(
        c.seen
            .iter()
            .any(|l| l == "Processing \"item-1\" on node c@localhost")
    );
    // Its job is done: it exits 0, while the nodes that serve run on.
    assert!(c.wait_exit("its last item").success());
    assert!(a.is_running() && b.is_running());
}
