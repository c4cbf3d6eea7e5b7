//! The command line: the interactive view by default, and `demo`,
//! `snapshot`, `logs` (and the hidden `node`, which `demo` runs).

use crate::demo::{Collector, Demo, DemoError, DemoFile, TargetsFile};
use crate::error::CliError;
use crate::format;
use crate::stack::Stack;
use crate::target::Target;
use clap::{Parser, Subcommand};
use clustertop_client::{COOKIE_ENV, random_cookie};
use clustertop_client::{Client, ClientConfig, ClientError};
use clustertop_proto::{
    GetProcessTraces, GetTelemetry, LogFilter, LogLevel, LogRecord, NodeStatus,
};
use std::time::Duration;

/// The default entry node, where `clustertop demo` puts its first node.
pub(crate) const DEFAULT_NODE: &str = "127.0.0.1:4370";

/// Attach to a clustertop cluster and watch it.
#[derive(Debug, Parser)]
#[command(name = "clustertop", version, about)]
pub(crate) struct Args {
    /// The entry node's address (host:port), before or after the
    /// subcommand; the rest of the cluster is found through it. A list
    /// (`A,B,C`) names where to attach when the first does not answer.
    /// Default: a running demo's entry (from ~/.clustertop.demos/, with
    /// its other nodes to fall back on), else 127.0.0.1:4370.
    #[arg(long, global = true, env = "CLUSTERTOP_NODE", value_name = "ADDR")]
    node: Option<String>,
    /// Attach to an Erlang/Elixir cluster instead, through this node
    /// (`name@host`, its port from EPMD), as a hidden node, loading no
    /// code into it; before or after the subcommand. The cookie: --cookie,
    /// else ERLANG_COOKIE, else ~/.erlang.cookie.
    #[arg(long, global = true, value_name = "NAME@HOST", conflicts_with = "node")]
    beam: Option<String>,
    /// The cluster's cookie (else CLUSTERTOP_COOKIE, else a demo's running
    /// at --node, from ~/.clustertop.demos/, else ~/.clustertop.cookie; for
    /// --beam, else ERLANG_COOKIE, else ~/.erlang.cookie).
    #[arg(long, global = true)]
    cookie: Option<String>,
    /// The view's refresh interval, in milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    interval: u64,
    /// Jaeger's UI, for links to a process's traces (default
    /// http://localhost:16686).
    #[arg(long, global = true, env = "CLUSTERTOP_JAEGER_UI", value_name = "URL")]
    jaeger_ui: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a local demo cluster and attach to it; quitting stops it.
    Demo(DemoArgs),
    /// Print one cluster overview (nodes, top processes, warnings). With
    /// --beam, the cluster is sampled for a few seconds first, so that
    /// rates and warnings are known.
    Snapshot {
        /// As JSON (the attach protocol's overview).
        #[arg(long)]
        json: bool,
    },
    /// Print the cluster-wide log tail, one line per record.
    Logs {
        /// Keep printing new records.
        #[arg(short, long)]
        follow: bool,
        /// Only records of this node: its name, its short name (`demo-2`)
        /// or the start of one node's name.
        #[arg(long, value_name = "NAME")]
        only_node: Option<String>,
        /// Only records at or above this level.
        #[arg(long, default_value = "info")]
        level: LevelArg,
        /// Only records whose message contains this text.
        #[arg(long)]
        grep: Option<String>,
        /// How many of the most recent records to print first, across the
        /// cluster (0: only what is logged from now on, with `-f`).
        #[arg(long, default_value_t = 20)]
        tail: u32,
    },
    /// Run one demo node (what `demo` starts).
    #[cfg(feature = "demo")]
    #[command(hide = true)]
    Node(clustertop_examples::demo::DemoNodeArgs),
}

