//! `compare`: every runtime on each scenario, side by side.
//!
//! For each scenario the runtimes run in turn, each run in a fresh OS
//! process (clustertop, the BEAM, actix, ractor, kameo, then again), for a
//! number of rounds; a runtime that cannot express a scenario is left
//! out of it. The result is a markdown table of the median, minimum and
//! maximum of each runtime's headline figures, and a second table with
//! the ratio of ours to each peer.
//!
//! The BEAM runs `bench/peers/beam.escript` on Debian's `erlang-base`,
//! installed with `apt-get` when `escript` is missing and this process
//! runs as root; otherwise the BEAM column is left out, with a notice.
//!
//! ractor's remote scenarios run `bench/ractor-remote` (ractor_cluster)
//! and kameo's run `bench/kameo-remote` (kameo's remote actors on
//! libp2p), packages of their own outside the workspace: ractor's
//! `cluster` feature changes the local API the local ractor peer is
//! written against, and kameo's `remote` feature brings in libp2p. Each
//! is built with `cargo` on first use; without it those rows leave that
//! runtime out, with a notice.

use crate::{Runtime, Scenario};
use clap::ValueEnum;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The escript that runs the scenarios on the BEAM.
const BEAM_ESCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/beam.escript");

/// The packages of the Rust peers' remote scenarios: runtime, package
/// directory, binary.
const REMOTE_PACKAGES: [(Peer, &str, &str); 2] = [
    (
        Peer::Ractor,
        concat!(env!("CARGO_MANIFEST_DIR"), "/ractor-remote"),
        "clustertop-bench-ractor-remote",
    ),
    (
        Peer::Kameo,
        concat!(env!("CARGO_MANIFEST_DIR"), "/kameo-remote"),
        "clustertop-bench-kameo-remote",
    ),
];

/// The lock file, for the versions of the Rust peers measured.
const LOCK: &str = include_str!("../../Cargo.lock");

/// One run may take at most this long before it is killed and counted
/// as failed.
const RUN_TIMEOUT: Duration = Duration::from_secs(900);

/// What `compare` was asked for.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) quick: bool,
    pub(crate) full: bool,
    pub(crate) only: Vec<Scenario>,
    pub(crate) rounds: Option<usize>,
    pub(crate) runtimes: Vec<Peer>,
    pub(crate) threads: Option<usize>,
    pub(crate) out: Option<PathBuf>,
}

/// A runtime in the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub(crate) enum Peer {
    /// This project's runtime.
    Clustertop,
    /// Erlang/OTP (the escript).
    Beam,
    /// actix.
    Actix,
    /// ractor.
    Ractor,
    /// kameo.
    Kameo,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Clustertop => "clustertop",
            Peer::Beam => "beam",
            Peer::Actix => "actix",
            Peer::Ractor => "ractor",
            Peer::Kameo => "kameo",
        }
    }

    fn rust(self) -> Option<Runtime> {
        match self {
            Peer::Clustertop => Some(Runtime::Clustertop),
            Peer::Actix => Some(Runtime::Actix),
            Peer::Ractor => Some(Runtime::Ractor),
            Peer::Kameo => Some(Runtime::Kameo),
            Peer::Beam => None,
        }
    }

    /// Whether this runtime runs `s`: the Rust peers have the local
    /// scenarios; ractor and kameo the remote ones too when their remote
    /// package is built (`remote`); actix has no distribution.
    fn runs(self, s: Scenario, remote: bool) -> bool {
        match self {
            Peer::Clustertop | Peer::Beam => true,
            Peer::Ractor | Peer::Kameo => LOCAL.contains(&s) || remote,
            Peer::Actix => LOCAL.contains(&s),
        }
    }
}

/// The binary of `peer`'s remote scenarios, built first if need be;
/// `None` (with a notice) when `peer` has none or it cannot be built.
fn remote_package(peer: Peer) -> Option<PathBuf> {
    let &(_, dir, bin) = REMOTE_PACKAGES.iter().find(|(p, ..)| *p == peer)?;
    let name = peer.name();
    let dir = PathBuf::from(dir);
    let exe = dir.join("target/release").join(bin);
    eprintln!("building {name}'s remote peer ({})", dir.display());
    let built = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .status();
    match built {
        Ok(s) if s.success() && exe.exists() => Some(exe),
        Ok(s) => {
            eprintln!(
                "notice: building {name}'s remote peer failed ({s}): {name} is left out of the remote scenarios"
            );
            None
        }
        Err(e) => {
            eprintln!(
                "notice: cargo is not available ({e}): {name} is left out of the remote scenarios"
            );
            None
        }
    }
}

