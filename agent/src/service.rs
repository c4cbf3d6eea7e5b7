//! The attach service: what a client (a hidden node) asks the entry node's
//! agent, and how that agent gathers a cluster-wide answer.
//!
//! Each request is a typed call of the attach protocol
//! ([`clustertop_proto::Call`]): it is answered by a function returning
//! the reply type it names. Cluster-wide requests ask every node's agent
//! at once through `peer`, each within the per-node timeout: a node that
//! does not answer in time is marked slow, one that is not connected down,
//! and the answer is sent with what arrived.

use crate::local;
use crate::peer::{
    self, Feed, Metrics, Miss, Process, ProcessRegistries, Registries, Summary, Tree, Unfeed,
    Warnings,
};
use crate::state::{State, VERSION};
use clustertop_proto::time::unix_ms;
use clustertop_proto::{
    AgentReply, Call, ClusterOverview, GetMetrics, GetNode, GetOverview, GetProcess,
    GetProcessRegistry, GetProcessTraces, GetRegistry, GetTelemetry, GetTree, GetWarnings, Hello,
    HelloReply, MailboxPeek, MetricsSnapshot, NodeDetail, NodeStatus, PeekMailbox, ProcessDetail,
    ProcessPage, ProcessQuery, ProcessRegistry, ProcessRow, ProtoError, Registry, Request,
    Response, SortKey, SubscribeLogs, SupervisionTree, Telemetry, Unsubscribe, Warning,
    WarningKind,
};
use clustertop_runtime::Pid;
use std::sync::Arc;

/// The wire form of a typed answer.
fn respond<C: Call>(result: Result<C::Reply, ProtoError>) -> Response {
    match result {
        Ok(reply) => C::respond(reply),
        Err(e) => Response::Error(e),
    }
}

/// Answers one client request.
pub(crate) async fn answer(
    state: &Arc<State>,
    client: &Pid<AgentReply>,
    request: Request,
) -> Response {
    match request {
        Request::Hello(h) => respond::<Hello>(hello(state, client, &h)),
        // Everything else needs a session.
        _ if !state.sessions.is_open(client.id()) => Response::Error(ProtoError::NoHello),
        Request::ClusterOverview(_) => respond::<GetOverview>(Ok(overview(state).await)),
        Request::NodeDetail(r) => respond::<GetNode>(node_detail(state, r).await),
        Request::ProcessList(q) => respond::<ProcessQuery>(process_list(state, q).await),
        Request::ProcessInfo(r) => respond::<GetProcess>(process(state, r).await),
        Request::SupervisionTree(r) => respond::<GetTree>(tree(state, r).await),
        Request::Metrics(r) => respond::<GetMetrics>(metrics(state, r).await),
        Request::Warnings(_) => respond::<GetWarnings>(Ok(warnings(state).await)),
        Request::SubscribeLogs(r) => respond::<SubscribeLogs>(subscribe(state, client, r).await),
        Request::Unsubscribe(r) => {
            unsubscribe(state, r.subscription).await;
            respond::<Unsubscribe>(Ok(r.subscription))
        }
        Request::Registry(_) => respond::<GetRegistry>(Ok(registry(state).await)),
        Request::ProcessRegistry(r) => {
            respond::<GetProcessRegistry>(process_registry(state, r).await)
        }
        Request::Telemetry(r) => respond::<GetTelemetry>(telemetry(state, r).await),
        Request::PeekMailbox(r) => {
            let limit = r.limit.min(PeekMailbox::MAX) as usize;
            let detail = process(state, GetProcess { pid: r.pid }).await;
            respond::<PeekMailbox>(detail.map(|d| MailboxPeek {
                queued: d.row.figures.mailbox_len,
                messages: d.mailbox_head.into_iter().take(limit).collect(),
                note: None,
            }))
        }
        Request::ProcessTraces(r) => {
            let node = r.pid.node.clone();
            respond::<GetProcessTraces>(
                peer::ask(state, &node, peer::ProcessTraces(r.pid))
                    .await
                    .map_err(|m| miss_error(&node, m))
                    .and_then(|t| t.ok_or(ProtoError::NoSuchProcess)),
            )
        }
    }
}