/// `clustertop demo`'s options.
#[derive(Debug, clap::Args)]
struct DemoArgs {
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// The first node's port (0: any free port).
    #[arg(long, default_value_t = 4370)]
    port: u16,
    /// Start the cluster and print where it is, without the view; runs
    /// until SIGINT (Ctrl-C), SIGTERM or SIGHUP, never reading its
    /// standard input, and removes its files when it ends.
    #[arg(long)]
    headless: bool,
    /// Export every node's traces, metrics and logs to this OTLP
    /// collector (gRPC, for example `http://127.0.0.1:4317`); default:
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, else with `--stack` traces only to
    /// its Jaeger, else nothing.
    #[arg(long, value_name = "URL")]
    otlp: Option<String>,
    /// Also start Jaeger and Prometheus wired to the demo (each when
    /// installed; a line says how to get a missing one), print their
    /// URLs, and stop them on quit.
    #[arg(long)]
    stack: bool,
    /// The view's refresh interval, in milliseconds (default: the one
    /// given before `demo`, else 1000).
    #[arg(long, value_name = "MS")]
    interval: Option<u64>,
}

/// A log level on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LevelArg {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl From<LevelArg> for LogLevel {
    fn from(l: LevelArg) -> Self {
        match l {
            LevelArg::Trace => LogLevel::Trace,
            LevelArg::Debug => LogLevel::Debug,
            LevelArg::Info => LogLevel::Info,
            LevelArg::Warn => LogLevel::Warn,
            LevelArg::Error => LogLevel::Error,
        }
    }
}

/// How to attach to `addr`: with `cookie` if given, else the client's own
/// resolution (the environment, the cookie file) unless a demo running at
/// `addr` left its cookie in `~/.clustertop.demos/`.
fn client_config(addr: &str, cookie: Option<&str>) -> ClientConfig {
    let mut c = ClientConfig::new(addr);
    c.cookie = cookie.map(str::to_owned).or_else(|| {
        std::env::var_os(COOKIE_ENV)
            .is_none()
            .then(|| DemoFile::cookie_for(addr))
            .flatten()
    });
    c.client = format!("clustertop {}", env!("CARGO_PKG_VERSION"));
    c
}

/// Runs the command.
///
/// # Errors
/// One line for the user.
pub(crate) async fn run(mut args: Args) -> Result<(), CliError> {
    let interval = Duration::from_millis(args.interval.max(100));
    // The entry, then where to go when it does not answer: the rest of
    // --node's list, and a running demo's other nodes.
    let mut entries: Vec<String> = match &args.node {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    };
    if entries.is_empty() {
        entries.push(DemoFile::entry().unwrap_or_else(|| DEFAULT_NODE.to_owned()));
    }
    for other in DemoFile::others_of(&entries[0]) {
        if !entries.contains(&other) {
            entries.push(other);
        }
    }
    let more: Vec<String> = if args.beam.is_some() {
        Vec::new()
    } else {
        entries[1..].to_vec()
    };
    let entry = || entries[0].clone();
    let target = || match &args.beam {
        Some(node) => {
            let mut attach = ClientConfig::new(node.clone());
            attach.cookie = args.cookie.clone();
            Target::Beam(clustertop_beam::BeamConfig::new(attach))
        }
        None => Target::Agent(client_config(&entry(), args.cookie.as_deref())),
    };
    match args.command.take() {
        None => {
            crate::app::run(
                target(),
                &more,
                interval,
                extras(&args.jaeger_ui, Vec::new()),
            )
            .await
        }
        Some(Command::Demo(demo)) => run_demo(&args, demo, interval).await,
        Some(Command::Snapshot { json }) => snapshot(target(), &more, json, &args.jaeger_ui).await,
        Some(Command::Logs {
            follow,
            only_node,
            level,
            grep,
            tail,
        }) => {
            if args.beam.is_some() {
                return Err(CliError::Usage(clustertop_beam::NO_LOGS.to_owned()));
            }
            let (client, at) = target().connect_first(&more).await?;
            let node = match only_node {
                Some(want) => Some(resolve_node(&client, &want).await?),
                None => None,
            };
            let filter = LogFilter {
                min_level: level.into(),
                node,
                text: grep,
                ..LogFilter::default()
            };
            logs(at, client, filter, tail, follow).await
        }
        #[cfg(feature = "demo")]
        Some(Command::Node(mut node)) => {
            node.cookie = args.cookie.clone();
            clustertop_examples::demo::run_node(node)
                .await
                .map_err(|e| CliError::DemoNode(e.to_string()))
        }
    }
}

