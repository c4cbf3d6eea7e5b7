//! `clustertop-bench`: throughput, latency and memory of the runtime.
//!
//! ```text
//! clustertop-bench <scenario> [--quick] [--json]
//! clustertop-bench all [--quick] [--json]
//! clustertop-bench compare [--quick|--full] [--only SCENARIO]... [--with RUNTIME]... [--out FILE]
//! ```
//!
//! Each scenario prints one result per line: with `--json`, one JSON object
//! such as `{"scenario":"local-oneway","runtime":"clustertop","msgs_per_s":…}`.
//! `all` runs every scenario in a fresh child process, so memory figures are
//! not skewed by earlier runs.

mod agent;
mod beam;
mod codec;
mod compare;
mod idle;
mod local;
mod peers;
mod raft;
mod remote;
mod report;
mod tui;

use clap::{Parser, ValueEnum};
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// 1 sender → 1 receiver, small messages.
    LocalOneway,
    /// A token passed around rings of processes.
    Ring,
    /// GenServer call round trips.
    CallRtt,
    /// Spawn and exit of many processes.
    Spawn,
    /// Resident memory per idle process.
    IdleMemory,
    /// Small messages to another node (1 and 4 senders).
    RemoteOneway,
    /// 1 MiB messages to another node.
    RemoteBulk,
    /// GenServer calls to another node.
    RemoteCallRtt,
    /// The wire codec candidates, encode + decode.
    Codec,
    /// 3 Raft replicas on loopback with disc storage: commands/s and
    /// commit latency of 100-byte commands, 1 and 64 callers.
    RaftCommands,
    /// Throughput of a message workload with the agent off, on, and on with
    /// tracing at 1 % (one run per process).
    AgentOverhead,
    /// Time and memory of one agent sample at 100 k and 1 M processes.
    AgentSample,
    /// Frame time of every clustertop view for a 1 M-process cluster.
    TuiRender,
    /// CPU used by an idle 3-node cluster with the agent on.
    IdleCpu,
    /// 16 nodes: time to a full mesh, idle CPU per node with the agent on,
    /// an attached client's latency, remote throughput while it polls.
    ScaleMesh,
    /// 4 nodes of 250 k processes: the agent's memory per node and the
    /// first page sorted by mailbox growth.
    ScaleProcesses,
    /// What attaching to a BEAM node costs it: its CPU and the bytes per
    /// refresh at 10 k and 100 k processes (`--processes N` for another
    /// size).
    BeamAttach,
    /// Runs the server node for the remote scenarios (used internally).
    Serve,
    /// Runs one idle node of `idle-cpu` (used internally).
    ServeIdle,
    /// One traced run of `agent-overhead` in its own process (used
    /// internally).
    AgentTraced,
    /// Every scenario, each in its own process.
    All,
    /// Every runtime (clustertop, the BEAM, actix, ractor, kameo) on each
    /// scenario, interleaved, as markdown tables.
    Compare,
}

/// The runtime a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Runtime {
    /// This project's runtime.
    Clustertop,
    /// actix 0.13 (local scenarios).
    Actix,
    /// ractor 0.16 (local scenarios).
    Ractor,
    /// kameo 0.22 (local scenarios).
    Kameo,
}

impl Runtime {
    /// The name in result lines.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Runtime::Clustertop => "clustertop",
            Runtime::Actix => "actix",
            Runtime::Ractor => "ractor",
            Runtime::Kameo => "kameo",
        }
    }
}