const LOCAL: [Scenario; 5] = [
    Scenario::LocalOneway,
    Scenario::Ring,
    Scenario::CallRtt,
    Scenario::Spawn,
    Scenario::IdleMemory,
];

/// The scenarios every runtime is compared on.
const COMPARED: [Scenario; 8] = [
    Scenario::LocalOneway,
    Scenario::Ring,
    Scenario::CallRtt,
    Scenario::Spawn,
    Scenario::IdleMemory,
    Scenario::RemoteOneway,
    Scenario::RemoteBulk,
    Scenario::RemoteCallRtt,
];

/// Whether more or less of a figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Better {
    More,
    Less,
}

/// The figures compared for a scenario: JSON key, unit, direction.
fn headlines(scenario: &str) -> &'static [(&'static str, &'static str, Better)] {
    match scenario {
        "local-oneway" | "remote-oneway" => &[("msgs_per_s", "msg/s", Better::More)],
        "ring" => &[("ns_per_hop", "ns/hop", Better::Less)],
        "call-rtt" | "remote-call-rtt" => &[
            ("p50_us", "µs p50", Better::Less),
            ("p99_us", "µs p99", Better::Less),
        ],
        "spawn" => &[("spawns_per_s", "spawns/s", Better::More)],
        "idle-memory" => &[("bytes_per_process", "B/process", Better::Less)],
        "remote-bulk" => &[("mb_per_s", "MB/s", Better::More)],
        _ => &[],
    }
}

/// Keys of a result line that identify what it measured (the shape of
/// the work), not figures. How long a run was (`messages`, `calls`) is
/// left out: a runtime may run fewer messages to the same rate when the
/// full count would take minutes (kameo's remote one-way).
const PARAMS: [&str; 4] = ["processes", "laps", "senders", "payload_bytes"];

