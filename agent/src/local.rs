//! What a node's agent answers about its own node: its summary and detail,
//! a page of its processes, one process, its supervision trees, its
//! histograms. The entry node asks every node's agent for these (through
//! `peer`) and merges them; a node answers for itself without a call.

use crate::os;
use crate::sampler::{self, Row, RowContext};
use crate::state::{State, VERSION};
use clustertop_proto::time::{unix_ms, unix_ms_of};
use clustertop_proto::{
    Activity, ExitSummary, Histogram, LinkStats, NodeDetail, NodeStatus, NodeSummary, PidRef,
    ProcessDetail, ProcessFilter, ProcessPage, ProcessQuery, ProcessRow, ProcessTotals, ProtoError,
    RestartIntensity, SortKey, SupervisionTree, TreeNode,
};
use clustertop_runtime::supervisor::Strategy;
use clustertop_runtime::{ExitReason, Node, ProcessKind, SupervisionNode};
use std::collections::HashMap;

/// This node's summary figures.
pub(crate) fn summary(state: &State) -> NodeSummary {
    let node = &state.node;
    let sample = state.sampler.latest();
    let figures = &sample.figures;
    NodeSummary {
        name: node.name().to_owned(),
        addr: node.dist().listen_addr().map(|a| a.to_string()),
        status: NodeStatus::Up,
        // Every figure below was read at the last sample: a viewer divides
        // the change of a total by the change of this time.
        sampled_at_unix_ms: sample.at_unix_ms,
        uptime_ms: figures.uptime_ms,
        processes: figures.processes,
        messages_in_total: sample.messages_in_total,
        messages_out_total: sample.messages_out_total,
        messages_in_per_s: sample.messages_in_per_s,
        messages_out_per_s: sample.messages_out_per_s,
        cpu_permille: sample.cpu_permille,
        rss_bytes: figures.rss_bytes,
        cpu_time_us_total: sample.cpu_time_us,
        cpus: os::cpus(),
        dead_letters_total: figures.dead_letters_total,
        crashes_total: figures.crashes_total,
        version: VERSION.to_owned(),
        beam: None,
    }
}

/// A node that did not answer: its name and status, no figures.
pub(crate) fn empty_summary(name: String, status: NodeStatus) -> NodeSummary {
    NodeSummary {
        name,
        addr: None,
        status,
        sampled_at_unix_ms: unix_ms(),
        uptime_ms: 0,
        processes: 0,
        messages_in_total: 0,
        messages_out_total: 0,
        messages_in_per_s: 0,
        messages_out_per_s: 0,
        cpu_permille: 0,
        rss_bytes: 0,
        cpu_time_us_total: 0,
        cpus: 0,
        dead_letters_total: 0,
        crashes_total: 0,
        version: String::new(),
        beam: None,
    }
}

/// This node's links.
pub(crate) fn links(state: &State) -> Vec<LinkStats> {
    state
        .node
        .dist()
        .peer_stats()
        .into_iter()
        .map(|p| LinkStats {
            peer: p.node,
            bytes_in_total: p.bytes_in,
            bytes_out_total: p.bytes_out,
            frames_in_total: p.frames_in,
            frames_out_total: p.frames_out,
            queued_bytes: p.queued_bytes,
            heartbeat_rtt_us: p.heartbeat_rtt.map(|d| d.as_micros() as u64),
            up_for_ms: p.up_for.as_millis() as u64,
        })
        .collect()
}

/// This node in depth.
pub(crate) fn detail(state: &State) -> NodeDetail {
    let rt = state.node.handle().metrics();
    NodeDetail {
        summary: summary(state),
        links: links(state),
        scheduler_threads: rt.num_workers() as u32,
        runtime_tasks: rt.num_alive_tasks() as u64,
        runtime_queue_depth: (rt.global_queue_depth()
            + state.node.introspect().runnable_processes()) as u64,
    }
}

/// This node's latency histograms.
pub(crate) fn metrics(state: &State) -> Vec<Histogram> {
    state.windows.lock().snapshot(state.node.name())
}

