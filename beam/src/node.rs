//! One node of a BEAM cluster as the source keeps it: its connection and
//! status, the last figures and rows, and what turns a round into rates
//! and warnings ([`NodeState::fold`]).

use crate::Conn;
use crate::pids::serial_of;
use crate::sample::{self, DictNames, NameCache, NodeFigures, ProcFigures};
use clustertop_proto::warnings::{Hysteresis, Observation, mailbox_observation};
use clustertop_proto::{
    BeamNode, BeamProcess, NodeStatus, NodeSummary, PidRef, ProcessRow, ProcessStatus, Warning,
    WarningConfig, WarningKind,
};
use eetf::Pid;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// What a warning is about, per node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Subject {
    Mailbox(u64),
    Reductions(u64),
    Memory(u64),
}

#[derive(Debug)]
pub(crate) struct NodeState {
    pub(crate) conn: Option<Conn>,
    pub(crate) addr: Option<String>,
    pub(crate) release: Option<(String, String)>,
    pub(crate) status: NodeStatus,
    pub(crate) last_seen_ms: Option<u64>,
    pub(crate) next_try: Instant,
    pub(crate) sampled_at_ms: u64,
    pub(crate) figures: Option<NodeFigures>,
    pub(crate) figures_at: Option<Instant>,
    pub(crate) reductions_per_s: u64,
    /// When the process table was last read, and how long that took: the
    /// next read waits [`BeamConfig::pace`] times as long.
    pub(crate) table_at: Option<Instant>,
    pub(crate) table_took: Duration,
    /// Whether the last read had every process.
    pub(crate) table_whole: bool,
    pub(crate) prev_at: Option<Instant>,
    pub(crate) prev: HashMap<u64, (u64, u64)>,
    pub(crate) rows: Vec<ProcessRow>,
    pub(crate) names: NameCache,
    pub(crate) engine: Hysteresis<Subject>,
    pub(crate) warnings: Vec<Warning>,
}

impl NodeState {
    pub(crate) fn new() -> Self {
        NodeState {
            conn: None,
            addr: None,
            release: None,
            status: NodeStatus::Down {
                last_seen_unix_ms: None,
            },
            last_seen_ms: None,
            next_try: Instant::now(),
            sampled_at_ms: 0,
            figures: None,
            figures_at: None,
            reductions_per_s: 0,
            table_at: None,
            table_took: Duration::ZERO,
            table_whole: false,
            prev_at: None,
            prev: HashMap::new(),
            rows: Vec::new(),
            names: NameCache::default(),
            engine: Hysteresis::default(),
            warnings: Vec::new(),
        }
    }
}

/// One node's round, gathered without the state's lock.
pub(crate) struct NodeRound {
    pub(crate) conn: Conn,
    pub(crate) release: Option<(String, String)>,
    pub(crate) figures: NodeFigures,
    /// The process table, on the rounds that read it.
    pub(crate) procs: Option<Vec<ProcFigures>>,
    /// How long reading it took.
    pub(crate) table_took: Duration,
    /// Whether it has every process.
    pub(crate) whole: bool,
    pub(crate) names: Vec<(Pid, DictNames)>,
    pub(crate) at: Instant,
}

impl NodeState {
    pub(crate) fn summary(&self, name: &str) -> NodeSummary {
        let up = self.status == NodeStatus::Up;
        let f = self.figures.clone().filter(|_| up).unwrap_or_default();
        let (otp, erts) = self.release.clone().unwrap_or_default();
        NodeSummary {
            name: name.to_owned(),
            addr: self.addr.clone(),
            status: self.status,
            sampled_at_unix_ms: self.sampled_at_ms,
            uptime_ms: f.uptime_ms,
            processes: f.process_count,
            messages_in_total: 0,
            messages_out_total: 0,
            messages_in_per_s: 0,
            messages_out_per_s: 0,
            cpu_permille: 0,
            rss_bytes: f.memory.total,
            cpu_time_us_total: 0,
            cpus: f.schedulers,
            dead_letters_total: 0,
            crashes_total: 0,
            version: format!("OTP {otp}"),
            beam: up.then(|| BeamNode {
                otp_release: otp,
                erts_version: erts,
                process_limit: f.process_limit,
                run_queue: f.run_queue,
                reductions_per_s: self.reductions_per_s,
                memory: f.memory,
                ports: f.port_count,
                port_limit: f.port_limit,
                schedulers: f.schedulers,
                dist_busy: f.dist_busy.clone(),
                rows: self.rows.len() as u64,
                whole_table: self.table_whole,
            }),
        }
    }

