//! [`BeamSource`]: the attach protocol answered for a BEAM cluster.
//!
//! A sampler task takes one round every [`BeamConfig::interval`]: it asks
//! the entry node for `nodes()`, connects to every node it has not (a
//! node that is down is tried again at most every 5 s), samples each node
//! at once (see [`crate::sample`] for the calls), turns counters into
//! rates against the previous round, and runs the warnings engine over
//! the figures. A node's process table is read again only once ten times
//! what its last read took has passed (a 100,000-process node read whole
//! in 0.45 s is read every 4.5 s), so attaching keeps a node's process
//! reading under a tenth of its time; the node's own figures are read
//! every round. Requests read the last round; the detail of one process
//! and the supervision tree are read when asked.
//!
//! # Status of a node
//! `up` when its last sample answered; `slow` when the connection is up
//! but the sample did not answer within the timeout; `down` when the
//! connection is gone (a node that was killed is `down` at the next
//! round: its socket closes) or cannot be made.
//!
//! # Cost on this side
//! The last round's rows of every node, and per process the figures of
//! the round before (for rates) and its names: a few hundred bytes per
//! process of the cluster.

use crate::node::{NodeRound, NodeState};
use crate::sample::{self, TableMode};
use crate::{BeamError, Conn, detail};
use clustertop_client::source::{Answer, LogSink, Source};
use clustertop_client::{ClientConfig, ClientError};
use clustertop_proto::warnings::Hysteresis;
use clustertop_proto::{
    ClusterOverview, MetricsSnapshot, NodeDetail, NodeStatus, NodeSummary, PidRef, ProcessPage,
    ProcessQuery, ProcessRow, ProtoError, Request, Response, SortKey, Warning, WarningConfig,
    WarningKind,
};
use eetf::Pid;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// How often a node that is down is tried again.
const RETRY_DOWN: Duration = Duration::from_secs(5);

/// A node's process table is read again only after this many times what
/// its last read took (and at most once a round): reading it keeps a
/// node busy under a tenth of the time, however large the node. The node
/// figures are read every round.
pub const PACE: u32 = 10;

/// Rows in the overview's top list, as our agents send.
const TOP_K: usize = 20;

/// Where and how to attach to a BEAM cluster.
#[derive(Debug, Clone)]
pub struct BeamConfig {
    /// The entry node, `name@host`.
    pub node: String,
    /// The cookie; `None` finds it as `erl` does ([`crate::resolve_cookie`]).
    pub cookie: Option<String>,
    /// This side's (hidden) node name; by default
    /// `clustertop_<os pid>_<n>@<the entry node's host>`, so it is short or
    /// fully qualified as the cluster's names are.
    pub name: Option<String>,
    /// Limit for connecting and for each call (default 5 s).
    pub timeout: Duration,
    /// Time between two samples of every node (default 1 s).
    pub interval: Duration,
    /// The warnings' thresholds.
    pub warnings: WarningConfig,
    /// How each node's process table is read (default: whole up to
    /// 20,000 processes, the top ones above).
    pub table: TableMode,
    /// A node's table is read again after this many times what its last
    /// read took ([`PACE`], 10, by default; 0 reads it every round).
    pub pace: u32,
}

impl BeamConfig {
    /// Attach to `node` with the default cookie.
    pub fn new(node: impl Into<String>) -> Self {
        BeamConfig {
            node: node.into(),
            cookie: None,
            name: None,
            timeout: Duration::from_secs(5),
            interval: Duration::from_secs(1),
            warnings: WarningConfig::default(),
            table: TableMode::Auto,
            pace: PACE,
        }
    }

    /// Uses `cookie`.
    pub fn cookie(mut self, cookie: impl Into<String>) -> Self {
        self.cookie = Some(cookie.into());
        self
    }

    /// Sets the connect and call timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the sampling interval.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }
}