fn names(node: &Node) -> HashMap<u64, String> {
    // Global names first, so that a local name, where there is one, wins.
    let mut names: HashMap<u64, String> = node
        .global()
        .holders()
        .into_iter()
        .filter(|h| h.node == node.name() && h.creation == node.creation())
        .map(|h| (h.serial, format!("{{global, {}}}", h.name)))
        .collect();
    names.extend(
        node.introspect()
            .registered()
            .into_iter()
            .filter(|(_, id)| id.node_index() == 0)
            .map(|(name, id)| (id.serial(), name)),
    );
    names
}

/// A page of this node's processes.
pub(crate) fn processes(state: &State, query: &ProcessQuery) -> ProcessPage {
    let sample = state.sampler.latest();
    let names = names(&state.node);
    let warnings = state.warnings_per_process();
    let ctx = RowContext {
        node: state.node.name(),
        creation: state.node.creation(),
        names: &names,
        warnings: &warnings,
    };
    let (rows, total_matching) = sample.query(query, &ctx);
    ProcessPage {
        rows,
        total_matching,
        sampled_at_unix_ms: sample.at_unix_ms,
    }
}

/// The top `k` non-system processes by the default ranking.
pub(crate) fn top(state: &State, k: u32) -> Vec<ProcessRow> {
    let query = ProcessQuery {
        filter: ProcessFilter::default(),
        sort: SortKey::Default,
        descending: true,
        offset: 0,
        limit: k,
    };
    processes(state, &query).rows
}

/// Everything about one of this node's processes.
///
/// # Errors
/// [`ProtoError::Exited`] for a process that exited recently (the node
/// remembers why and when), [`ProtoError::NoSuchProcess`] otherwise.
pub(crate) fn process(state: &State, pid: &PidRef) -> Result<ProcessDetail, ProtoError> {
    let node = &state.node;
    if pid.node != node.name() || pid.creation != node.creation() {
        return Err(ProtoError::NoSuchProcess);
    }
    let id = node.introspect().local_process_id(pid.serial);
    let Some(d) = node.introspect().process_detail(id, 10) else {
        return Err(match node.introspect().exit_of(id) {
            Some(exit) => ProtoError::Exited {
                reason: exit.reason.to_string(),
                crashed: !matches!(
                    exit.reason,
                    clustertop_runtime::ExitReason::Normal
                        | clustertop_runtime::ExitReason::Shutdown
                ),
                at_unix_ms: unix_ms_of(node.introspect().started_at() + exit.at),
            },
            None => ProtoError::NoSuchProcess,
        });
    };
    let sample = state.sampler.latest();
    let names = names(node);
    let warnings = state.warnings_per_process();
    let ctx = RowContext {
        node: node.name(),
        creation: node.creation(),
        names: &names,
        warnings: &warnings,
    };
    let row = match sample.row(pid.serial) {
        Some(r) => sample.process_row(r, &ctx),
        // Spawned since the last sample: its figures now, no rates yet.
        None => sampler::process_row(&Row::unsampled(&d.info), d.info.behaviour, &ctx),
    };
    let refs = |ids: &[clustertop_runtime::ProcessId]| {
        ids.iter()
            .map(|id| sampler::pid_ref(node, *id))
            .collect::<Vec<_>>()
    };
    let mut supervisor_path = Vec::new();
    let mut up = d.info.supervisor;
    while let Some(sup) = up {
        supervisor_path.push(sampler::pid_ref(node, sup));
        up = node
            .introspect()
            .process_info(sup)
            .and_then(|i| i.supervisor);
        if supervisor_path.len() > 64 {
            break;
        }
    }
    let started = node.introspect().started_at() + d.info.spawned_at;
    let top_senders: Vec<(PidRef, u8)> =
        node.introspect()
            .mailbox_senders(id, 1_000)
            .map_or_else(Vec::new, |s| {
                let total: usize = s.iter().map(|(_, n)| n).sum();
                s.into_iter()
                    .take(5)
                    .map(|(from, n)| (sampler::pid_ref(node, from), (n * 100 / total.max(1)) as u8))
                    .collect()
            });
    let (links, monitored_by, monitoring) =
        (refs(&d.links), refs(&d.monitored_by), refs(&d.monitoring));
    // The names this node knows of the processes the detail names.
    let mut named: Vec<(PidRef, String)> = Vec::new();
    for p in supervisor_path
        .iter()
        .chain(&links)
        .chain(&monitored_by)
        .chain(&monitoring)
        .chain(top_senders.iter().map(|(p, _)| p))
    {
        let here = p.node == node.name() && p.creation == node.creation();
        if let Some(name) = names.get(&p.serial).filter(|_| here)
            && !named.iter().any(|(q, _)| q == p)
        {
            named.push((p.clone(), name.clone()));
        }
    }
    Ok(ProcessDetail {
        row,
        totals: ProcessTotals {
            received_total: d.info.received,
            handled_total: d.info.handled,
            sent_total: d.info.sent,
            cpu_us_total: d.info.busy.as_micros() as u64,
            util_us_total: d.info.utilised.as_micros() as u64,
            polls_total: d.info.polls,
        },
        links,
        monitored_by,
        monitoring,
        supervisor_path,
        // Pids inside the messages in the form that names their node.
        mailbox_head: d
            .mailbox_head
            .into_iter()
            .map(|m| {
                crate::logs::full_pids(&m, node.name(), |i| node.dist().node_at(i)).into_owned()
            })
            .collect(),
        top_senders,
        handling_time: state.windows.lock().handling(d.info.behaviour),
        spawned_at_unix_ms: unix_ms_of(started),
        trap_exit: d.info.trap_exit,
        activity: Some(activity(&d.info)),
        names: named,
        beam: None,
    })
}