    /// Folds a round into the state: rates against the previous round,
    /// rows, warnings.
    pub(crate) fn fold(&mut self, name: &str, r: NodeRound, at_ms: u64, cfg: &WarningConfig) {
        self.addr = Some(r.conn.addr().to_owned());
        self.conn = Some(r.conn);
        if let Some(rel) = r.release {
            self.release = Some(rel);
        }
        self.status = NodeStatus::Up;
        self.last_seen_ms = Some(at_ms);
        self.sampled_at_ms = at_ms;
        let per_s = |now: u64, before: u64, since: Option<Instant>| -> f64 {
            since
                .map(|p| r.at.duration_since(p).as_secs_f64())
                .filter(|e| *e > 0.0)
                .map_or(0.0, |e| (now as f64 - before as f64) / e)
        };
        if let Some(prev) = &self.figures {
            self.reductions_per_s = per_s(
                r.figures.reductions_total,
                prev.reductions_total,
                self.figures_at,
            )
            .max(0.0) as u64;
        }
        self.figures = Some(r.figures);
        self.figures_at = Some(r.at);
        // A round that did not read the table leaves the rows, their
        // rates and warnings as the last read left them.
        let Some(procs) = r.procs else {
            return;
        };
        self.table_at = Some(r.at);
        self.table_took = r.table_took;
        self.table_whole = r.whole;
        let rate = |now: u64, before: u64| per_s(now, before, self.prev_at);
        for (pid, names) in r.names {
            self.names.insert(&pid, names);
        }
        self.names.retain_live(&procs);
        let mut next_prev = HashMap::with_capacity(procs.len());
        let creation_of = |p: &Pid| p.creation;
        let mut rows = Vec::with_capacity(procs.len());
        for p in &procs {
            let serial = serial_of(&p.pid);
            let before = self.prev.get(&serial);
            let (growth, reds) = match before {
                Some(&(q, red)) => (
                    rate(p.queue, q).round() as i64,
                    rate(p.reductions, red).max(0.0) as u64,
                ),
                None => (0, 0),
            };
            next_prev.insert(serial, (p.queue, p.reductions));
            let dict = self.names.get(&p.pid);
            let behaviour = dict
                .and_then(|d| d.label.clone().or_else(|| d.initial_call.clone()))
                .or_else(|| p.initial_call.clone())
                .unwrap_or_default();
            rows.push(ProcessRow {
                pid: PidRef {
                    node: name.to_owned(),
                    serial,
                    creation: creation_of(&p.pid),
                },
                name: p.name.clone(),
                behaviour,
                system: sample::system_process(p),
                status: match p.status.as_str() {
                    "running" | "runnable" => ProcessStatus::Running,
                    "exiting" => ProcessStatus::Exiting,
                    _ => ProcessStatus::Waiting,
                },
                figures: clustertop_proto::ProcessFigures {
                    mailbox_len: p.queue,
                    mailbox_growth_per_s: growth,
                    memory_bytes: p.memory,
                    rates_known: before.is_some(),
                    // The BEAM has no counterpart for the rest (its work
                    // is in `beam`); warnings are counted below.
                    ..Default::default()
                },
                beam: Some(BeamProcess {
                    reductions_per_s: reds,
                    reductions_total: p.reductions,
                    current_function: p.current_function.clone(),
                }),
            });
        }
        self.prev = next_prev;
        self.prev_at = Some(r.at);
        self.warn(name, &mut rows, at_ms, cfg);
        self.rows = rows;
    }

    /// One round of the warnings engine over the rows.
    fn warn(&mut self, node: &str, rows: &mut [ProcessRow], at_ms: u64, cfg: &WarningConfig) {
        let tracked: HashSet<Subject> = self.engine.subjects().into_iter().collect();
        let mut obs = Vec::new();
        for row in rows.iter() {
            let serial = row.pid.serial;
            let beam = row.beam.clone().unwrap_or_default();
            let pid = Some(row.pid.clone());
            if (!row.system && row.figures.mailbox_len >= cfg.mailbox_off)
                || tracked.contains(&Subject::Mailbox(serial))
            {
                obs.push(mailbox_observation(
                    cfg,
                    Subject::Mailbox(serial),
                    pid.clone(),
                    row.figures.mailbox_len,
                    row.figures.mailbox_growth_per_s,
                ));
            }
            if beam.reductions_per_s >= cfg.reductions_hog_per_s / 2
                || tracked.contains(&Subject::Reductions(serial))
            {
                obs.push(Observation {
                    subject: Subject::Reductions(serial),
                    pid: pid.clone(),
                    on: beam.reductions_per_s >= cfg.reductions_hog_per_s,
                    off: beam.reductions_per_s < cfg.reductions_hog_per_s / 2,
                    kind: WarningKind::ReductionsHog {
                        per_s: beam.reductions_per_s,
                    },
                    hold: cfg.hold,
                    clear_hold: cfg.hold,
                });
            }
            let memory_off = cfg.memory_hog_bytes / 4 * 3;
            if row.figures.memory_bytes >= memory_off || tracked.contains(&Subject::Memory(serial))
            {
                obs.push(Observation {
                    subject: Subject::Memory(serial),
                    pid,
                    on: row.figures.memory_bytes >= cfg.memory_hog_bytes,
                    off: row.figures.memory_bytes < memory_off,
                    kind: WarningKind::MemoryHog {
                        bytes: row.figures.memory_bytes,
                    },
                    hold: cfg.hold,
                    clear_hold: cfg.hold,
                });
            }
        }
        self.engine.round(obs, at_ms);
        let mut per_process: HashMap<u64, u32> = HashMap::new();
        for s in self.engine.active_subjects() {
            let (Subject::Mailbox(serial) | Subject::Reductions(serial) | Subject::Memory(serial)) =
                s;
            *per_process.entry(*serial).or_default() += 1;
        }
        let by_serial: HashMap<u64, usize> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.pid.serial, i))
            .collect();
        for (serial, count) in &per_process {
            if let Some(&i) = by_serial.get(serial) {
                rows[i].figures.warnings = *count;
            }
        }
        self.warnings = self.engine.active(node);
        for w in &mut self.warnings {
            let row = w
                .pid
                .as_ref()
                .and_then(|p| by_serial.get(&p.serial))
                .map(|&i| &rows[i]);
            if let Some(row) = row {
                w.name = row.name.clone();
                w.behaviour = Some(row.behaviour.clone());
            }
        }
    }
}