/// The attach protocol answered for a BEAM cluster. Open a
/// [`clustertop_client::Client`] over it with [`BeamSource::client`].
#[derive(Debug)]
pub struct BeamSource {
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
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

/// The serial a BEAM pid takes in [`PidRef`]: its number, with the
/// (nearly always 0) serial above it, so `<0.123.0>` shows as 123.
pub(crate) fn serial_of(pid: &Pid) -> u64 {
    u64::from(pid.id) | u64::from(pid.serial) << 32
}

/// The BEAM pid of a [`PidRef`] on its node.
pub(crate) fn pid_of(p: &PidRef) -> Pid {
    Pid::new(
        p.node.as_str(),
        p.serial as u32,
        (p.serial >> 32) as u32,
        p.creation,
    )
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl BeamSource {
    /// Connects to the entry node and starts sampling. Must be called
    /// inside a tokio runtime.
    ///
    /// # Errors
    /// [`BeamError::NoCookie`], and the connection's errors
    /// ([`Conn::connect`]).
    pub async fn connect(cfg: BeamConfig) -> Result<BeamSource, BeamError> {
        let cookie = crate::resolve_cookie(cfg.cookie.as_deref())?;
        let (_, host) = crate::conn::split_name(&cfg.node)?;
        let me = cfg.name.clone().unwrap_or_else(|| {
            static NEXT: AtomicU64 = AtomicU64::new(1);
            let n = NEXT.fetch_add(1, Relaxed);
            format!("clustertop_{}_{n}@{host}", std::process::id())
        });
        let entry = Conn::connect(&cfg.node, &me, &cookie, cfg.timeout).await?;
        let release = sample::release(&entry, cfg.timeout).await?;
        let mut state = State::default();
        let mut first = NodeState::new();
        first.conn = Some(entry.clone());
        first.release = Some(release);
        state.nodes.insert(cfg.node.clone(), first);
        let (rounds, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            cfg,
            cookie,
            me,
            entry,
            logs: LogSink::default(),
            state: Mutex::new(state),
            rounds,
        });
        tokio::spawn(sampler(Arc::downgrade(&shared)));
        Ok(BeamSource { shared })
    }

    /// Opens a client over this source.
    ///
    /// # Errors
    /// As [`clustertop_client::Client::open`].
    pub async fn client(self) -> Result<clustertop_client::Client, ClientError> {
        let version = clustertop_proto::VERSION;
        let name = ClientConfig::new("").client;
        clustertop_client::Client::open(Arc::new(self), &name, version).await
    }

    /// Waits until `n` rounds have been sampled since the connect: rates
    /// need two, and a warning holds for [`WarningConfig::hold`] before it
    /// is raised, so a one-shot reader (`clustertop snapshot`) waits for
    /// enough rounds to cover the hold.
    pub async fn wait_rounds(&self, n: u64) {
        let mut rx = self.shared.rounds.subscribe();
        let _ = rx.wait_for(|r| *r >= n).await;
    }

    /// Rounds sampled since the connect.
    pub fn rounds(&self) -> u64 {
        *self.shared.rounds.borrow()
    }

    /// How long the last read of the entry node's process table took, in
    /// milliseconds (the calls, the transfer and this side's decoding).
    pub fn last_table_read_ms(&self) -> f64 {
        let state = self.shared.state.lock();
        state
            .nodes
            .get(&self.shared.cfg.node)
            .map_or(0.0, |n| n.table_took.as_secs_f64() * 1000.0)
    }

    /// Bytes received and sent over every node's connection so far,
    /// framing included (what attaching costs the network).
    pub fn traffic(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let state = self.shared.state.lock();
        let mut conns: Vec<&Conn> = state
            .nodes
            .values()
            .filter_map(|n| n.conn.as_ref())
            .collect();
        if !conns.iter().any(|c| c.peer() == self.shared.entry.peer()) {
            conns.push(&self.shared.entry);
        }
        conns.iter().fold((0, 0), |(i, o), c| {
            (
                i + c.stats().bytes_in.load(Relaxed),
                o + c.stats().bytes_out.load(Relaxed),
            )
        })
    }

    /// Rounds a one-shot reader waits for so that rates are known and a
    /// warning can have held: the first round has no rates, the second
    /// starts the hold, which must then have passed (one more round for
    /// the rounds' jitter).
    pub fn settle_rounds(&self) -> u64 {
        let cfg = &self.shared.cfg;
        let interval = cfg.interval.as_millis().max(1);
        3 + (cfg.warnings.hold.as_millis().div_ceil(interval)) as u64
    }
}

async fn sampler(shared: std::sync::Weak<Shared>) {
    let interval = match shared.upgrade() {
        Some(s) => s.cfg.interval,
        None => return,
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if !shared.entry.is_up() {
            shared.mark_all_down();
            shared.rounds.send_modify(|r| *r += 1);
            return;
        }
        shared.round().await;
        shared.rounds.send_modify(|r| *r += 1);
    }
}

impl Shared {
    fn mark_all_down(&self) {
        let mut state = self.state.lock();
        for n in state.nodes.values_mut() {
            n.status = NodeStatus::Down {
                last_seen_unix_ms: n.last_seen_ms,
            };
        }
    }