/// `clustertop demo`: starts the nodes (and with `--stack` Jaeger and
/// Prometheus), then attaches the view to them, or with `--headless`
/// prints where they are and waits.
async fn run_demo(args: &Args, demo: DemoArgs, interval: Duration) -> Result<(), CliError> {
    let DemoArgs {
        nodes,
        port,
        headless,
        otlp,
        stack,
        interval: demo_interval,
    } = demo;
    if let Some(node) = args.node.as_ref().or(args.beam.as_ref()) {
        return Err(CliError::Usage(format!(
            "{node}: the demo starts its own cluster (choose its port with --port)"
        )));
    }
    let interval = demo_interval.map_or(interval, |ms| Duration::from_millis(ms.max(100)));
    // A given cookie, else a random one: never a guessable default.
    let cookie = match args
        .cookie
        .clone()
        .or_else(|| std::env::var(COOKIE_ENV).ok())
    {
        Some(c) => c,
        None => random_cookie().map_err(DemoError::Cookie)?,
    };
    // The stack first: the nodes need the collector's address.
    let stack = match (stack, TargetsFile::path()) {
        (false, _) => Stack::default(),
        (true, Some(targets)) => Stack::start(&targets),
        (true, None) => {
            let mut s = Stack::default();
            s.lines
                .push("stack: no home directory for the demo's discovery file".into());
            s
        }
    };
    if let Some(url) = &otlp {
        check_collector_url(url)?;
    }
    let otlp = otlp
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
        .map(Collector::All)
        .or_else(|| stack.otlp.clone().map(Collector::Traces));
    let demo = Demo::start(nodes, port, &cookie, otlp.as_ref())?;
    if headless {
        let found = demo.file.as_ref().map_or_else(
            || "not written: pass --cookie".to_owned(),
            |f| format!("in {}", f.shown()),
        );
        // One write, and never a panic: a reader that only wants the
        // first line may close the pipe before the rest.
        let mut text = format!(
            "demo cluster up: {} at {} (cookie {found}; snapshot and logs find it)\n{}\n",
            demo.names.join(", "),
            demo.entry,
            demo.exports()
        );
        for line in &stack.lines {
            text.push_str(line);
            text.push('\n');
        }
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        }
        wait_for_end().await;
        drop(demo);
        drop(stack);
        return Ok(());
    }
    let config = client_config(&demo.entry, Some(&cookie));
    let result = crate::app::run(
        Target::Agent(config),
        &demo.addrs[1..],
        interval,
        extras(&args.jaeger_ui, stack.lines.clone()),
    )
    .await;
    drop(demo);
    drop(stack);
    result
}

