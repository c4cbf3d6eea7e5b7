//! The agent's processes and the attach service (the agent-to-agent
//! service is in `peer`, log subscriptions in `subscriptions`).
//!
//! Every node runs four system processes:
//! - `clustertop_agent` (the attach service): takes [`AgentCall`]s from
//!   clients (hidden nodes) and answers each from a task of its own, so a
//!   slow fan-out never holds up other requests;
//! - `clustertop_agent_peer`: a GenServer other nodes' agents call for
//!   this node's part of a cluster-wide answer;
//! - the sampler, which also follows node up/down events;
//! - the log pusher, which sends each subscription's new records every
//!   100 ms, and the relay, which forwards records from every node to the
//!   subscribed clients of this (entry) node.
//!
//! A cluster-wide request asks every node's peer service at once, each
//! with the configured per-node timeout: a node that does not answer in
//! time is marked slow, one that is not connected down, and the answer is
//! sent with what arrived.

mod peer;
mod subscriptions;

pub use peer::{PeerArgs, PeerCall, PeerReply, PeerServer};
pub use subscriptions::LogBatch;
pub(crate) use subscriptions::RelaySub;

use crate::AgentError;
use crate::state::{self, Shared, now_ms};
use clustertop_proto::{
    AGENT_NAME, AgentCall, AgentReply, ClusterOverview, HelloReply, LogFilter, MetricsSnapshot,
    NodeStatus, NodeSummary, ProcessPage, ProcessQuery, ProcessRow, ProtoError, Request, Response,
    SortKey, Warning, WarningKind,
};
use clustertop_runtime::gen_server;
use clustertop_runtime::{ExitReason, Node, Pid, ProcessId, Received, ServerOptions, SpawnOptions};
use peer::{Miss, PEER_NAME, ask, ask_all};
use std::sync::Arc;
use std::time::Duration;
use subscriptions::{push_logs, relay, subscribe, unsubscribe};

const RELAY_NAME: &str = "clustertop_agent_relay";
/// How often the pusher sends new log records.
const PUSH_EVERY: Duration = Duration::from_millis(100);

/// Nodes seen before that are not connected now, with when last seen.
fn down_nodes(shared: &Shared) -> Vec<(String, Option<u64>)> {
    let up = shared.node.nodes();
    let mut down: Vec<_> = shared
        .known
        .lock()
        .iter()
        .filter(|(n, _)| !up.contains(n))
        .map(|(n, t)| (n.clone(), *t))
        .collect();
    down.sort();
    down
}

fn node_down_warning(node: &str, since: Option<u64>) -> Warning {
    Warning {
        node: node.to_owned(),
        pid: None,
        kind: WarningKind::NodeDown,
        since_unix_ms: since.unwrap_or(0),
    }
}

fn empty_summary(name: String, status: NodeStatus) -> NodeSummary {
    NodeSummary {
        name,
        status,
        sampled_at_unix_ms: now_ms(),
        uptime_ms: 0,
        processes: 0,
        messages_in_total: 0,
        messages_out_total: 0,
        rss_bytes: 0,
        cpu_time_us_total: 0,
        cpus: 0,
        dead_letters_total: 0,
        crashes_total: 0,
        version: String::new(),
    }
}

/// The order of rows from several nodes, as [`sampler::order`] orders a
/// node's own.
fn compare_rows(a: &ProcessRow, b: &ProcessRow, key: SortKey) -> std::cmp::Ordering {
    let by = match key {
        SortKey::Default => a
            .warnings
            .cmp(&b.warnings)
            .then(a.mailbox_growth_per_s.cmp(&b.mailbox_growth_per_s))
            .then(a.mailbox_len.cmp(&b.mailbox_len)),
        SortKey::MailboxLen => a.mailbox_len.cmp(&b.mailbox_len),
        SortKey::MailboxGrowth => a.mailbox_growth_per_s.cmp(&b.mailbox_growth_per_s),
        SortKey::OldestMessage => a.oldest_message_age_us.cmp(&b.oldest_message_age_us),
        SortKey::MessageRate => a.handled_per_s.cmp(&b.handled_per_s),
        SortKey::Busy => a.busy_permille.cmp(&b.busy_permille),
        SortKey::Pid => std::cmp::Ordering::Equal,
    };
    by.then_with(|| {
        (b.pid.node.as_str(), b.pid.serial)
            .cmp(&(a.pid.node.as_str(), a.pid.serial))
            .reverse()
    })
}

