//! What the source knows of a BEAM cluster: a connection and the last
//! round's figures per node, the round that refreshes them, and the
//! readers every request goes through.
//!
//! # Locking
//! One mutex over the nodes' state, held only to copy in a round's result
//! or copy out an answer, never across a call to a node.

use crate::config::BeamConfig;
use crate::node::{NodeRound, NodeState};
use crate::pids::{pid_of, serial_of};
use crate::sample::{self, TableMode};
use crate::{BeamError, Conn};
use clustertop_client::source::LogSink;
use clustertop_proto::time::unix_ms;
use clustertop_proto::warnings::Hysteresis;
use clustertop_proto::{
    ClusterOverview, NodeDetail, NodeStatus, NodeSummary, PidRef, ProcessPage, ProcessQuery,
    ProcessRow, ProtoError, SortKey, Warning, WarningKind,
};
use eetf::Pid;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often a node that is down is tried again.
const RETRY_DOWN: Duration = Duration::from_secs(5);

/// Rows in the overview's top list, as our agents send.
const TOP_K: usize = 20;

#[derive(Debug)]
pub(crate) struct Cluster {
    pub(crate) cfg: BeamConfig,
    cookie: String,
    me: String,
    pub(crate) entry: Conn,
    logs: LogSink,
    state: Mutex<State>,
    rounds: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct State {
    nodes: BTreeMap<String, NodeState>,
}

impl Cluster {
    /// Connects to the entry node (the cookie, this side's name and the
    /// timeout from [`BeamConfig::attach`]) and reads its release.
    pub(crate) async fn connect(cfg: BeamConfig) -> Result<Arc<Cluster>, BeamError> {
        let timeout = cfg.attach.timeout;
        let cookie = crate::resolve_cookie(cfg.attach.cookie.as_deref())?;
        let (_, host) = crate::conn::split_name(cfg.node())?;
        let me = cfg.attach.name.clone().unwrap_or_else(|| {
            static NEXT: AtomicU64 = AtomicU64::new(1);
            let n = NEXT.fetch_add(1, Relaxed);
            format!("clustertop_{}_{n}@{host}", std::process::id())
        });
        let entry = Conn::connect(cfg.node(), &me, &cookie, timeout).await?;
        let release = sample::release(&entry, timeout).await?;
        let mut state = State::default();
        let mut first = NodeState::new();
        first.conn = Some(entry.clone());
        first.release = Some(release);
        state.nodes.insert(cfg.node().to_owned(), first);
        let (rounds, _) = watch::channel(0);
        Ok(Arc::new(Cluster {
            cfg,
            cookie,
            me,
            entry,
            logs: LogSink::default(),
            state: Mutex::new(state),
            rounds,
        }))
    }

    /// Takes one round, and counts it. `false` when the entry node is gone:
    /// every node is then marked down, and no more rounds are taken.
    pub(crate) async fn step(self: &Arc<Self>) -> bool {
        let up = self.entry.is_up();
        if up {
            self.round().await;
        } else {
            self.mark_all_down();
        }
        self.rounds.send_modify(|r| *r += 1);
        up
    }

    /// The rounds taken so far, to wait on.
    pub(crate) fn rounds(&self) -> watch::Receiver<u64> {
        self.rounds.subscribe()
    }

    /// The log sink (a BEAM cluster sends no logs: it stays empty).
    pub(crate) fn logs(&self) -> &LogSink {
        &self.logs
    }

    /// `node`'s release, `(OTP, ERTS)`, once read.
    pub(crate) fn release(&self, node: &str) -> Option<(String, String)> {
        self.state
            .lock()
            .nodes
            .get(node)
            .and_then(|n| n.release.clone())
    }

    /// How long the last read of `node`'s process table took.
    pub(crate) fn table_took(&self, node: &str) -> Duration {
        self.state
            .lock()
            .nodes
            .get(node)
            .map_or(Duration::ZERO, |n| n.table_took)
    }

    /// Bytes received and sent over every node's connection so far,
    /// framing included.
    pub(crate) fn traffic(&self) -> (u64, u64) {
        let state = self.state.lock();
        let mut conns: Vec<&Conn> = state
            .nodes
            .values()
            .filter_map(|n| n.conn.as_ref())
            .collect();
        if !conns.iter().any(|c| c.peer() == self.entry.peer()) {
            conns.push(&self.entry);
        }
        conns.iter().fold((0, 0), |(i, o), c| {
            (
                i + c.stats().bytes_in.load(Relaxed),
                o + c.stats().bytes_out.load(Relaxed),
            )
        })
    }

    /// Closes every connection.
    pub(crate) fn close(&self) {
        self.entry.close();
        let state = self.state.lock();
        for n in state.nodes.values() {
            if let Some(c) = &n.conn {
                c.close();
            }
        }
    }

    fn mark_all_down(&self) {
        let mut state = self.state.lock();
        for n in state.nodes.values_mut() {
            n.status = NodeStatus::Down {
                last_seen_unix_ms: n.last_seen_ms,
            };
        }
    }