/// `--otlp URL` must name a collector: `http://` or `https://`, a host,
/// and a port if any that is a number.
fn check_collector_url(url: &str) -> Result<(), CliError> {
    let bad = || {
        CliError::Usage(format!(
            "--otlp {url:?} is not a collector URL: give http://HOST:PORT (for example http://127.0.0.1:4317)"
        ))
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(bad)?;
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h, Some(p)),
        _ => (authority, None),
    };
    let host_ok = !host.is_empty() && !host.contains(char::is_whitespace);
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok());
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// `clustertop snapshot`: one overview, as text or JSON (with each node's
/// endpoints and series, and the top processes' traces).
async fn snapshot(
    target: Target,
    more: &[String],
    json: bool,
    jaeger_ui: &Option<String>,
) -> Result<(), CliError> {
    let client = target.connect_settled(more).await?;
    let overview = client.overview().await?;
    // Each node's endpoints and series, from an agent that has them.
    let telemetry = match client.ask(GetTelemetry::default()).await {
        Ok(t) => Some(t),
        Err(ClientError::Unsupported { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    if json {
        // The top processes' traces, each with its Jaeger link.
        let mut traced = None;
        if telemetry.is_some() {
            let jaeger = jaeger_ui
                .clone()
                .unwrap_or_else(|| crate::state::DEFAULT_JAEGER_UI.to_owned());
            let mut all = Vec::new();
            for p in &overview.top_processes {
                let Ok(t) = client.ask(GetProcessTraces { pid: p.pid.clone() }).await else {
                    continue;
                };
                if t.traces.is_empty() {
                    continue;
                }
                let traces: Vec<serde_json::Value> = t
                    .traces
                    .iter()
                    .map(|r| {
                        let mut v = serde_json::to_value(r).unwrap_or_default();
                        if let Some(o) = v.as_object_mut() {
                            o.insert(
                                "jaeger_url".into(),
                                crate::state::jaeger_url(&jaeger, &r.trace_id).into(),
                            );
                        }
                        v
                    })
                    .collect();
                all.push(serde_json::json!({ "pid": p.pid, "traces": traces }));
            }
            traced = Some(all);
        }
        let value = crate::snapshot::json(&overview, telemetry.as_ref(), traced)?;
        let text = serde_json::to_string_pretty(&value)?;
        println!("{text}");
    } else {
        print!("{}", crate::snapshot::text(&overview));
        if let Some(t) = &telemetry {
            print!("{}", crate::snapshot::endpoints_text(t));
        }
    }
    client.close();
    Ok(())
}

/// The full name of the node `want` names (see
/// [`pick_node`](crate::state::filter::pick_node)), among the nodes the
/// cluster reports.
async fn resolve_node(client: &Client, want: &str) -> Result<String, CliError> {
    let nodes: Vec<String> = client
        .overview()
        .await?
        .nodes
        .into_iter()
        .map(|n| n.name)
        .collect();
    use crate::state::filter::{NoNode, pick_node};
    match pick_node(&nodes, want) {
        Ok(one) => Ok(one.to_owned()),
        Err(why) => Err(CliError::Usage(format!(
            "--only-node {want}: {} (the nodes: {})",
            match why {
                NoNode::None => "no node of the cluster has that name",
                NoNode::Several => "several nodes start with it",
            },
            nodes.join(", ")
        ))),
    }
}

/// Until SIGINT (Ctrl-C), SIGTERM or SIGHUP. Never reads the terminal, so
/// a demo started in the background (`&`) is not stopped for reading it,
/// and one started with empty standard input (a script) keeps running.
async fn wait_for_end() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// The longest `logs` waits for the nodes' recent records.
const BACKLOG_WAIT: Duration = Duration::from_secs(3);
/// How long `logs -f` holds a record for the other nodes' earlier ones
/// (agents push every 100 ms).
const FOLLOW_HOLD: Duration = Duration::from_millis(300);

/// Prints the last `tail` records cluster-wide, sorted by time, then (with
/// `follow`) the records logged after them as they come.
async fn logs(
    at: Target,
    mut client: Client,
    filter: LogFilter,
    tail: u32,
    follow: bool,
) -> Result<(), CliError> {
    // The nodes up now: each sends its backlog first, in one chunk (empty
    // when it has no matching record).
    let overview = client.overview().await?;
    // Where to follow from if the entry goes away.
    let others = at.others(&overview, client.entry(), at.label());
    let mut waiting: std::collections::HashSet<String> = overview
        .nodes
        .into_iter()
        .filter(|n| n.status == NodeStatus::Up)
        .map(|n| n.name)
        .filter(|n| filter.node.as_ref().is_none_or(|only| only == n))
        .collect();
    let mut stream = client
        .subscribe_logs_with_backlog(filter.clone(), tail, 1024)
        .await?;
    // Each node's backlog is its last `tail` records; what was logged
    // after the subscription began waits for `-f` (or is not printed).
    let mut backlog: Vec<LogRecord> = Vec::new();
    let mut held: Vec<(tokio::time::Instant, LogRecord)> = Vec::new();
    let mut dropped = 0;
    let until = tokio::time::Instant::now() + BACKLOG_WAIT;
    while !waiting.is_empty() {
        let Ok(Some(chunk)) = tokio::time::timeout_at(until, stream.next()).await else {
            break;
        };
        dropped = dropped.max(chunk.dropped_total);
        if chunk.backlog {
            waiting.remove(&chunk.node);
            backlog.extend(chunk.records);
        } else {
            let now = tokio::time::Instant::now();
            held.extend(chunk.records.into_iter().map(|r| (now, r)));
        }
    }
    // The last `tail` cluster-wide, oldest first.
    backlog.sort_by_key(|r| r.at_unix_us);
    let skip = backlog.len().saturating_sub(tail as usize);
    for r in &backlog[skip..] {
        println!("{}", format::log_line(r));
    }
    if !follow {
        return Ok(());
    }
    // Each node pushes its records on its own: records wait FOLLOW_HOLD
    // after they arrive, so that another node's earlier ones can be
    // printed before them.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tick.tick() => {
                let now = tokio::time::Instant::now();
                held.sort_by_key(|(_, r)| r.at_unix_us);
                // Print in time order up to the first record still held.
                let ready = held
                    .iter()
                    .position(|(arrived, _)| now.duration_since(*arrived) < FOLLOW_HOLD)
                    .unwrap_or(held.len());
                for (_, r) in held.drain(..ready) {
                    println!("{}", format::log_line(&r));
                }
            }
            chunk = stream.next() => {
                let Some(chunk) = chunk else {
                    // The entry went away: follow from another node.
                    let lost = client.entry().to_owned();
                    let Some((first, rest)) = others.split_first() else {
                        return Err(CliError::Closed(lost));
                    };
                    let Ok((c, _)) = at.at(first).connect_first(rest).await else {
                        return Err(CliError::Closed(lost));
                    };
                    client = c;
                    stream = client.subscribe_logs_with_backlog(filter.clone(), 0, 1024).await?;
                    dropped = 0;
                    eprintln!(
                        "clustertop: the connection to {lost} closed; following at {} (records logged meanwhile may be missing)",
                        client.entry()
                    );
                    continue;
                };
                let now = tokio::time::Instant::now();
                held.extend(chunk.records.into_iter().map(|r| (now, r)));
                if chunk.dropped_total > dropped {
                    eprintln!("clustertop: {} records dropped (the log tail fell behind)", chunk.dropped_total - dropped);
                    dropped = chunk.dropped_total;
                }
            }
        }
    }
}

/// The view's extras: Jaeger's UI from the flag (or its variable), else
/// the default.
fn extras(jaeger_ui: &Option<String>, notes: Vec<String>) -> crate::app::Extras {
    crate::app::Extras {
        notes,
        jaeger_ui: jaeger_ui
            .clone()
            .unwrap_or_else(|| crate::state::DEFAULT_JAEGER_UI.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_collector_url_is_checked_before_the_demo_starts() {
        for good in [
            "http://127.0.0.1:4317",
            "https://otel.example:4318/v1",
            "http://[::1]:4317",
        ] {
            assert!(super::check_collector_url(good).is_ok(), "{good}");
        }
        for bad in [
            "not a url",
            "127.0.0.1:4317",
            "http://",
            "http://host:port",
            "http://a b:1",
        ] {
            let e = super::check_collector_url(bad).unwrap_err().to_string();
            assert!(e.starts_with("--otlp"), "{bad}: {e}");
        }
    }
}
