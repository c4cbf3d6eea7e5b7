//! `beam-attach`: what attaching clustertop costs a BEAM node.
//!
//! One `erl` node holding N idle processes (10,000 and 100,000; 10,000
//! with `--quick`; any N with `--processes N`, for the documented 1 M
//! run). First its idle CPU over 3 s (the baseline); then clustertop's
//! BEAM source attaches, as `clustertop --beam` does (a round every
//! second: the node figures, the process table through `process_info/2`
//! over `erlang:processes/0`, the names of new `proc_lib` processes), and
//! over the next rounds (10; 3 with `--quick`) the node's CPU time above
//! its baseline is divided by the rounds: the target's CPU per refresh.
//! Both ways of reading the process table are measured: `full` (every
//! process through `process_info/2`, built-in functions only) and `top`
//! (the node ranks its processes with one `erl_eval` expression and sends
//! the top 200 by queue, memory and reductions).
//! The bytes both ways over the connection, per refresh, come from the
//! source's own counters, and the wall time of a refresh from the rounds'
//! pace (a refresh longer than the 1 s interval shows as more than
//! 1,000 ms).
//!
//! The node's CPU is its OS process's user + system time
//! (`/proc/<pid>/stat`); `erl` runs the emulator in the process it
//! starts. Needs `erl` (Debian's `erlang-base`); without it the scenario
//! prints a notice and measures nothing.

use crate::idle::{cpu_ticks, ticks_per_s};
use crate::report::Sample;
use clustertop_beam::{BeamConfig, BeamSource, Conn, TableMode, Term};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const COOKIE: &str = "clustertop-bench-beam";

struct Erl(Child);

impl Drop for Erl {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_else(|_| "localhost".into())
        .trim()
        .split('.')
        .next()
        .unwrap_or("localhost")
        .to_owned()
}

pub(crate) async fn attach(quick: bool, processes: usize) -> Vec<Sample> {
    if Command::new("erl").arg("-version").output().is_err() {
        eprintln!(
            "notice: beam-attach measures nothing: `erl` is not on PATH (install Erlang/OTP, e.g. `apt-get install erlang-base`)"
        );
        return Vec::new();
    }
    let sizes: Vec<usize> = match (processes, quick) {
        (0, true) => vec![10_000],
        (0, false) => vec![10_000, 100_000],
        (n, _) => vec![n],
    };
    let rounds = if quick { 3 } else { 10 };
    let mut out = Vec::new();
    for n in sizes {
        for table in [TableMode::Full, TableMode::Top] {
            out.push(one(n, rounds, table).await);
        }
    }
    out
}

async fn one(n: usize, rounds: u64, table: TableMode) -> Sample {
    let sname = format!("bench_beam_{}_{n}", std::process::id());
    let node = format!("{sname}@{}", host());
    let eval = format!("[spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, {n})]");
    let limit = (n * 2).max(262_144).to_string();
    let child = Command::new("erl")
        .args([
            "-sname",
            &sname,
            "-setcookie",
            COOKIE,
            "-noshell",
            "-noinput",
        ])
        .args(["+P", &limit, "-eval", &eval])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("erl starts");
    let erl = Erl(child);
    let pid = erl.0.id();
    // Up, with every process spawned.
    let me = format!("bench_check_{}@{}", std::process::id(), host());
    let timeout = Duration::from_secs(120);
    let start = Instant::now();
    let check = loop {
        match Conn::connect(&node, &me, COOKIE, Duration::from_secs(5)).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(start.elapsed() < timeout, "{node} did not start: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    loop {
        let count = check
            .call(
                "erlang",
                "system_info",
                vec![Term::Atom("process_count".into())],
                timeout,
            )
            .await
            .expect("process_count");
        if count.to_string().parse::<usize>().unwrap_or(0) >= n {
            break;
        }
        assert!(start.elapsed() < timeout, "{node}: processes not spawned");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    check.close();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let hz = ticks_per_s();
    let baseline_window = Duration::from_secs(3);
    let t0 = cpu_ticks(pid);
    tokio::time::sleep(baseline_window).await;
    let idle_per_s = (cpu_ticks(pid) - t0) as f64 / hz / baseline_window.as_secs_f64();

    let mut cfg = BeamConfig::new(
        clustertop_client::ClientConfig::new(node.clone())
            .cookie(COOKIE)
            .timeout(timeout),
    );
    cfg.table = table;
    // Every round reads the table: the cost of one read. (By default a
    // node's table is read again after ten times its last read took.)
    cfg.pace = 0;
    let source = BeamSource::connect(cfg).await.expect("attach");
    // The first round reads every proc_lib process's names once: measured
    // from the round after it.
    source.wait_rounds(2).await;
    let (in0, out0) = source.traffic();
    let (r0, c0, w0) = (source.rounds(), cpu_ticks(pid), Instant::now());
    source.wait_rounds(r0 + rounds).await;
    let (r1, c1, wall) = (source.rounds(), cpu_ticks(pid), w0.elapsed());
    let (in1, out1) = source.traffic();
    let read_ms = source.last_table_read_ms();
    let done = (r1 - r0) as f64;
    let cpu_s = (c1 - c0) as f64 / hz - idle_per_s * wall.as_secs_f64();
    drop(source);
    drop(erl);
    Sample {
        scenario: "beam-attach",
        params: vec![
            ("processes", json!(n)),
            (
                "table",
                json!(match table {
                    TableMode::Top => "top",
                    _ => "full",
                }),
            ),
            ("rounds", json!(r1 - r0)),
        ],
        figures: vec![
            (
                "target_cpu_ms_per_refresh",
                (cpu_s * 1000.0 / done).max(0.0),
            ),
            ("bytes_from_target_per_refresh", (in1 - in0) as f64 / done),
            ("bytes_to_target_per_refresh", (out1 - out0) as f64 / done),
            ("refresh_ms", wall.as_secs_f64() * 1000.0 / done),
            ("read_ms", read_ms),
            ("target_idle_cpu_ms_per_s", idle_per_s * 1000.0),
        ],
    }
}