    async fn round(self: &Arc<Self>) {
        let timeout = self.cfg.timeout;
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
        let at_ms = now_ms();
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
        let timeout = self.cfg.timeout;
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

    fn summaries(&self) -> Vec<NodeSummary> {
        let state = self.state.lock();
        let mut out: Vec<NodeSummary> = state
            .nodes
            .iter()
            .map(|(name, n)| n.summary(name))
            .collect();
        // The entry node first, as our agents answer.
        out.sort_by_key(|s| s.name != self.cfg.node);
        out
    }

    fn warnings(&self) -> Vec<Warning> {
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

    fn overview(&self) -> ClusterOverview {
        let mut top = self.query(&ProcessQuery {
            filter: Default::default(),
            sort: SortKey::Default,
            descending: true,
            offset: 0,
            limit: TOP_K as u32,
        });
        top.rows.truncate(TOP_K);
        ClusterOverview {
            entry: self.cfg.node.clone(),
            nodes: self.summaries(),
            links: Vec::new(),
            warnings: self.warnings(),
            top_processes: top.rows,
        }
    }

    fn query(&self, q: &ProcessQuery) -> ProcessPage {
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

    fn node_detail(&self, node: &str) -> Result<NodeDetail, ProtoError> {
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

    async fn answer(self: &Arc<Self>, request: Request) -> Result<Response, ProtoError> {
        // Requests other than Hello read the first round: wait for it.
        if !matches!(request, Request::Hello(_)) {
            let mut rx = self.rounds.subscribe();
            let waited = tokio::time::timeout(self.cfg.timeout * 2, rx.wait_for(|r| *r >= 1));
            if waited.await.is_err() {
                return Err(ProtoError::NodeTimeout(self.cfg.node.clone()));
            }
        }
        Ok(match request {
            Request::Hello(h) => {
                let version = clustertop_proto::negotiate(h.version, clustertop_proto::VERSION)?;
                let release = {
                    let state = self.state.lock();
                    state
                        .nodes
                        .get(&self.cfg.node)
                        .and_then(|n| n.release.clone())
                };
                Response::Hello(clustertop_proto::HelloReply {
                    version,
                    node: self.cfg.node.clone(),
                    agent_version: match release {
                        Some((otp, erts)) => format!(
                            "BEAM (OTP {otp}, {erts}) read by clustertop-beam {}",
                            env!("CARGO_PKG_VERSION")
                        ),
                        None => format!(
                            "BEAM, read by clustertop-beam {}",
                            env!("CARGO_PKG_VERSION")
                        ),
                    },
                })
            }
            Request::ClusterOverview(_) => Response::Overview(self.overview()),
            Request::NodeDetail(g) => Response::Node(self.node_detail(&g.node)?),
            Request::ProcessList(q) => Response::Processes(self.query(&q)),
            Request::ProcessInfo(g) => Response::Process(detail::process(self, &g.pid).await?),
            Request::SupervisionTree(g) => Response::Tree(detail::tree(self, &g.node).await?),
            Request::Metrics(_) => Response::Metrics(MetricsSnapshot {
                sampled_at_unix_ms: now_ms(),
                histograms: Vec::new(),
            }),
            Request::Warnings(_) => Response::Warnings(self.warnings()),
            Request::SubscribeLogs(_) | Request::Unsubscribe(_) => {
                return Err(ProtoError::Other(NO_LOGS.into()));
            }
            Request::Registry(_) => Response::Registry(detail::registry(self).await),
            Request::ProcessRegistry(g) => {
                Response::ProcessRegistry(detail::process_registry(self, &g.pid).await?)
            }
            Request::Telemetry(_) => Response::Telemetry(clustertop_proto::Telemetry {
                nodes: Vec::new(),
                missing: Vec::new(),
            }),
            Request::PeekMailbox(p) => Response::Mailbox(detail::peek_mailbox(self, &p).await?),
            Request::ProcessTraces(_) => {
                return Err(ProtoError::Other(
                    "a BEAM node keeps no traces of its handlings for clustertop (tracing would \
                     need code loaded into it)"
                        .into(),
                ));
            }
        })
    }
}

/// Why a BEAM cluster has no log tail here.
pub const NO_LOGS: &str = "logs are not available from a BEAM node: reading them needs a \
     logger handler loaded into the node, and clustertop loads no code into a BEAM cluster";

impl Source for BeamSource {
    fn entry(&self) -> &str {
        &self.shared.cfg.node
    }

    fn is_connected(&self) -> bool {
        self.shared.entry.is_up()
    }

    fn request(&self, request: Request) -> Answer<'_> {
        Box::pin(async move {
            // The entry node gone, nothing is answered from what it left:
            // the caller attaches elsewhere, as for an agent.
            if !self.shared.entry.is_up() {
                return Err(ClientError::Disconnected(self.shared.cfg.node.clone()));
            }
            match self.shared.answer(request).await {
                Ok(r) => Ok(r),
                Err(e) => Ok(Response::Error(e)),
            }
        })
    }

    fn logs(&self) -> &LogSink {
        &self.shared.logs
    }

    fn close(&self) {
        self.shared.entry.close();
        let state = self.shared.state.lock();
        for n in state.nodes.values() {
            if let Some(c) = &n.conn {
                c.close();
            }
        }
    }
}

impl Drop for BeamSource {
    fn drop(&mut self) {
        self.close();
    }
}
