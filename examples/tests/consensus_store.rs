//! The article's ConsensusStore over three members (OS processes) with
//! disc copies: a value set on one member is read on another; after every
//! member is killed (SIGKILL) and started again the value is still there;
//! the leader killed (SIGKILL) and started again from its files rejoins,
//! and its command commits.

mod support;

use support::Proc;

const BIN: &str = env!("CARGO_BIN_EXE_consensus_store");
const MEMBERS: &str = "a@localhost,b@localhost,c@localhost";

struct Group {
    procs: Vec<Proc>,
    dirs: Vec<tempfile::TempDir>,
}

fn start(name: &str, connect: Option<&str>, dir: &tempfile::TempDir, extra: &[&str]) -> Proc {
    let data = dir.path().display().to_string();
    let mut args = vec!["--members", MEMBERS, "--data", &data];
    if let Some(addr) = connect {
        args.extend(["--connect", addr]);
    }
    args.extend(extra);
    Proc::start(BIN, name, &args)
}

impl Group {
    /// a, b and c, with `extra` flags for each.
    fn start(dirs: Vec<tempfile::TempDir>, extra: [&[&str]; 3]) -> Group {
        let a = start("a@localhost", None, &dirs[0], extra[0]);
        let addr = a.addr.clone();
        let b = start("b@localhost", Some(&addr), &dirs[1], extra[1]);
        let c = start("c@localhost", Some(&addr), &dirs[2], extra[2]);
        Group {
            procs: vec![a, b, c],
            dirs,
        }
    }
}

#[test]
fn a_replicated_store_survives_kills_and_restarts() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut g = Group::start(
        dirs,
        [&["--await", "greeting"], &[], &["--set", "greeting=hello"]],
    );
    g.procs[2].wait_line("c's set", |l| l == "set greeting = hello (was None)");
    g.procs[0].wait_line("a's read", |l| l == "greeting = hello");

    // Every member killed at once, then started again from its files.
    for p in &mut g.procs {
        p.kill();
    }
    let dirs = std::mem::take(&mut g.dirs);
    let mut g = Group::start(dirs, [&[], &["--await", "greeting"], &[]]);
    g.procs[1].wait_line("b's read after the restart", |l| l == "greeting = hello");

    // The leader killed, then started again: it rejoins from its files
    // (as leader again if the others have not yet elected one: its vote is
    // on disc) and its command commits.
    let line = g.procs[1].wait_line("b's leader", |l| l.starts_with("leader "));
    let leader = line["leader ".len()..].to_owned();
    let i = ["a@localhost", "b@localhost", "c@localhost"]
        .iter()
        .position(|n| *n == leader)
        .expect("a member leads");
    g.procs[i].kill();
    let survivor = g.procs[(i + 1) % 3].addr.clone();
    let mut again = start(
        &leader,
        Some(&survivor),
        &g.dirs[i],
        &["--set", "after=kill", "--await", "greeting"],
    );
    again.wait_line("its set", |l| l == "set after = kill (was None)");
    again.wait_line("its read", |l| l == "greeting = hello");
}
