//! Soak: nodes as OS processes (`clustertop-node --workload`: supervised
//! workers that crash, global names, remote calls and monitors), one of
//! them killed or paused at random every 10 s and brought back. Afterwards
//! the cluster must have healed: a full mesh, every supervisor's children
//! running, no process stuck, every node agreeing on one holder per global
//! name, and the resident memory of the nodes that ran throughout flat.
//!
//! By default 3 nodes for 60 s (what CI runs). The long run:
//!
//! ```sh
//! CLUSTERTOP_SOAK_SECS=600 CLUSTERTOP_SOAK_NODES=5 cargo test --release -p clustertop-runtime --test soak -- --nocapture
//! ```

mod support;

use clustertop_runtime::dist::Static;
use clustertop_runtime::{Node, Pid, Received};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const COOKIE: &str = "soak-cookie";
const TICK_MS: u64 = 1_000;
const LIMIT: Duration = Duration::from_secs(60);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small xorshift: the run's choices, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One member: its name, address and the process running it now.
struct Member {
    name: String,
    addr: String,
    others: Vec<String>,
    child: Option<Child>,
    /// Restarted during the run (its memory is not compared).
    restarted: bool,
    rss_warm_kib: Option<u64>,
}

impl Member {
    fn spawn(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_clustertop-node"));
        cmd.args(["--name", &self.name, "--listen", &self.addr])
            .args(["--cookie", COOKIE, "--tick-ms", &TICK_MS.to_string()])
            .args(["--workload", "--global", &format!("own-{}", self.name)])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for other in &self.others {
            cmd.args(["--connect", other]);
        }
        let mut child = cmd.spawn().expect("clustertop-node starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("listening"), "{}: {line:?}", self.name);
        self.child = Some(child);
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Asks `node`'s `soak_health`; its one-line answer.
async fn health(me: &Node, node: &str) -> Option<String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let target = node.to_owned();
    me.spawn::<String, _, _>(move |mut ctx| async move {
        let me: Pid<String> = ctx.pid();
        if ctx
            .node()
            .dist()
            .send_named_on(&target, "soak_health", me)
            .is_ok()
        {
            if let Some(Received::Msg(answer)) = ctx.recv_timeout(Duration::from_secs(2)).await {
                let _ = tx.send(answer);
            }
        }
    });
    rx.await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_under_kills_and_pauses_heals() {
    let secs = env_or("CLUSTERTOP_SOAK_SECS", 60);
    let n = env_or("CLUSTERTOP_SOAK_NODES", 3) as usize;
    let seed = env_or(
        "CLUSTERTOP_SOAK_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1,
    );
    eprintln!("soak: {n} nodes for {secs} s, seed {seed}");
    let mut rng = Rng(seed);
    let addrs: Vec<String> = (0..n)
        .map(|_| format!("127.0.0.1:{}", clustertop_testkit::free_port()))
        .collect();
    let mut members: Vec<Member> = (0..n)
        .map(|i| Member {
            name: format!("soak{i}@localhost"),
            addr: addrs[i].clone(),
            others: addrs[..i].to_vec(),
            child: None,
            restarted: false,
            rss_warm_kib: None,
        })
        .collect();
    for m in &mut members {
        m.spawn();
    }
    let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    let me = support::dist_node(
        "soak-observer@localhost",
        COOKIE,
        Duration::from_millis(TICK_MS),
    );
    let _formation = me.dist().start_cluster(Static::new(addrs.clone()));
    support::wait_nodes(&me, &all, LIMIT).await;

    // Faults: every 10 s one member is killed and restarted, or paused for
    // 3 s (past the tick) and resumed. The first member is only ever
    // paused, so one node runs throughout and its memory can be compared.
    let rounds = secs / 10;
    for round in 0..rounds {
        tokio::time::sleep(Duration::from_secs(7)).await;
        if round == rounds / 3 {
            for m in members.iter_mut().filter(|m| !m.restarted) {
                m.rss_warm_kib = Some(m.rss_kib());
            }
        }
        let i = rng.next(n as u64) as usize;
        let kill = rng.next(2) == 0 && i != 0;
        let victim = &mut members[i];
        if kill {
            eprintln!("soak: round {round}: kill {}", victim.name);
            if let Some(mut c) = victim.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            victim.restarted = true;
            // Its address may linger in TIME_WAIT: the listener reuses it.
            victim.spawn();
            tokio::time::sleep(Duration::from_secs(3)).await;
        } else {
            eprintln!("soak: round {round}: pause {}", victim.name);
            victim.signal("-STOP");
            tokio::time::sleep(Duration::from_secs(3)).await;
            victim.signal("-CONT");
        }
    }

    // Healed: the full mesh, and every node healthy and in agreement.
    support::wait_nodes(&me, &all, LIMIT).await;
    let expected_globals = {
        let mut g: Vec<String> = names.iter().map(|n| format!("own-{n}")).collect();
        g.push("soak_leader".into());
        g.sort();
        g
    };
    let deadline = tokio::time::Instant::now() + LIMIT;
    let reports = loop {
        let mut reports = Vec::new();
        for name in &names {
            reports.push(health(&me, name).await.unwrap_or_default());
        }
        let healthy = reports.iter().all(|r| {
            r.starts_with("children_running=true stuck=0 ")
                && r.split("globals=").nth(1).is_some_and(|g| {
                    let held: Vec<&str> =
                        g.split(',').filter_map(|e| e.split(':').next()).collect();
                    held == expected_globals
                })
        });
        let agree = reports.windows(2).all(|w| w[0] == w[1]);
        if healthy && agree {
            break reports;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cluster did not heal:\n{}",
            reports.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("soak: healed: {}", reports[0]);
    // Each node's own name is held on that node.
    for name in &names {
        assert!(
            reports[0].contains(&format!("own-{name}:{name}")),
            "{}",
            reports[0]
        );
    }
    // Resident memory of the members that ran throughout (the first one at
    // least): flat (within 10 %, or 1 MiB for small figures).
    assert!(!members[0].restarted);
    for m in &members {
        if let (false, Some(warm)) = (m.restarted, m.rss_warm_kib) {
            let now = m.rss_kib();
            eprintln!("soak: {} RSS {warm} KiB -> {now} KiB", m.name);
            assert!(
                now <= (warm + warm / 10).max(warm + 1024),
                "{}: RSS grew from {warm} KiB to {now} KiB",
                m.name
            );
        }
    }
}
