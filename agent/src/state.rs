//! What an agent knows about its node, and the answers it gives from it.
//!
//! Everything here is read under short locks (never held across an
//! await): the latest sample behind an `Arc`, swapped whole by the
//! sampler; windows, warnings and log subscriptions behind mutexes.

use crate::histograms::Windows;
use crate::logs::{self, LogRing};
use crate::sampler::{self, Row, Sample};
use crate::warnings::{Observation, Subject, Warnings};
use crate::{AgentConfig, AgentMemory, os};
use clustertop_proto::{
    Histogram, LinkStats, NodeDetail, NodeStatus, NodeSummary, PidRef, ProcessDetail, ProcessPage,
    ProcessQuery, ProcessRow, SupervisionTree, TreeNode, Warning, WarningKind,
};
use clustertop_runtime::{Node, ProcessKind, SupervisionNode};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The agent's software version.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A log subscription fed by this node.
#[derive(Debug)]
pub(crate) struct PushSub {
    pub(crate) id: u64,
    pub(crate) filter: clustertop_proto::LogFilter,
    pub(crate) relay: clustertop_runtime::Pid<crate::service::LogBatch>,
    pub(crate) cursor: u64,
    pub(crate) dropped: u64,
}

/// State shared by the agent's processes.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) node: Node,
    pub(crate) config: AgentConfig,
    pub(crate) sample: Mutex<Arc<Sample>>,
    sampled_at: Mutex<Instant>,
    pub(crate) windows: Mutex<Windows>,
    pub(crate) warnings: Mutex<WarningState>,
    pub(crate) ring: Arc<LogRing>,
    pub(crate) pushes: Mutex<Vec<PushSub>>,
    /// Nodes this node has seen, with when they were last seen up (ms).
    pub(crate) known: Mutex<HashMap<String, Option<u64>>>,
    /// Link downs per peer, ms.
    pub(crate) downs: Mutex<HashMap<String, VecDeque<u64>>>,
    pub(crate) service: Mutex<Vec<clustertop_runtime::ProcessId>>,
    /// Clients that opened a session with Hello.
    pub(crate) sessions: Mutex<std::collections::HashSet<clustertop_runtime::ProcessId>>,
    /// Log subscriptions of this node's clients.
    pub(crate) relays: Mutex<HashMap<u64, crate::service::RelaySub>>,
    /// This node's relay process.
    pub(crate) relay: Mutex<Option<clustertop_runtime::Pid<crate::service::LogBatch>>>,
    pub(crate) next_id: std::sync::atomic::AtomicU64,
}

/// Warnings and the history they are computed from.
#[derive(Debug, Default)]
pub(crate) struct WarningState {
    pub(crate) warnings: Warnings,
    pub(crate) active: Vec<Warning>,
    pub(crate) per_process: HashMap<u64, u32>,
    restarts: HashMap<u64, VecDeque<(u64, u64)>>,
    dead_letters: Option<(u64, u64)>,
}

impl Shared {
    pub(crate) fn new(node: Node, config: AgentConfig) -> Arc<Self> {
        let ring = logs::ring_for(node.name(), config.log_capacity_bytes);
        Arc::new(Shared {
            node,
            config,
            sample: Mutex::new(Arc::new(Sample::default())),
            sampled_at: Mutex::new(Instant::now()),
            windows: Mutex::new(Windows::default()),
            warnings: Mutex::new(WarningState::default()),
            ring,
            pushes: Mutex::new(Vec::new()),
            known: Mutex::new(HashMap::new()),
            downs: Mutex::new(HashMap::new()),
            service: Mutex::new(Vec::new()),
            sessions: Mutex::new(std::collections::HashSet::new()),
            relays: Mutex::new(HashMap::new()),
            relay: Mutex::new(None),
            next_id: std::sync::atomic::AtomicU64::new(1),
        })
    }

    pub(crate) fn memory(&self) -> AgentMemory {
        let sample = self.sample.lock().clone();
        let (log_bytes, log_records, log_evicted) = self.ring.usage();
        AgentMemory {
            sample_bytes: sample.rows.capacity() * std::mem::size_of::<Row>(),
            log_bytes,
            log_records,
            log_evicted,
        }
    }

    fn current(&self) -> Arc<Sample> {
        self.sample.lock().clone()
    }