fn sort_rows(rows: &mut [ProcessRow], key: SortKey, descending: bool) {
    rows.sort_by(|a, b| {
        let o = compare_rows(a, b, key);
        if descending { o.reverse() } else { o }
    });
}

async fn overview(shared: &Shared) -> ClusterOverview {
    let answers = ask_all(
        shared,
        &PeerCall::Summary {
            top_k: shared.config.top_k,
        },
    )
    .await;
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    let mut top = Vec::new();
    for (name, answer) in answers {
        match answer {
            Ok(PeerReply::Summary {
                summary,
                warnings: w,
                top: t,
            }) => {
                if name != shared.node.name() {
                    shared.known.lock().insert(name, Some(now_ms()));
                }
                nodes.push(summary);
                warnings.extend(w);
                top.extend(t);
            }
            Ok(_) | Err(Miss::Slow) => nodes.push(empty_summary(name, NodeStatus::Slow)),
            Err(Miss::Down) => {
                let last = shared.known.lock().get(&name).copied().flatten();
                warnings.push(node_down_warning(&name, last));
                nodes.push(empty_summary(
                    name,
                    NodeStatus::Down {
                        last_seen_unix_ms: last,
                    },
                ));
            }
        }
    }
    for (name, last) in down_nodes(shared) {
        warnings.push(node_down_warning(&name, last));
        nodes.push(empty_summary(
            name,
            NodeStatus::Down {
                last_seen_unix_ms: last,
            },
        ));
    }
    sort_rows(&mut top, SortKey::Default, true);
    top.truncate(shared.config.top_k as usize);
    ClusterOverview {
        entry: shared.node.name().to_owned(),
        nodes,
        links: shared.links(),
        warnings,
        top_processes: top,
    }
}

fn miss_error(node: &str, miss: Miss) -> Response {
    Response::Error(match miss {
        Miss::Slow => ProtoError::NodeTimeout(node.to_owned()),
        Miss::Down => ProtoError::NoSuchNode(node.to_owned()),
    })
}

fn unexpected() -> Response {
    Response::Error(ProtoError::Other(
        "an agent answered with the wrong reply".into(),
    ))
}

async fn process_list(shared: &Shared, q: ProcessQuery) -> Response {
    if let Some(node) = q.filter.node.clone() {
        return match ask(shared, &node, PeerCall::Processes(q)).await {
            Ok(PeerReply::Processes(page)) => Response::Processes(page),
            Ok(_) => unexpected(),
            Err(m) => miss_error(&node, m),
        };
    }
    let wide = ProcessQuery {
        offset: 0,
        limit: q
            .offset
            .saturating_add(u64::from(q.limit))
            .min(u64::from(u32::MAX)) as u32,
        ..q.clone()
    };
    let mut rows = Vec::new();
    let mut total = 0;
    let mut sampled = u64::MAX;
    for (_, answer) in ask_all(shared, &PeerCall::Processes(wide)).await {
        if let Ok(PeerReply::Processes(page)) = answer {
            rows.extend(page.rows);
            total += page.total_matching;
            sampled = sampled.min(page.sampled_at_unix_ms);
        }
    }
    sort_rows(&mut rows, q.sort, q.descending);
    let rows = rows
        .into_iter()
        .skip(q.offset as usize)
        .take(q.limit as usize)
        .collect();
    Response::Processes(ProcessPage {
        rows,
        total_matching: total,
        sampled_at_unix_ms: if sampled == u64::MAX {
            now_ms()
        } else {
            sampled
        },
    })
}

