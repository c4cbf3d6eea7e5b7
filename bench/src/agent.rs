//! The agent's cost: throughput of a message-heavy workload with the agent
//! off, on, on with a client attached and polling every second, and on
//! with tracing at 1 % and at 100 % sampling exported to a local OTLP
//! receiver; and the time one sample of the process table takes at 100 k
//! and 1 M processes.
//!
//! Tracing, once installed, stays for the rest of a process, so its runs
//! are separate processes (`agent-traced`), alternated with runs of the
//! agent off in processes of their own: off, 1 %, 100 %, five times. Each
//! such process also reports the CPU time (user + system, every thread)
//! its measured run took per message: on a shared host, whose steal moves
//! throughput by several percent from one process to the next, the CPU a
//! message costs is the steadier figure of what tracing adds.

use crate::report::Sample;
use clustertop_agent::{Agent, AgentConfig};
use clustertop_runtime::{Node, NodeConfig, Received};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use serde_json::json;
use std::time::{Duration, Instant};

/// 64 pairs of processes exchanging `u64`s plus GenServer calls: many
/// processes with traffic, so the sampler has something to read.
async fn workload(node: &Node, messages: u64) -> f64 {
    const PAIRS: u64 = 64;
    let per_pair = messages / PAIRS;
    let server = <crate::remote::Echo as clustertop_runtime::GenServer>::start(node, ())
        .await
        .unwrap();
    let start = Instant::now();
    let mut done = Vec::new();
    for _ in 0..PAIRS {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let receiver = node.spawn::<u64, _, _>(move |mut ctx| async move {
            let mut sum = 0u64;
            for _ in 0..per_pair {
                if let Received::Msg(v) = ctx.recv().await {
                    sum = sum.wrapping_add(v);
                }
            }
            let _ = tx.send(sum);
        });
        let server = server.clone();
        node.spawn::<(), _, _>(move |_ctx| async move {
            for i in 0..per_pair {
                receiver.send(i);
                if i % 64 == 0 {
                    server.call(i, Duration::from_secs(5)).await.unwrap();
                }
            }
        });
        done.push(rx);
    }
    for rx in done {
        rx.await.unwrap();
    }
    let calls = PAIRS * per_pair.div_ceil(64);
    (PAIRS * per_pair + 2 * calls) as f64 / start.elapsed().as_secs_f64()
}

/// An OTLP/gRPC receiver that counts the spans it is sent.
#[derive(Clone, Default)]
struct SpanCounter(std::sync::Arc<std::sync::atomic::AtomicU64>);