/// A table row: scenario, its identifying parameters, a figure.
type RowKey = (String, String, &'static str);

/// Runs the comparison and prints the tables (and writes them to
/// `opts.out`).
pub(crate) fn run(opts: &Options) -> ExitCode {
    let rounds = opts
        .rounds
        .unwrap_or(if opts.quick {
            1
        } else if opts.full {
            5
        } else {
            3
        })
        .max(1);
    let scenarios: Vec<Scenario> = if opts.only.is_empty() {
        COMPARED.to_vec()
    } else {
        opts.only.clone()
    };
    let mut runtimes = if opts.runtimes.is_empty() {
        Peer::value_variants().to_vec()
    } else {
        opts.runtimes.clone()
    };
    runtimes.sort();
    runtimes.dedup();
    if runtimes.contains(&Peer::Beam) && !beam_available() {
        runtimes.retain(|r| *r != Peer::Beam);
    }

    let remote = scenarios.iter().any(|s| !LOCAL.contains(s));
    let remote_bins: BTreeMap<Peer, PathBuf> = if remote {
        runtimes
            .iter()
            .filter_map(|&p| Some((p, remote_package(p)?)))
            .collect()
    } else {
        BTreeMap::new()
    };
    let exe = std::env::current_exe().expect("own path");
    let mut results: BTreeMap<RowKey, BTreeMap<Peer, Vec<f64>>> = BTreeMap::new();
    let mut order: Vec<RowKey> = Vec::new();
    let mut failed = 0;
    for &scenario in &scenarios {
        let name = scenario_name(scenario);
        let name = name.as_str();
        for round in 1..=rounds {
            let peers = runtimes
                .iter()
                .filter(|p| p.runs(scenario, remote_bins.contains_key(p)));
            for &peer in peers {
                eprintln!("[{name} round {round}/{rounds}] {}", peer.name());
                let mut cmd = match (peer.rust(), remote_bins.get(&peer)) {
                    (Some(_), Some(bin)) if !LOCAL.contains(&scenario) => {
                        let mut c = Command::new(bin);
                        c.arg(name);
                        c
                    }
                    (Some(rt), _) => {
                        let mut c = Command::new(&exe);
                        c.args([name, "--json", "--repeat", "1", "--runtime"]);
                        c.arg(rt.name());
                        if let Some(t) = opts.threads {
                            c.arg("--threads").arg(t.to_string());
                        }
                        c
                    }
                    (None, _) => {
                        let mut c = Command::new("escript");
                        c.args([BEAM_ESCRIPT, name]);
                        c
                    }
                };
                if opts.quick {
                    cmd.arg("--quick");
                }
                let lines = match run_child(cmd) {
                    Ok(lines) => lines,
                    Err(e) => {
                        eprintln!("  {} on {name} failed: {e}", peer.name());
                        failed += 1;
                        continue;
                    }
                };
                for line in lines {
                    for (key, value) in figures(&line) {
                        if !order.contains(&key) {
                            order.push(key.clone());
                        }
                        results
                            .entry(key)
                            .or_default()
                            .entry(peer)
                            .or_default()
                            .push(value);
                    }
                }
            }
        }
    }

    let table = render(&order, &results, &runtimes, rounds, opts.quick);
    println!("{table}");
    if let Some(path) = &opts.out {
        let doc = format!(
            "# Side by side\n\nWritten by `clustertop-bench compare{}`.\n\n{}\n{table}",
            if opts.full { " --full" } else { "" },
            machine()
        );
        if let Err(e) = std::fs::write(path, doc) {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("wrote {}", path.display());
    }
    if failed > 0 {
        eprintln!("{failed} run(s) failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn scenario_name(s: Scenario) -> String {
    s.to_possible_value().expect("named").get_name().to_owned()
}

/// Runs one child to completion; its stdout's lines.
fn run_child(mut cmd: Command) -> Result<Vec<String>, String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if start.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no result within {} s", RUN_TIMEOUT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = reader
        .join()
        .map_err(|_| "reader panicked".to_owned())?
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("exit status {status}"));
    }
    Ok(out.lines().map(str::to_owned).collect())
}

/// The compared figures of one JSON result line.
fn figures(line: &str) -> Vec<(RowKey, f64)> {
    let Ok(Value::Object(m)) = serde_json::from_str::<Value>(line) else {
        return Vec::new();
    };
    let Some(scenario) = m.get("scenario").and_then(Value::as_str) else {
        return Vec::new();
    };
    let params: Vec<String> = PARAMS
        .iter()
        .filter_map(|k| m.get(*k).map(|v| format!("{k}={v}")))
        .collect();
    let params = params.join(" ");
    headlines(scenario)
        .iter()
        .filter_map(|(k, _, _)| {
            let v = m.get(*k)?.as_f64()?;
            Some(((scenario.to_owned(), params.clone(), *k), v))
        })
        .collect()
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// A figure with 3 significant digits and a k/M suffix.
fn num(v: f64) -> String {
    let (v, suffix) = if v.abs() >= 1e6 {
        (v / 1e6, " M")
    } else if v.abs() >= 1e4 {
        (v / 1e3, " k")
    } else {
        (v, "")
    };
    let digits = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$}{suffix}")
}

/// The row's label: the scenario and what sets it apart from its
/// siblings.
fn label(scenario: &str, params: &str) -> String {
    let get = |k: &str| {
        params
            .split(' ')
            .find_map(|p| p.strip_prefix(k)?.strip_prefix('='))
            .unwrap_or("")
            .to_owned()
    };
    match scenario {
        "ring" => format!("ring {} × {}", get("processes"), get("laps")),
        "remote-oneway" => {
            let s = get("senders");
            format!(
                "remote-oneway, {s} sender{}",
                if s == "1" { "" } else { "s" }
            )
        }
        _ => scenario.to_owned(),
    }
}

fn render(
    order: &[RowKey],
    results: &BTreeMap<RowKey, BTreeMap<Peer, Vec<f64>>>,
    runtimes: &[Peer],
    rounds: usize,
    quick: bool,
) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Median (min–max) of {rounds} run{} per runtime{}, each run in a fresh OS process, runtimes interleaved.\n",
        if rounds == 1 { "" } else { "s" },
        if quick { ", quick sizes" } else { "" }
    );
    let header: Vec<&str> = runtimes.iter().map(|r| r.name()).collect();
    let _ = writeln!(t, "| scenario | figure | {} |", header.join(" | "));
    let _ = writeln!(t, "|---|---|{}", "---|".repeat(runtimes.len()));
    for key in order {
        let (scenario, params, figure) = key;
        let Some(&(_, unit, better)) = headlines(scenario).iter().find(|h| h.0 == *figure) else {
            continue;
        };
        let by = &results[key];
        let best = by
            .values()
            .map(|v| median(v))
            .reduce(|a, b| match better {
                Better::More => a.max(b),
                Better::Less => a.min(b),
            })
            .unwrap_or(f64::NAN);
        let cells: Vec<String> = runtimes
            .iter()
            .map(|r| match by.get(r) {
                None => "–".to_owned(),
                Some(v) => {
                    let m = median(v);
                    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let cell = if v.len() == 1 {
                        num(m)
                    } else {
                        format!("{} ({}–{})", num(m), num(lo), num(hi))
                    };
                    if m == best && by.len() > 1 {
                        format!("**{cell}**")
                    } else {
                        cell
                    }
                }
            })
            .collect();
        let _ = writeln!(
            t,
            "| {} | {unit} | {} |",
            label(scenario, params),
            cells.join(" | ")
        );
    }

    let peers: Vec<Peer> = runtimes
        .iter()
        .copied()
        .filter(|r| *r != Peer::Clustertop)
        .collect();
    if runtimes.contains(&Peer::Clustertop) && !peers.is_empty() {
        let _ = writeln!(
            t,
            "\nclustertop against each peer, on the medians: how many times better ours is (above 1: clustertop ahead; for figures where less is better, the peer's figure over ours).\n"
        );
        let names: Vec<String> = peers.iter().map(|p| format!("vs {}", p.name())).collect();
        let _ = writeln!(t, "| scenario | figure | {} |", names.join(" | "));
        let _ = writeln!(t, "|---|---|{}", "---|".repeat(peers.len()));
        for key in order {
            let (scenario, params, figure) = key;
            let Some(&(_, unit, better)) = headlines(scenario).iter().find(|h| h.0 == *figure)
            else {
                continue;
            };
            let by = &results[key];
            let Some(ours) = by.get(&Peer::Clustertop).map(|v| median(v)) else {
                continue;
            };
            let cells: Vec<String> = peers
                .iter()
                .map(|p| match by.get(p).map(|v| median(v)) {
                    Some(theirs) if theirs > 0.0 && ours > 0.0 => {
                        let r = match better {
                            Better::More => ours / theirs,
                            Better::Less => theirs / ours,
                        };
                        format!("{r:.2}×")
                    }
                    _ => "–".to_owned(),
                })
                .collect();
            let _ = writeln!(
                t,
                "| {} | {unit} | {} |",
                label(scenario, params),
                cells.join(" | ")
            );
        }
    }
    t
}