/// Benchmarks of the clustertop runtime.
#[derive(Debug, Parser)]
#[command(name = "clustertop-bench", version)]
struct Args {
    /// What to measure.
    #[arg(value_enum)]
    scenario: Scenario,
    /// Smaller sizes, for a smoke run (compare: one round).
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// compare: five rounds (the figures for bench/RESULTS.md).
    #[arg(long)]
    full: bool,
    /// compare: only this scenario (repeatable).
    #[arg(long, value_enum)]
    only: Vec<Scenario>,
    /// compare: rounds (default 3; 1 with --quick, 5 with --full).
    #[arg(long)]
    rounds: Option<usize>,
    /// compare: only these runtimes (repeatable; default all).
    #[arg(long = "with", value_enum)]
    with: Vec<compare::Peer>,
    /// compare: also write the tables, with the machine, to this file.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// serve-idle: the node's name.
    #[arg(long, hide = true)]
    name: Option<String>,
    /// serve-idle: a node to connect to (repeatable).
    #[arg(long, hide = true)]
    peer: Vec<String>,
    /// serve-idle: how many other nodes to see before it reports ready.
    #[arg(long, hide = true, default_value_t = 0)]
    expect: usize,
    /// agent-traced: the sampling ratio (none: the agent off, no tracing).
    #[arg(long, hide = true)]
    trace_ratio: Option<f64>,
    /// serve-idle: idle processes to hold; beam-attach: the one size to
    /// measure.
    #[arg(long, default_value_t = 0)]
    processes: usize,
    /// One JSON object per result line.
    #[arg(long)]
    json: bool,
    /// The runtime to measure (a peer runs the scenarios it can express).
    #[arg(long, value_enum, default_value = "clustertop")]
    runtime: Runtime,
    /// Scheduler threads (default: the number of CPUs).
    #[arg(long)]
    threads: Option<usize>,
    /// Runs of each scenario; the median run is reported (default: 3, or 1
    /// with --quick; idle-memory always runs once).
    #[arg(long)]
    repeat: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.scenario == Scenario::All {
        return run_all(&args);
    }
    if args.scenario == Scenario::Compare {
        return compare::run(&compare::Options {
            quick: args.quick,
            full: args.full,
            only: args.only.clone(),
            rounds: args.rounds,
            runtimes: args.with.clone(),
            threads: args.threads,
            out: args.out.clone(),
        });
    }
    if args.scenario == Scenario::Serve {
        let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
        rt.block_on(remote::serve());
        return ExitCode::SUCCESS;
    }
    if args.scenario == Scenario::AgentTraced {
        let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
        rt.block_on(agent::traced_run(args.quick, args.trace_ratio));
        return ExitCode::SUCCESS;
    }
    if args.scenario == Scenario::ServeIdle {
        let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
        let name = args.name.clone().unwrap_or_else(|| "idle@localhost".into());
        rt.block_on(idle::serve_idle(
            &name,
            &args.peer,
            args.expect,
            args.processes,
        ));
        return ExitCode::SUCCESS;
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let out = report::Out {
        json: args.json,
        runtime: args.runtime.name(),
    };
    let repeat = match args.scenario {
        // RSS only measures the first run: later runs reuse freed memory.
        // Tracing, once installed, stays for the rest of the process.
        Scenario::IdleMemory
        | Scenario::AgentOverhead
        | Scenario::IdleCpu
        | Scenario::ScaleMesh
        | Scenario::ScaleProcesses
        | Scenario::BeamAttach => 1,
        _ => args.repeat.unwrap_or(if args.quick { 1 } else { 3 }).max(1),
    };
    let mut runs = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let peer = match args.runtime {
            Runtime::Clustertop => None,
            // actix runs its own system (a single-threaded tokio runtime).
            Runtime::Actix => Some(peers::actix::run(args.scenario, args.quick)),
            Runtime::Ractor => Some(rt.block_on(peers::ractor::run(args.scenario, args.quick))),
            Runtime::Kameo => Some(rt.block_on(peers::kameo::run(args.scenario, args.quick))),
        };
        if let Some(samples) = peer {
            let Some(samples) = samples else {
                eprintln!(
                    "{} does not run {}",
                    args.runtime.name(),
                    args.scenario.to_possible_value().expect("named").get_name()
                );
                return ExitCode::from(3);
            };
            runs.push(samples);
            continue;
        }
        runs.push(rt.block_on(async {
            match args.scenario {
                Scenario::LocalOneway => local::oneway(args.quick).await,
                Scenario::Ring => local::ring(args.quick).await,
                Scenario::CallRtt => local::call_rtt(args.quick).await,
                Scenario::Spawn => local::spawn(args.quick).await,
                Scenario::IdleMemory => local::idle_memory(args.quick).await,
                Scenario::RemoteOneway => remote::oneway(args.quick).await,
                Scenario::RemoteBulk => remote::bulk(args.quick).await,
                Scenario::RemoteCallRtt => remote::call_rtt(args.quick).await,
                Scenario::Codec => codec::run(args.quick),
                Scenario::RaftCommands => raft::commands(args.quick).await,
                Scenario::AgentOverhead => agent::overhead(args.quick).await,
                Scenario::AgentSample => agent::sampler(args.quick).await,
                Scenario::TuiRender => tui::render(args.quick),
                Scenario::IdleCpu => idle::idle_cpu(args.quick).await,
                Scenario::ScaleMesh => idle::scale_mesh(args.quick).await,
                Scenario::ScaleProcesses => idle::scale_processes(args.quick).await,
                Scenario::BeamAttach => beam::attach(args.quick, args.processes).await,
                Scenario::All
                | Scenario::Serve
                | Scenario::ServeIdle
                | Scenario::AgentTraced
                | Scenario::Compare => {
                    unreachable!("handled above")
                }
            }
        }));
    }
    out.report(&runs);
    ExitCode::SUCCESS
}

fn run_all(args: &Args) -> ExitCode {
    let exe = std::env::current_exe().expect("own path");
    let mut ok = true;
    for s in Scenario::value_variants() {
        if matches!(
            s,
            Scenario::All
                | Scenario::Serve
                | Scenario::ServeIdle
                | Scenario::AgentTraced
                | Scenario::Compare
        ) {
            continue;
        }
        let name = s.to_possible_value().expect("named").get_name().to_owned();
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg(&name);
        if args.quick {
            cmd.arg("--quick");
        }
        if args.json {
            cmd.arg("--json");
        }
        if let Some(t) = args.threads {
            cmd.arg("--threads").arg(t.to_string());
        }
        if let Some(r) = args.repeat {
            cmd.arg("--repeat").arg(r.to_string());
        }
        let status = cmd.status().expect("run scenario");
        if !status.success() {
            eprintln!("scenario {name} failed: {status}");
            ok = false;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