    async fn round(self: &Arc<Self>) {
        let timeout = self.cfg.attach.timeout;
        if let Ok(found) = sample::nodes(&self.entry, timeout).await {
            let mut state = self.state.lock();
            for name in found {
                state.nodes.entry(name).or_insert_with(NodeState::new);
            }
        }
        // Which node to sample over which connection, and what of each is
        // known already.
        let now = Instant::now();
        type Plan = (String, Option<Conn>, HashSet<u64>, Vec<Pid>, bool, bool);
        let plan: Vec<Plan> = {
            let mut state = self.state.lock();
            state
                .nodes
                .iter_mut()
                .filter_map(|(name, n)| {
                    let live = n.conn.as_ref().filter(|c| c.is_up()).cloned();
                    if live.is_none() && n.next_try > now {
                        return None;
                    }
                    if live.is_none() {
                        n.next_try = now + RETRY_DOWN;
                    }
                    let known = n.rows.iter().map(|r| r.pid.serial).collect();
                    // The rows that ranked last read (those with a
                    // current function): their rates and functions go on.
                    let watch = n
                        .rows
                        .iter()
                        .filter(|r| {
                            r.beam
                                .as_ref()
                                .is_some_and(|b| b.current_function.is_some())
                        })
                        .map(|r| pid_of(&r.pid))
                        .collect();
                    let table = n.table_at.is_none_or(|at| {
                        now >= at + (n.table_took * self.cfg.pace).max(self.cfg.interval / 2)
                    });
                    Some((name.clone(), live, known, watch, table, n.release.is_none()))
                })
                .collect()
        };
        let mut tasks = tokio::task::JoinSet::new();
        for (name, conn, known, watch, table, want_release) in plan {
            let this = self.clone();
            tasks.spawn(async move {
                let r = this
                    .sample_node(&name, conn, &known, &watch, table, want_release)
                    .await;
                (name, r)
            });
        }
        let mut results = Vec::new();
        while let Some(done) = tasks.join_next().await {
            if let Ok(r) = done {
                results.push(r);
            }
        }
        let at_ms = unix_ms();
        let mut state = self.state.lock();
        for (name, result) in results {
            let n = state
                .nodes
                .entry(name.clone())
                .or_insert_with(NodeState::new);
            match result {
                Ok(r) => n.fold(&name, r, at_ms, &self.cfg.warnings),
                Err((conn, e)) => {
                    let slow = matches!(e, BeamError::Timeout { .. })
                        && conn.as_ref().is_some_and(Conn::is_up);
                    if conn.is_some() {
                        n.conn = conn;
                    }
                    n.status = if slow {
                        NodeStatus::Slow
                    } else {
                        NodeStatus::Down {
                            last_seen_unix_ms: n.last_seen_ms,
                        }
                    };
                    if !slow {
                        n.rows.clear();
                        n.prev.clear();
                        n.prev_at = None;
                        n.warnings.clear();
                        n.engine = Hysteresis::default();
                    }
                    tracing::debug!(node = %name, error = %e, "BEAM node not sampled");
                }
            }
        }
    }

    /// Connects when `conn` is `None`, then samples.
    async fn sample_node(
        &self,
        name: &str,
        conn: Option<Conn>,
        known: &HashSet<u64>,
        watch: &[Pid],
        want_table: bool,
        want_release: bool,
    ) -> Result<NodeRound, (Option<Conn>, BeamError)> {
        let timeout = self.cfg.attach.timeout;
        let conn = match conn {
            Some(c) => c,
            None => Conn::connect(name, &self.me, &self.cookie, timeout)
                .await
                .map_err(|e| (None, e))?,
        };
        let fail = |e| (Some(conn.clone()), e);
        let release = if want_release {
            Some(sample::release(&conn, timeout).await.map_err(fail)?)
        } else {
            None
        };
        // The node's figures first: its run queue would count the table's
        // calls.
        let figures = sample::node_figures(&conn, timeout).await.map_err(fail)?;
        if !want_table {
            return Ok(NodeRound {
                conn,
                release,
                figures,
                procs: None,
                table_took: Duration::ZERO,
                whole: false,
                names: Vec::new(),
                at: Instant::now(),
            });
        }
        let table_start = Instant::now();
        let top = match self.cfg.table {
            TableMode::Full => false,
            TableMode::Top => true,
            TableMode::Auto => figures.process_count > sample::FULL_TABLE_MAX,
        };
        let mut whole = !top;
        let procs = if top {
            match sample::processes_top(&conn, sample::TOP_K, watch, timeout).await {
                Ok((_, procs)) => procs,
                // No erl_eval there: the whole table, as below.
                Err(BeamError::NotLoaded { .. }) if self.cfg.table == TableMode::Auto => {
                    whole = true;
                    sample::whole_table(&conn, watch, timeout)
                        .await
                        .map_err(fail)?
                }
                Err(e) => return Err(fail(e)),
            }
        } else {
            sample::whole_table(&conn, watch, timeout)
                .await
                .map_err(fail)?
        };
        let table_took = table_start.elapsed();
        let unnamed: Vec<Pid> = procs
            .iter()
            .filter(|p| sample::spawned_by_proc_lib(p) && !known.contains(&serial_of(&p.pid)))
            .map(|p| p.pid.clone())
            .collect();
        let names = if unnamed.is_empty() {
            Vec::new()
        } else {
            sample::dict_names(&conn, &unnamed, timeout)
                .await
                .map_err(fail)?
        };
        Ok(NodeRound {
            conn,
            release,
            figures,
            procs: Some(procs),
            table_took,
            whole,
            names,
            at: Instant::now(),
        })
    }