/// What `info`'s process is doing, from its status and handler clock
/// read together.
fn activity(info: &clustertop_runtime::ProcessInfo) -> Activity {
    let handling = info.handling_for.map(|d| d.as_micros() as u64);
    match (info.status, handling) {
        (clustertop_runtime::ProcessStatus::Exiting, _) => Activity::Exiting,
        (clustertop_runtime::ProcessStatus::Running, handling_for_us) => {
            Activity::Running { handling_for_us }
        }
        (_, handling_for_us) if info.in_handler || handling_for_us.is_some() => {
            Activity::Awaiting { handling_for_us }
        }
        _ => Activity::Idle {
            for_us: info.idle_for.as_micros() as u64,
        },
    }
}

/// This node's supervision trees.
/// Processes listed outside the supervision trees, at most.
const UNSUPERVISED_SHOWN: usize = 1_000;

pub(crate) fn tree(state: &State) -> SupervisionTree {
    fn convert(node: &Node, names: &HashMap<u64, String>, n: SupervisionNode) -> TreeNode {
        let started = node.introspect().started_at();
        TreeNode {
            pid: sampler::pid_ref(node, n.id),
            name: n.name.or_else(|| names.get(&n.id.serial()).cloned()),
            behaviour: n.behaviour.to_owned(),
            supervisor: n.kind == ProcessKind::Supervisor,
            strategy: n.strategy.map(|s| {
                match s {
                    Strategy::OneForOne => "one_for_one",
                    Strategy::OneForAll => "one_for_all",
                    Strategy::RestForOne => "rest_for_one",
                }
                .to_owned()
            }),
            restarts: n.restarts.map(|(recent, max, period)| RestartIntensity {
                recent,
                max,
                period_ms: period.as_millis() as u64,
                total: n.restarts_total.unwrap_or(0),
            }),
            child_id: n.child.as_ref().map(|c| c.id.clone()),
            last_exit: n.child.and_then(|c| c.last_exit).map(|e| ExitSummary {
                crashed: !matches!(e.reason, ExitReason::Normal | ExitReason::Shutdown),
                reason: e.reason.to_string(),
                at_unix_ms: unix_ms_of(started + e.at),
            }),
            children: n
                .children
                .into_iter()
                .map(|c| convert(node, names, c))
                .collect(),
        }
    }
    let node = &state.node;
    let names = names(node);
    let introspect = node.introspect();
    let (unsupervised, total) = introspect.unsupervised(UNSUPERVISED_SHOWN);
    SupervisionTree {
        node: node.name().to_owned(),
        roots: introspect
            .supervision_tree()
            .into_iter()
            .map(|n| convert(node, &names, n))
            .collect(),
        unsupervised: unsupervised
            .into_iter()
            .map(|n| convert(node, &names, n))
            .collect(),
        unsupervised_total: total as u64,
    }
}