#[tonic::async_trait]
impl TraceService for SpanCounter {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let n: usize = request
            .into_inner()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// Installs logs (to nowhere), the agent's log ring and span export at
/// `ratio` to a receiver started here; returns the guard and the span
/// count.
async fn tracing_on(
    ratio: f64,
) -> (
    clustertop_otel::TelemetryGuard,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    let counter = SpanCounter::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(counter.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let mut config = clustertop_otel::TelemetryConfig::new("bench@localhost");
    config.log_filter = Some("warn".into());
    config.log_writer = Some(tracing_subscriber::fmt::writer::BoxMakeWriter::new(
        std::io::sink,
    ));
    config.prometheus = None;
    config.traces = Some(clustertop_otel::TraceConfig {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        protocol: Some(clustertop_otel::OtlpProtocol::Grpc),
        service_name: Some("clustertop-bench".into()),
        sample_ratio: Some(ratio),
    });
    config.extra_layer = Some(clustertop_agent::log_layer(
        clustertop_proto::LogLevel::Info,
    ));
    let guard = clustertop_otel::init(config).expect("telemetry");
    (guard, counter.0)
}

/// The same workload with the agent off, then on (sampling every second
/// and every 100 ms), then on with tracing at 1 %. Tracing cannot be
/// switched off again in a process, so this runs once per process.
pub(crate) async fn overhead(quick: bool) -> Vec<Sample> {
    let n: u64 = if quick { 2_000_000 } else { 20_000_000 };
    // Distributed, so that a client can attach as clustertop does.
    let node = Node::start(
        NodeConfig::new("bench@localhost").dist(
            clustertop_runtime::dist::DistConfig::listen("127.0.0.1:0".parse().expect("addr"))
                .cookie(COOKIE),
        ),
    )
    .expect("node");
    let addr = node.dist().listen_addr().expect("listening").to_string();
    // A warm-up run, so the first measured one does not pay for it.
    workload(&node, n / 4).await;
    // Off and on alternate, three times each: this machine's throughput
    // drifts between runs more than the agent costs.
    let (mut offs, mut ons, mut fasts, mut watched) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let fast = AgentConfig {
        interval: Duration::from_millis(100),
        ..AgentConfig::default()
    };
    for _ in 0..3 {
        offs.push(workload(&node, n).await);
        let agent = Agent::start(&node, AgentConfig::default()).await.unwrap();
        ons.push(workload(&node, n).await);
        agent.stop();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let agent = Agent::start(&node, fast.clone()).await.unwrap();
        fasts.push(workload(&node, n).await);
        agent.stop();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let agent = Agent::start(&node, AgentConfig::default()).await.unwrap();
        let poller = attach_and_poll(&addr, COOKIE).await;
        watched.push(workload(&node, n).await);
        poller.abort();
        agent.stop();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (off, on, on_fast, on_watched) = (
        median(&mut offs),
        median(&mut ons),
        median(&mut fasts),
        median(&mut watched),
    );
    let mut traced: [Vec<Traced>; 3] = Default::default();
    for _ in 0..TRACED_ROUNDS {
        for (i, ratio) in [None, Some(0.01), Some(1.0)].into_iter().enumerate() {
            traced[i].push(traced_child(quick, ratio));
        }
    }
    // Medians of each figure on its own.
    let [proc_off, one, all] = traced.map(|runs| {
        let mid = |f: fn(&Traced) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        Traced {
            msgs_per_s: mid(|t| t.msgs_per_s),
            spans: mid(|t| t.spans),
            cpu_ns_per_msg: mid(|t| t.cpu_ns_per_msg),
        }
    });
    let lost = |with: f64| (1.0 - with / off) * 100.0;
    let lost_proc = |with: f64| (1.0 - with / proc_off.msgs_per_s) * 100.0;
    let more_cpu = |with: f64| (with / proc_off.cpu_ns_per_msg - 1.0) * 100.0;
    vec![Sample {
        scenario: "agent-overhead",
        params: vec![("messages", json!(n))],
        figures: vec![
            ("lost_pct_agent_1s", lost(on)),
            ("msgs_per_s_off", off),
            ("msgs_per_s_agent_1s", on),
            ("msgs_per_s_agent_100ms", on_fast),
            ("lost_pct_agent_100ms", lost(on_fast)),
            ("msgs_per_s_agent_attached", on_watched),
            ("lost_pct_agent_attached", lost(on_watched)),
            ("msgs_per_s_off_own_process", proc_off.msgs_per_s),
            ("msgs_per_s_traced_1pct", one.msgs_per_s),
            ("lost_pct_traced_1pct", lost_proc(one.msgs_per_s)),
            ("spans_exported_1pct", one.spans),
            ("msgs_per_s_traced_100pct", all.msgs_per_s),
            ("lost_pct_traced_100pct", lost_proc(all.msgs_per_s)),
            ("spans_exported_100pct", all.spans),
            ("cpu_ns_per_msg_off_own_process", proc_off.cpu_ns_per_msg),
            ("cpu_ns_per_msg_traced_1pct", one.cpu_ns_per_msg),
            ("more_cpu_pct_traced_1pct", more_cpu(one.cpu_ns_per_msg)),
            ("cpu_ns_per_msg_traced_100pct", all.cpu_ns_per_msg),
            ("more_cpu_pct_traced_100pct", more_cpu(all.cpu_ns_per_msg)),
        ],
    }]
}

/// Rounds of traced processes: off, 1 %, 100 %, this many times.
const TRACED_ROUNDS: usize = 5;

/// What one `agent-traced` process measured.
#[derive(Debug, Clone, Copy, Default)]
struct Traced {
    msgs_per_s: f64,
    spans: f64,
    /// CPU time of the whole process (every thread, user + system) in
    /// the measured run, per message.
    cpu_ns_per_msg: f64,
}

/// Runs `agent-traced` in a child process.
fn traced_child(quick: bool, ratio: Option<f64>) -> Traced {
    let exe = std::env::current_exe().expect("own path");
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("agent-traced");
    if quick {
        cmd.arg("--quick");
    }
    if let Some(r) = ratio {
        cmd.arg("--trace-ratio").arg(r.to_string());
    }
    let out = cmd.output().expect("agent-traced runs");
    assert!(out.status.success(), "agent-traced failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    assert_eq!(f.len(), 3, "agent-traced printed {text:?}");
    Traced {
        msgs_per_s: f[0],
        spans: f[1],
        cpu_ns_per_msg: f[2],
    }
}

/// CPU time this process has used, every thread, user and system.
fn process_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` writes one `rusage` through a valid pointer.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage");
    // SAFETY: zeroed, then filled in by a successful `getrusage`.
    let u = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// One run of the workload in this process (used internally): with a
/// `ratio`, the agent on and spans sampled at `ratio` exported to a
/// receiver here; without, the agent off and no tracing. After a warm-up
/// run, prints `MSGS_PER_S SPANS_EXPORTED CPU_NS_PER_MESSAGE`.
pub(crate) async fn traced_run(quick: bool, ratio: Option<f64>) {
    let n: u64 = if quick { 2_000_000 } else { 20_000_000 };
    let node = Node::start(NodeConfig::new("bench@localhost")).expect("node");
    let telemetry = match ratio {
        Some(r) => Some(tracing_on(r).await),
        None => None,
    };
    let agent = match ratio {
        Some(_) => Some(Agent::start(&node, AgentConfig::default()).await.unwrap()),
        None => None,
    };
    workload(&node, n / 4).await;
    let before = telemetry.as_ref().map_or(0, |(_, spans)| {
        spans.load(std::sync::atomic::Ordering::Relaxed)
    });
    let cpu = process_cpu();
    let rate = workload(&node, n).await;
    let cpu_ns_per_msg = (process_cpu() - cpu).as_nanos() as f64 / n as f64;
    if let Some(agent) = agent {
        agent.stop();
    }
    let spans = match telemetry {
        Some((guard, spans)) => {
            guard.flush();
            let exported = spans.load(std::sync::atomic::Ordering::Relaxed) - before;
            drop(guard);
            exported
        }
        None => 0,
    };
    println!("{rate} {spans} {cpu_ns_per_msg}");
}

const COOKIE: &str = "clustertop-bench-agent";

/// Attaches a client to `addr` and, every second as clustertop does,
/// asks for the overview and the top 20 processes, until aborted.
pub(crate) async fn attach_and_poll(addr: &str, cookie: &str) -> tokio::task::JoinHandle<()> {
    use clustertop_client::{Client, ClientConfig};
    use clustertop_proto::{ProcessFilter, ProcessQuery, SortKey};
    let client = Client::connect(ClientConfig::new(addr).cookie(cookie))
        .await
        .expect("attach");
    tokio::spawn(async move {
        let query = ProcessQuery {
            filter: ProcessFilter::default(),
            sort: SortKey::Default,
            descending: true,
            offset: 0,
            limit: 20,
        };
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            client.overview().await.expect("overview");
            client.processes(query.clone()).await.expect("processes");
        }
    })
}

/// Time of one sample of `n` idle processes, median of three, and the
/// bytes the sample holds.
async fn sample_cost(n: usize) -> Sample {
    let node = Node::start(NodeConfig::new("bench@localhost")).expect("node");
    let mut pids = Vec::with_capacity(n);
    for _ in 0..n {
        pids.push(node.spawn::<(), _, _>(|mut ctx| async move {
            while let Received::Msg(()) = ctx.recv().await {}
        }));
    }
    while node.introspect().process_count() < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Every process has run up to its first wait: the sample measures a
    // quiet node, not one still busy starting its processes.
    loop {
        let mut started = 0;
        node.introspect()
            .scan(|p| started += usize::from(p.polls > 0));
        if started >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let agent = Agent::start(
        &node,
        AgentConfig {
            interval: Duration::from_secs(3600),
            ..AgentConfig::default()
        },
    )
    .await
    .unwrap();
    let mut times: Vec<f64> = Vec::new();
    for _ in 0..3 {
        times.push(agent.sample_now().await.as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let bytes = agent.memory().sample_bytes;
    agent.stop();
    drop(pids);
    Sample {
        scenario: "agent-sample",
        params: vec![("processes", json!(n))],
        figures: vec![
            ("ms_per_sample", times[1]),
            ("sample_mib", bytes as f64 / (1u64 << 20) as f64),
        ],
    }
}

/// Sampler cost at 100 k and (without `--quick`) 1 M processes.
pub(crate) async fn sampler(quick: bool) -> Vec<Sample> {
    let mut out = vec![sample_cost(100_000).await];
    if !quick {
        out.push(sample_cost(1_000_000).await);
    }
    out
}