/// Answers one client request.
async fn answer(shared: &Shared, client: &Pid<AgentReply>, request: Request) -> Response {
    if let Request::Hello(hello) = &request {
        return match clustertop_proto::negotiate(hello.version) {
            Ok(version) => {
                tracing::info!(client = %hello.client, from = %client.id(), "client attached");
                shared.sessions.lock().insert(client.id());
                Response::Hello(HelloReply {
                    version,
                    node: shared.node.name().to_owned(),
                    agent_version: state::VERSION.to_owned(),
                })
            }
            Err(e) => Response::Error(e),
        };
    }
    if !shared.sessions.lock().contains(&client.id()) {
        return Response::Error(ProtoError::NoHello);
    }
    match request {
        Request::Hello(_) => unreachable!("answered above"),
        Request::ClusterOverview => Response::Overview(overview(shared).await),
        Request::NodeDetail { node } => match ask(shared, &node, PeerCall::Detail).await {
            Ok(PeerReply::Detail(d)) => Response::Node(d),
            Ok(_) => unexpected(),
            Err(m) => miss_error(&node, m),
        },
        Request::ProcessList(q) => process_list(shared, q).await,
        Request::ProcessInfo { pid } => {
            let node = pid.node.clone();
            match ask(shared, &node, PeerCall::Process(pid)).await {
                Ok(PeerReply::Process(Some(d))) => Response::Process(*d),
                Ok(PeerReply::Process(None)) => Response::Error(ProtoError::NoSuchProcess),
                Ok(_) => unexpected(),
                Err(m) => miss_error(&node, m),
            }
        }
        Request::SupervisionTree { node } => match ask(shared, &node, PeerCall::Tree).await {
            Ok(PeerReply::Tree(t)) => Response::Tree(t),
            Ok(_) => unexpected(),
            Err(m) => miss_error(&node, m),
        },
        Request::Metrics { node } => {
            let mut histograms = Vec::new();
            match node {
                // One node asked for: its failure is the answer.
                Some(n) => match ask(shared, &n, PeerCall::Metrics).await {
                    Ok(PeerReply::Metrics(h)) => histograms = h,
                    Ok(_) => return unexpected(),
                    Err(m) => return miss_error(&n, m),
                },
                // The cluster: nodes that do not answer are left out.
                None => {
                    for (_, a) in ask_all(shared, &PeerCall::Metrics).await {
                        if let Ok(PeerReply::Metrics(h)) = a {
                            histograms.extend(h);
                        }
                    }
                }
            }
            Response::Metrics(MetricsSnapshot {
                sampled_at_unix_ms: now_ms(),
                histograms,
            })
        }
        Request::Warnings => {
            let mut all = Vec::new();
            for (_, a) in ask_all(shared, &PeerCall::Warnings).await {
                if let Ok(PeerReply::Warnings(w)) = a {
                    all.extend(w);
                }
            }
            for (name, last) in down_nodes(shared) {
                all.push(node_down_warning(&name, last));
            }
            Response::Warnings(all)
        }
        Request::SubscribeLogs { filter, backlog } => {
            subscribe(shared, client.clone(), filter, backlog).await
        }
        Request::Unsubscribe { subscription } => {
            unsubscribe(shared, subscription).await;
            Response::Unsubscribed { subscription }
        }
    }
}

/// Node up and down: who is known, link flaps, and subscriptions and
/// sessions that die with a node. The bookkeeping is done here, in event
/// order; the calls to other agents run as tasks of their own, so a slow
/// node never holds up the sampler.
fn on_node_event(shared: &Arc<Shared>, event: clustertop_runtime::dist::NodeEvent) {
    use clustertop_runtime::dist::NodeEvent;
    match event {
        NodeEvent::Up { node, hidden } => {
            if hidden {
                return;
            }
            shared.known.lock().insert(node.clone(), Some(now_ms()));
            // Subscriptions made here extend to a node that joins.
            let subs: Vec<(u64, LogFilter)> = shared
                .relays
                .lock()
                .iter()
                .map(|(id, s)| (*id, s.filter.clone()))
                .collect();
            let Some(relay) = shared.relay.lock().clone() else {
                return;
            };
            if subs.is_empty() {
                return;
            }
            let s = shared.clone();
            shared.node.handle().spawn(async move {
                for (id, filter) in subs {
                    let call = PeerCall::Subscribe {
                        id,
                        filter,
                        relay: relay.clone(),
                        backlog: 0,
                    };
                    let _ = ask(&s, &node, call).await;
                }
            });
        }
        NodeEvent::Down { node, .. } => {
            let now = now_ms();
            if let Some(seen) = shared.known.lock().get_mut(&node) {
                *seen = Some(now);
            }
            shared
                .downs
                .lock()
                .entry(node.clone())
                .or_default()
                .push_back(now);
            shared.pushes.lock().retain(|p| p.relay.node_name() != node);
            let gone: Vec<u64> = shared
                .relays
                .lock()
                .iter()
                .filter(|(_, s)| s.client.node_name() == node)
                .map(|(id, _)| *id)
                .collect();
            if !gone.is_empty() {
                let s = shared.clone();
                shared.node.handle().spawn(async move {
                    for id in gone {
                        unsubscribe(&s, id).await;
                    }
                });
            }
            let n = &shared.node;
            shared
                .sessions
                .lock()
                .retain(|id| n.node_of(*id).is_none_or(|name| name != node));
        }
    }
}