async fn telemetry(state: &State, r: GetTelemetry) -> Result<Telemetry, ProtoError> {
    let mut out = Telemetry::default();
    match r.node {
        Some(node) => out.nodes.push(
            peer::ask(state, &node, peer::Telemetry)
                .await
                .map_err(|m| miss_error(&node, m))?,
        ),
        None => {
            for (name, answer) in peer::ask_all(state, &peer::Telemetry).await {
                match answer {
                    Ok(part) => out.nodes.push(part),
                    Err(_) => out.missing.push(name),
                }
            }
        }
    }
    out.nodes.sort_by(|a, b| a.node.cmp(&b.node));
    out.missing.sort();
    Ok(out)
}

async fn registry(state: &State) -> Registry {
    let mut out = Registry::default();
    for (name, answer) in peer::ask_all(state, &Registries).await {
        match answer {
            Ok(part) => out.nodes.push(part),
            Err(_) => out.missing.push(name),
        }
    }
    out.nodes.sort_by(|a, b| a.node.cmp(&b.node));
    out.missing.sort();
    out
}

async fn process_registry(
    state: &State,
    r: GetProcessRegistry,
) -> Result<ProcessRegistry, ProtoError> {
    let node = r.pid.node.clone();
    peer::ask(state, &node, ProcessRegistries(r.pid))
        .await
        .map_err(|m| miss_error(&node, m))?
        .ok_or(ProtoError::NoSuchProcess)
}

fn hello(state: &State, client: &Pid<AgentReply>, hello: &Hello) -> Result<HelloReply, ProtoError> {
    let version = clustertop_proto::negotiate(hello.version, state.config.protocol_max)?;
    // Every attach (each `clustertop snapshot` of a polling script) would
    // be a line at info: debug.
    tracing::debug!(client = %hello.client, from = %client.id(), "client attached");
    state.sessions.open(client.id());
    Ok(HelloReply {
        version,
        node: state.node.name().to_owned(),
        agent_version: VERSION.to_owned(),
    })
}

fn miss_error(node: &str, miss: Miss) -> ProtoError {
    match miss {
        Miss::Slow => ProtoError::NodeTimeout(node.to_owned()),
        Miss::Down => ProtoError::NoSuchNode(node.to_owned()),
        Miss::Bad => ProtoError::Other(format!(
            "the agent of {node} answered with a reply of another kind"
        )),
    }
}

fn node_down_warning(node: &str, since: Option<u64>) -> Warning {
    Warning {
        node: node.to_owned(),
        pid: None,
        name: None,
        behaviour: None,
        kind: WarningKind::NodeDown,
        since_unix_ms: since.unwrap_or(0),
    }
}

/// Known nodes that are not connected now, with when each was last seen.
fn down_nodes(state: &State) -> Vec<(String, Option<u64>)> {
    state.membership.down(&state.node.nodes())
}

/// Orders rows from several nodes as each node orders its own.
fn sort_rows(rows: &mut [ProcessRow], key: SortKey, descending: bool) {
    rows.sort_by(|a, b| key.compare_dir(descending, &a.sort_fields(), &b.sort_fields()));
}

async fn overview(state: &State) -> ClusterOverview {
    let top_k = state.config.top_k;
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    let mut top = Vec::new();
    for (name, answer) in peer::ask_all(state, &Summary { top_k }).await {
        match answer {
            Ok(report) => {
                if name != state.node.name() {
                    state.membership.seen_up(&name, unix_ms());
                }
                nodes.push(report.summary);
                warnings.extend(report.warnings);
                top.extend(report.top);
            }
            Err(Miss::Slow | Miss::Bad) => {
                nodes.push(local::empty_summary(name, NodeStatus::Slow));
            }
            Err(Miss::Down) => {
                let last = state.membership.last_seen(&name);
                warnings.push(node_down_warning(&name, last));
                nodes.push(local::empty_summary(
                    name,
                    NodeStatus::Down {
                        last_seen_unix_ms: last,
                    },
                ));
            }
        }
    }
    for (name, last) in down_nodes(state) {
        warnings.push(node_down_warning(&name, last));
        nodes.push(local::empty_summary(
            name,
            NodeStatus::Down {
                last_seen_unix_ms: last,
            },
        ));
    }
    sort_rows(&mut top, SortKey::Default, true);
    top.truncate(top_k as usize);
    ClusterOverview {
        entry: state.node.name().to_owned(),
        nodes,
        links: local::links(state),
        warnings,
        top_processes: top,
    }
}