/// Whether `escript` can be run, installing Debian's `erlang-base` when
/// it is missing and this process may.
fn beam_available() -> bool {
    let found = || {
        Command::new("escript")
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if found() {
        return true;
    }
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if root && Command::new("apt-get").arg("--version").output().is_ok() {
        eprintln!("escript not found: installing Debian's erlang-base");
        let ok = Command::new("apt-get")
            .args(["update", "-qq"])
            .status()
            .is_ok_and(|s| s.success())
            && Command::new("apt-get")
                .args(["install", "-y", "-qq", "erlang-base"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        if ok && found() {
            return true;
        }
    }
    eprintln!(
        "notice: the BEAM is left out: `escript` is not on PATH (install Erlang/OTP, e.g. `apt-get install erlang-base`)"
    );
    false
}

/// The lock files of ractor's and kameo's remote peers.
const RACTOR_REMOTE_LOCK: &str = include_str!("../ractor-remote/Cargo.lock");
const KAMEO_REMOTE_LOCK: &str = include_str!("../kameo-remote/Cargo.lock");

/// The version of a package in the lock file.
fn locked(name: &str) -> String {
    locked_in(LOCK, name)
}

/// The version of a package in the lock file `lock`.
fn locked_in(lock: &str, name: &str) -> String {
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l == format!("name = \"{name}\"")
            && let Some(v) = lines.next().and_then(|v| v.strip_prefix("version = "))
        {
            return v.trim_matches('"').to_owned();
        }
    }
    "?".to_owned()
}

fn first_line(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.lines().next().map(|l| l.trim().to_owned())
}

/// The machine and software versions, for the results file.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split(':').nth(1))
        .map(str::trim)
        .unwrap_or("unknown CPU")
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1048576.0);
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| "unknown OS".to_owned());
    let kernel = first_line("uname", &["-r"]).unwrap_or_default();
    let rustc = first_line("rustc", &["-V"]).unwrap_or_else(|| "rustc ?".to_owned());
    let otp = first_line(
        "erl",
        &[
            "-noshell",
            "-eval",
            "io:format(\"OTP ~s, erts ~s~n\", [erlang:system_info(otp_release), erlang:system_info(version)]), halt().",
        ],
    )
    .unwrap_or_else(|| "not installed".to_owned());
    let date = first_line("date", &["-u", "+%Y-%m-%d"]).unwrap_or_default();
    format!(
        "- Date: {date}\n- Machine: {cores} cores ({model}), {mem_gib:.0} GiB RAM, {os}, Linux {kernel}\n- Rust: {rustc}, release profile; clustertop {}; actix {}, ractor {} (remote: ractor_cluster {}), kameo {} (remote: libp2p {})\n- BEAM: {otp} (Debian's erlang-base, default scheduler settings)\n",
        env!("CARGO_PKG_VERSION"),
        locked("actix"),
        locked("ractor"),
        locked_in(RACTOR_REMOTE_LOCK, "ractor_cluster"),
        locked("kameo"),
        locked_in(KAMEO_REMOTE_LOCK, "libp2p"),
    )
}