fn system(behaviour: &'static str) -> SpawnOptions {
    SpawnOptions::new().system(true).behaviour(behaviour)
}

/// Starts the agent's processes.
pub(crate) async fn start(shared: &Arc<Shared>) -> Result<(), AgentError> {
    let node = shared.node.clone();
    let peer = gen_server::start::<PeerServer>(
        &node,
        PeerArgs(shared.clone()),
        ServerOptions::new().name(PEER_NAME).system(true),
    )
    .await
    .map_err(|e| AgentError::Start(PEER_NAME, e.to_string()))?;
    let mut pids = vec![peer.id()];

    let s = shared.clone();
    let attach = node.spawn_opts(
        system("clustertop_agent.attach"),
        move |mut ctx: clustertop_runtime::Context<AgentCall<Pid<AgentReply>>>| async move {
            ctx.enable_remote();
            loop {
                if let Received::Msg(call) = ctx.recv().await {
                    let s = s.clone();
                    s.node.handle().clone().spawn(async move {
                        let response = answer(&s, &call.reply_to, call.request).await;
                        call.reply_to.send(AgentReply {
                            id: call.id,
                            response,
                        });
                    });
                }
            }
        },
    );
    pids.push(attach.id());
    register(&node, AGENT_NAME, attach.id(), &pids)?;

    let s = shared.clone();
    let relay_pid = node.spawn_opts(
        system("clustertop_agent.relay"),
        move |mut ctx: clustertop_runtime::Context<LogBatch>| async move {
            ctx.enable_remote();
            loop {
                if let Received::Msg(batch) = ctx.recv().await {
                    relay(&s, batch);
                }
            }
        },
    );
    relay_pid.enable_remote();
    pids.push(relay_pid.id());
    register(&node, RELAY_NAME, relay_pid.id(), &pids)?;
    *shared.relay.lock() = Some(relay_pid);

    let s = shared.clone();
    let pusher = node.spawn_opts(
        system("clustertop_agent.logs"),
        move |mut ctx: clustertop_runtime::Context<()>| async move {
            loop {
                let _ = ctx.recv_timeout(PUSH_EVERY).await;
                push_logs(&s);
            }
        },
    );
    pids.push(pusher.id());

    let s = shared.clone();
    let sampler = node.spawn_opts(
        system("clustertop_agent.sampler"),
        move |mut ctx: clustertop_runtime::Context<()>| async move {
            ctx.monitor_nodes(true);
            state::sample(&s).await;
            let mut next = tokio::time::Instant::now() + s.config.interval;
            loop {
                let wait = next.saturating_duration_since(tokio::time::Instant::now());
                match ctx.recv_timeout(wait).await {
                    Some(Received::Node(event)) => on_node_event(&s, event),
                    Some(_) => {}
                    None => {
                        state::sample(&s).await;
                        next += s.config.interval;
                        let now = tokio::time::Instant::now();
                        if next < now {
                            next = now + s.config.interval;
                        }
                    }
                }
            }
        },
    );
    pids.push(sampler.id());
    for n in node.nodes() {
        shared.known.lock().insert(n, Some(now_ms()));
    }
    *shared.service.lock() = pids;
    Ok(())
}

fn register(
    node: &Node,
    name: &'static str,
    id: ProcessId,
    pids: &[ProcessId],
) -> Result<(), AgentError> {
    node.register(name, id).map_err(|e| {
        for p in pids {
            node.exit(*p, ExitReason::Shutdown);
        }
        AgentError::Name(name, e)
    })
}

/// Stops the agent's processes and forgets its log ring.
pub(crate) fn stop(shared: &Shared) {
    for pid in shared.service.lock().drain(..) {
        shared.node.exit(pid, ExitReason::Shutdown);
    }
    shared.pushes.lock().clear();
    shared.relays.lock().clear();
    crate::logs::remove_ring(shared.node.name());
}