async fn node_detail(state: &State, r: GetNode) -> Result<NodeDetail, ProtoError> {
    peer::ask(state, &r.node, peer::Detail)
        .await
        .map_err(|m| miss_error(&r.node, m))
}

async fn process_list(state: &State, q: ProcessQuery) -> Result<ProcessPage, ProtoError> {
    if let Some(node) = q.filter.node.clone() {
        return peer::ask(state, &node, q)
            .await
            .map_err(|m| miss_error(&node, m));
    }
    // Every node's first offset + limit rows, merged: the page is the
    // cluster's rows offset..offset + limit in the query's order.
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
    for (_, answer) in peer::ask_all(state, &wide).await {
        if let Ok(page) = answer {
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
    Ok(ProcessPage {
        rows,
        total_matching: total,
        sampled_at_unix_ms: if sampled == u64::MAX {
            unix_ms()
        } else {
            sampled
        },
    })
}

async fn process(state: &State, r: GetProcess) -> Result<ProcessDetail, ProtoError> {
    let node = r.pid.node.clone();
    peer::ask(state, &node, Process(r.pid))
        .await
        .map_err(|m| miss_error(&node, m))?
}

async fn tree(state: &State, r: GetTree) -> Result<SupervisionTree, ProtoError> {
    peer::ask(state, &r.node, Tree)
        .await
        .map_err(|m| miss_error(&r.node, m))
}

async fn metrics(state: &State, r: GetMetrics) -> Result<MetricsSnapshot, ProtoError> {
    let histograms = match r.node {
        // One node asked for: its failure is the answer.
        Some(n) => peer::ask(state, &n, Metrics)
            .await
            .map_err(|m| miss_error(&n, m))?,
        // The cluster: nodes that do not answer are left out.
        None => peer::ask_all(state, &Metrics)
            .await
            .into_iter()
            .filter_map(|(_, a)| a.ok())
            .flatten()
            .collect(),
    };
    Ok(MetricsSnapshot {
        sampled_at_unix_ms: unix_ms(),
        histograms,
    })
}

async fn warnings(state: &State) -> Vec<Warning> {
    let mut all: Vec<Warning> = peer::ask_all(state, &Warnings)
        .await
        .into_iter()
        .filter_map(|(_, a)| a.ok())
        .flatten()
        .collect();
    for (name, last) in down_nodes(state) {
        all.push(node_down_warning(&name, last));
    }
    all
}

async fn subscribe(
    state: &State,
    client: &Pid<AgentReply>,
    r: SubscribeLogs,
) -> Result<u64, ProtoError> {
    let relay = state
        .logs
        .relay()
        .ok_or_else(|| ProtoError::Other("the log relay is not running".into()))?;
    let id = state.logs.open(client.clone(), r.filter.clone());
    let feed = Feed {
        id,
        filter: r.filter,
        relay,
        backlog: r.backlog,
    };
    for (node, answer) in peer::ask_all(state, &feed).await {
        if answer.is_err() {
            tracing::warn!(peer = %node, "could not subscribe to the logs of a node");
        }
    }
    Ok(id)
}

/// Ends a client's subscription on every node.
pub(crate) async fn unsubscribe(state: &State, id: u64) {
    if !state.logs.close(id) {
        return;
    }
    let unfeed = Unfeed {
        id,
        relay_node: state.node.name().to_owned(),
    };
    peer::ask_all(state, &unfeed).await;
}

/// Extends the client subscriptions made here to `node`, which joined.
pub(crate) async fn extend_subscriptions(state: &State, node: &str) {
    let Some(relay) = state.logs.relay() else {
        return;
    };
    for (id, filter) in state.logs.client_filters() {
        let feed = Feed {
            id,
            filter,
            relay: relay.clone(),
            backlog: 0,
        };
        let _ = peer::ask(state, node, feed).await;
    }
}