    /// The connection to `node`, if up.
    pub(crate) fn conn(&self, node: &str) -> Option<Conn> {
        let state = self.state.lock();
        state
            .nodes
            .get(node)
            .and_then(|n| n.conn.clone())
            .filter(Conn::is_up)
    }

    /// The last round's row of `pid`.
    pub(crate) fn row(&self, pid: &PidRef) -> Option<ProcessRow> {
        let state = self.state.lock();
        state
            .nodes
            .get(&pid.node)?
            .rows
            .iter()
            .find(|r| r.pid.serial == pid.serial)
            .cloned()
    }

    /// Whether the last read of `node`'s process table read every
    /// process (not only the top ones).
    pub(crate) fn table_is_whole(&self, node: &str) -> bool {
        let state = self.state.lock();
        state.nodes.get(node).is_some_and(|n| n.table_whole)
    }

    /// Every node this source knows, and whether it is up.
    pub(crate) fn node_names(&self) -> Vec<(String, bool)> {
        let state = self.state.lock();
        state
            .nodes
            .iter()
            .map(|(name, n)| (name.clone(), n.status == NodeStatus::Up))
            .collect()
    }

    /// The last round's rows of `node`.
    pub(crate) fn rows_of(&self, node: &str) -> Vec<ProcessRow> {
        let state = self.state.lock();
        state
            .nodes
            .get(node)
            .map(|n| n.rows.clone())
            .unwrap_or_default()
    }

    pub(crate) fn summaries(&self) -> Vec<NodeSummary> {
        let state = self.state.lock();
        let mut out: Vec<NodeSummary> = state
            .nodes
            .iter()
            .map(|(name, n)| n.summary(name))
            .collect();
        // The entry node first, as our agents answer.
        out.sort_by_key(|s| s.name != self.cfg.node());
        out
    }

    pub(crate) fn warnings(&self) -> Vec<Warning> {
        let state = self.state.lock();
        let mut out = Vec::new();
        for (name, n) in &state.nodes {
            if let NodeStatus::Down { last_seen_unix_ms } = n.status {
                out.push(Warning {
                    node: name.clone(),
                    pid: None,
                    name: None,
                    behaviour: None,
                    kind: WarningKind::NodeDown,
                    since_unix_ms: last_seen_unix_ms.unwrap_or(0),
                });
            }
            out.extend(n.warnings.iter().cloned());
        }
        out
    }

    pub(crate) fn overview(&self) -> ClusterOverview {
        let mut top = self.query(&ProcessQuery {
            filter: Default::default(),
            sort: SortKey::Default,
            descending: true,
            offset: 0,
            limit: TOP_K as u32,
        });
        top.rows.truncate(TOP_K);
        ClusterOverview {
            entry: self.cfg.node().to_owned(),
            nodes: self.summaries(),
            links: Vec::new(),
            warnings: self.warnings(),
            top_processes: top.rows,
        }
    }

    pub(crate) fn query(&self, q: &ProcessQuery) -> ProcessPage {
        let state = self.state.lock();
        let mut rows: Vec<&ProcessRow> = state
            .nodes
            .values()
            .flat_map(|n| &n.rows)
            .filter(|r| q.filter.admits(r))
            .collect();
        let total = rows.len() as u64;
        rows.sort_by(|a, b| {
            q.sort
                .compare_dir(q.descending, &a.sort_fields(), &b.sort_fields())
        });
        let sampled_at = state
            .nodes
            .values()
            .map(|n| n.sampled_at_ms)
            .max()
            .unwrap_or(0);
        ProcessPage {
            rows: rows
                .into_iter()
                .skip(usize::try_from(q.offset).unwrap_or(usize::MAX))
                .take(q.limit as usize)
                .cloned()
                .collect(),
            total_matching: total,
            sampled_at_unix_ms: sampled_at,
        }
    }

    pub(crate) fn node_detail(&self, node: &str) -> Result<NodeDetail, ProtoError> {
        let state = self.state.lock();
        let n = state
            .nodes
            .get(node)
            .ok_or_else(|| ProtoError::NoSuchNode(node.to_owned()))?;
        let f = n.figures.clone().unwrap_or_default();
        Ok(NodeDetail {
            summary: n.summary(node),
            links: Vec::new(),
            scheduler_threads: f.schedulers,
            runtime_tasks: 0,
            runtime_queue_depth: f.run_queue,
        })
    }
}