    /// This node's summary figures.
    pub(crate) fn summary(&self) -> NodeSummary {
        let s = self.current();
        let stats = self.node.stats();
        NodeSummary {
            name: self.node.name().to_owned(),
            status: NodeStatus::Up,
            sampled_at_unix_ms: now_ms(),
            uptime_ms: self.node.uptime().as_millis() as u64,
            processes: stats.processes as u64,
            messages_in_total: s.messages_in_total,
            messages_out_total: s.messages_out_total,
            rss_bytes: os::rss_bytes(),
            cpu_time_us_total: os::cpu_time_us(),
            cpus: os::cpus(),
            dead_letters_total: stats.dead_letters,
            crashes_total: stats.crashed,
            version: VERSION.to_owned(),
        }
    }

    /// This node's links.
    pub(crate) fn links(&self) -> Vec<LinkStats> {
        self.node
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

    pub(crate) fn detail(&self) -> NodeDetail {
        let rt = self.node.handle().metrics();
        NodeDetail {
            summary: self.summary(),
            links: self.links(),
            scheduler_threads: rt.num_workers() as u32,
            runtime_tasks: rt.num_alive_tasks() as u64,
            runtime_queue_depth: rt.global_queue_depth() as u64,
        }
    }

    pub(crate) fn warnings(&self) -> Vec<Warning> {
        self.warnings.lock().active.clone()
    }

    pub(crate) fn metrics(&self) -> Vec<Histogram> {
        self.windows.lock().snapshot(self.node.name())
    }

    fn names(&self) -> HashMap<u64, String> {
        self.node
            .registered()
            .into_iter()
            .filter(|(_, id)| id.node_index() == 0)
            .map(|(name, id)| (id.serial(), name))
            .collect()
    }

    /// A page of this node's processes.
    pub(crate) fn processes(&self, query: &ProcessQuery) -> ProcessPage {
        let sample = self.current();
        let names = self.names();
        let per_process = self.warnings.lock().per_process.clone();
        let warnings = |serial: u64| per_process.get(&serial).copied().unwrap_or(0);
        let (rows, total) = sample.query(query, &names, &warnings);
        ProcessPage {
            rows: rows
                .iter()
                .map(|r| self.row(&sample, r, &names, warnings(r.serial)))
                .collect(),
            total_matching: total,
            sampled_at_unix_ms: sample.at_unix_ms,
        }
    }

    /// The top `k` non-system processes by the default ranking.
    pub(crate) fn top(&self, k: u32) -> Vec<ProcessRow> {
        self.processes(&ProcessQuery {
            filter: clustertop_proto::ProcessFilter::default(),
            sort: clustertop_proto::SortKey::Default,
            descending: true,
            offset: 0,
            limit: k,
        })
        .rows
    }

    /// A wire row: live totals from the process table, rates from the
    /// sample.
    fn row(
        &self,
        sample: &Sample,
        r: &Row,
        names: &HashMap<u64, String>,
        warnings: u32,
    ) -> ProcessRow {
        let id = self.node.local_process_id(r.serial);
        let info = self.node.process_info(id);
        let behaviour = sample
            .behaviours
            .get(r.behaviour as usize)
            .copied()
            .unwrap_or("?");
        ProcessRow {
            pid: sampler::pid_ref(&self.node, id),
            name: names.get(&r.serial).cloned(),
            behaviour: behaviour.to_owned(),
            system: r.system(),
            status: info
                .as_ref()
                .map_or(clustertop_proto::ProcessStatus::Exiting, |i| {
                    sampler::status(i.status)
                }),
            mailbox_len: info
                .as_ref()
                .map_or(u64::from(r.mailbox), |i| i.mailbox_len),
            mailbox_growth_per_s: i64::from(r.growth),
            oldest_message_age_us: match &info {
                Some(i) => i.oldest_message_age.map(|a| a.as_micros() as u64),
                None => r.oldest_ms().map(|ms| u64::from(ms) * 1_000),
            },
            received_total: info.as_ref().map_or(0, |i| i.received),
            handled_total: info.as_ref().map_or(0, |i| i.handled),
            sent_total: info.as_ref().map_or(0, |i| i.sent),
            busy_us_total: info.as_ref().map_or(0, |i| i.busy.as_micros() as u64),
            handled_per_s: u64::from(r.rate),
            busy_permille: r.busy_permille(),
            warnings,
        }
    }

    /// Everything about one of this node's processes.
    pub(crate) fn process(&self, pid: &PidRef) -> Option<ProcessDetail> {
        if pid.node != self.node.name() || pid.creation != self.node.creation() {
            return None;
        }
        let id = self.node.local_process_id(pid.serial);
        let d = self.node.process_detail(id, 10)?;
        let sample = self.current();
        let names = self.names();
        let warnings = self
            .warnings
            .lock()
            .per_process
            .get(&pid.serial)
            .copied()
            .unwrap_or(0);
        let row = match sample.row(pid.serial) {
            Some(r) => self.row(&sample, r, &names, warnings),
            None => ProcessRow {
                pid: pid.clone(),
                name: d.info.name.clone(),
                behaviour: d.info.behaviour.to_owned(),
                system: d.info.system,
                status: sampler::status(d.info.status),
                mailbox_len: d.info.mailbox_len,
                mailbox_growth_per_s: 0,
                oldest_message_age_us: d.info.oldest_message_age.map(|a| a.as_micros() as u64),
                received_total: d.info.received,
                handled_total: d.info.handled,
                sent_total: d.info.sent,
                busy_us_total: d.info.busy.as_micros() as u64,
                handled_per_s: 0,
                busy_permille: 0,
                warnings,
            },
        };
        let refs = |ids: &[clustertop_runtime::ProcessId]| {
            ids.iter()
                .map(|id| sampler::pid_ref(&self.node, *id))
                .collect::<Vec<_>>()
        };
        let mut supervisor_path = Vec::new();
        let mut up = d.info.supervisor;
        while let Some(sup) = up {
            supervisor_path.push(sampler::pid_ref(&self.node, sup));
            up = self.node.process_info(sup).and_then(|i| i.supervisor);
            if supervisor_path.len() > 64 {
                break;
            }
        }
        let started = self.node.started_at() + d.info.spawned_at;
        Some(ProcessDetail {
            row,
            links: refs(&d.links),
            monitored_by: refs(&d.monitored_by),
            monitoring: refs(&d.monitoring),
            supervisor_path,
            mailbox_head: d.mailbox_head,
            top_senders: self
                .node
                .mailbox_senders(id, 1_000)
                .map_or_else(Vec::new, |s| {
                    let total: usize = s.iter().map(|(_, n)| n).sum();
                    s.into_iter()
                        .take(5)
                        .map(|(from, n)| {
                            (
                                sampler::pid_ref(&self.node, from),
                                (n * 100 / total.max(1)) as u8,
                            )
                        })
                        .collect()
                }),
            handling_time: self.windows.lock().handling(d.info.behaviour),
            spawned_at_unix_ms: started
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            trap_exit: d.info.trap_exit,
        })
    }

    /// This node's supervision trees.
    pub(crate) fn tree(&self) -> SupervisionTree {
        fn convert(node: &Node, n: SupervisionNode) -> TreeNode {
            TreeNode {
                pid: sampler::pid_ref(node, n.id),
                name: n.name,
                behaviour: n.behaviour.to_owned(),
                supervisor: n.kind == ProcessKind::Supervisor,
                children: n.children.into_iter().map(|c| convert(node, c)).collect(),
            }
        }
        SupervisionTree {
            node: self.node.name().to_owned(),
            roots: self
                .node
                .supervision_tree()
                .into_iter()
                .map(|n| convert(&self.node, n))
                .collect(),
        }
    }
}

/// Takes one sample: the process table, the latency windows and the
/// warnings. Returns how long the process-table pass took.
pub(crate) async fn sample(shared: &Arc<Shared>) -> Duration {
    let prev = shared.current();
    let elapsed = {
        let mut at = shared.sampled_at.lock();
        let e = at.elapsed();
        *at = Instant::now();
        e
    };
    let node = shared.node.clone();
    let long = shared.config.warnings.long_handler;
    let started = Instant::now();
    let next = if prev.rows.len() > 10_000 {
        // A large table is read off the scheduler threads.
        tokio::task::spawn_blocking(move || sampler::take(&node, &prev, elapsed, long, now_ms()))
            .await
            .unwrap_or_default()
    } else {
        sampler::take(&node, &prev, elapsed, long, now_ms())
    };
    let took = started.elapsed();
    let next = Arc::new(next);
    *shared.sample.lock() = next.clone();
    shared.windows.lock().sample(&shared.node);
    evaluate(shared, &next, elapsed);
    took
}

/// One round of warnings from a fresh sample.
fn evaluate(shared: &Shared, sample: &Sample, elapsed: Duration) {
    let cfg = &shared.config.warnings;
    let node = &shared.node;
    let now = now_ms();
    let mut ws = shared.warnings.lock();
    let mut obs = Vec::new();
    let tracked: Vec<Subject> = ws.warnings.subjects();
    let pid = |serial| Some(sampler::pid_ref(node, node.local_process_id(serial)));
    // Mailboxes: every row at or above the clear threshold, and every one
    // tracked, so a warning clears after its hold time.
    let mut mailbox = |r: &Row| {
        obs.push(Observation {
            subject: Subject::Mailbox(r.serial),
            pid: pid(r.serial),
            on: u64::from(r.mailbox) >= cfg.mailbox_on && r.growth > 0,
            off: u64::from(r.mailbox) < cfg.mailbox_off || r.growth < 0,
            kind: WarningKind::MailboxGrowing {
                len: u64::from(r.mailbox),
                growth_per_s: i64::from(r.growth),
            },
            hold: cfg.hold,
        });
    };
    for r in sample.rows.iter().filter(|r| !r.system()) {
        if u64::from(r.mailbox) >= cfg.mailbox_off {
            mailbox(r);
        }
    }
    for s in &tracked {
        if let Subject::Mailbox(serial) = s {
            if let Some(r) = sample.row(*serial) {
                if u64::from(r.mailbox) < cfg.mailbox_off {
                    mailbox(r);
                }
            }
        }
    }
    // Handlers running past the limit: raised at once (the limit is the
    // hold), cleared when the handler returns.
    for h in &sample.long_handlers {
        obs.push(Observation {
            subject: Subject::Handler(h.serial),
            pid: pid(h.serial),
            on: true,
            off: false,
            kind: WarningKind::LongHandler {
                running_ms: h.running.as_millis() as u64,
            },
            hold: Duration::ZERO,
        });
    }
    for s in &tracked {
        if let Subject::Handler(serial) = s {
            if !sample.long_handlers.iter().any(|h| h.serial == *serial)
                && sample.row(*serial).is_some()
            {
                obs.push(Observation {
                    subject: s.clone(),
                    pid: pid(*serial),
                    on: false,
                    off: true,
                    kind: WarningKind::LongHandler { running_ms: 0 },
                    hold: Duration::ZERO,
                });
            }
        }
    }
    // Restart storms: restarts within each supervisor's period, from the
    // history of its restart counter.
    let supervisors = node.supervisors();
    let ws = &mut *ws;
    ws.restarts
        .retain(|serial, _| supervisors.iter().any(|s| s.id.serial() == *serial));
    for sup in &supervisors {
        let period = sup.period.as_millis() as u64;
        let h = ws.restarts.entry(sup.id.serial()).or_default();
        h.push_back((now, sup.restarts_total()));
        while h.len() > 1 && h.get(1).is_some_and(|(t, _)| now - t >= period) {
            h.pop_front();
        }
        let recent = sup.restarts_total() - h.front().map_or(0, |(_, n)| *n);
        let max = u64::from(sup.max_restarts.max(1));
        obs.push(Observation {
            subject: Subject::Supervisor(sup.id.serial()),
            pid: pid(sup.id.serial()),
            on: recent > 0 && recent * 3 >= max * 2,
            off: recent * 3 <= max,
            kind: WarningKind::RestartStorm {
                restarts: recent as u32,
                max_restarts: sup.max_restarts,
            },
            hold: Duration::ZERO,
        });
    }
    // Dead letters per second.
    let dead = node.stats().dead_letters;
    if let Some((_, before)) = ws.dead_letters {
        let per_s = ((dead - before) as f64 / elapsed.as_secs_f64().max(1e-3)) as u64;
        obs.push(Observation {
            subject: Subject::DeadLetters,
            pid: None,
            on: per_s >= cfg.dead_letters_on_per_s,
            off: per_s < cfg.dead_letters_off_per_s,
            kind: WarningKind::DeadLetters { per_s },
            hold: cfg.hold,
        });
    }
    ws.dead_letters = Some((now, dead));
    // Flapping links: downs per peer within the window.
    let window = cfg.flap_window.as_millis() as u64;
    let mut downs = shared.downs.lock();
    downs.retain(|_, d| {
        while d.front().is_some_and(|t| now - t > window) {
            d.pop_front();
        }
        !d.is_empty()
    });
    let flapping: Vec<(String, u32)> = downs
        .iter()
        .map(|(peer, d)| (peer.clone(), d.len() as u32))
        .collect();
    drop(downs);
    for s in &tracked {
        if let Subject::Link(peer) = s {
            if !flapping.iter().any(|(p, _)| p == peer) {
                obs.push(link_observation(peer.clone(), 0, cfg.flaps));
            }
        }
    }
    for (peer, flaps) in flapping {
        obs.push(link_observation(peer, flaps, cfg.flaps));
    }
    ws.warnings.round(obs, now);
    ws.active = ws.warnings.active(node.name());
    ws.per_process = ws.warnings.per_process();
}

fn link_observation(peer: String, flaps: u32, limit: u32) -> Observation {
    Observation {
        subject: Subject::Link(peer.clone()),
        pid: None,
        on: flaps >= limit,
        off: flaps < limit.div_ceil(2),
        kind: WarningKind::FlappingLink { peer, flaps },
        hold: Duration::ZERO,
    }
}
