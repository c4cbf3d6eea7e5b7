//! Nodes, links and warnings.

use crate::processes::PidRef;
use serde::{Deserialize, Serialize};

/// Whether a node answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeStatus {
    /// Connected and answering.
    Up,
    /// Connected, but its agent did not answer within the per-node timeout.
    Slow,
    /// Not connected.
    Down {
        /// When the entry node last saw it up, in milliseconds since the
        /// Unix epoch; `None` if never.
        last_seen_unix_ms: Option<u64>,
    },
}

/// One node at one sampling instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSummary {
    /// `name@host`.
    pub name: String,
    /// The address its distribution listens on (`host:port`), where a
    /// client can attach to it too; as the node sees it, so an
    /// unspecified host (`0.0.0.0`) means "the host you reach it on".
    /// `None` when it does not listen or did not answer.
    pub addr: Option<String>,
    /// Up, slow or down; the fields below are zero unless up.
    pub status: NodeStatus,
    /// When the agent's sample that every figure below comes from was
    /// taken, in milliseconds since the Unix epoch (0: no sample yet). A
    /// rate is the change of a total over the change of this time; two
    /// summaries with the same time carry the same figures.
    pub sampled_at_unix_ms: u64,
    /// Time since the node started, in milliseconds.
    pub uptime_ms: u64,
    /// Live processes (gauge).
    pub processes: u64,
    /// Messages received by the node's processes since start (counter).
    pub messages_in_total: u64,
    /// Messages sent by the node's processes since start (counter).
    pub messages_out_total: u64,
    /// Messages received per second over the agent's last sampling
    /// interval.
    pub messages_in_per_s: u64,
    /// Messages sent per second over that interval.
    pub messages_out_per_s: u64,
    /// CPU used by the node's OS process over that interval, in per mille
    /// of all its cores (1000: every core busy).
    pub cpu_permille: u16,
    /// Resident memory, in bytes (gauge).
    pub rss_bytes: u64,
    /// CPU time used by the node's OS process, in microseconds (counter).
    pub cpu_time_us_total: u64,
    /// Logical CPUs available to the node (to turn CPU time into a share).
    pub cpus: u32,
    /// Dead letters since start (counter).
    pub dead_letters_total: u64,
    /// Processes that exited abnormally since start (counter).
    pub crashes_total: u64,
    /// The software version of the node's runtime.
    pub version: String,
    /// A BEAM node's own figures (`None` for our nodes).
    pub beam: Option<crate::BeamNode>,
}

/// Link statistics of one node towards one peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkStats {
    /// The peer's name.
    pub peer: String,
    /// Bytes received from the peer, with framing (counter).
    pub bytes_in_total: u64,
    /// Bytes sent to the peer, with framing (counter).
    pub bytes_out_total: u64,
    /// Frames received (counter).
    pub frames_in_total: u64,
    /// Frames sent (counter).
    pub frames_out_total: u64,
    /// Bytes waiting to be written (gauge).
    pub queued_bytes: u64,
    /// Round trip of the last answered heartbeat, in microseconds.
    pub heartbeat_rtt_us: Option<u64>,
    /// How long the link has been up, in milliseconds.
    pub up_for_ms: u64,
}

/// Everything about one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeDetail {
    /// The summary figures.
    pub summary: NodeSummary,
    /// Its links to every connected peer.
    pub links: Vec<LinkStats>,
    /// Scheduler threads of its runtime.
    pub scheduler_threads: u32,
    /// Tasks alive on its runtime besides its processes: connections,
    /// timers, and one process driver per scheduler thread.
    pub runtime_tasks: u64,
    /// Tasks and processes waiting for a scheduler thread: its runtime's
    /// global queue and its processes queued on the drivers (a gauge; high
    /// values mean the schedulers are behind).
    pub runtime_queue_depth: u64,
}

/// The whole cluster as the entry node's agent sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterOverview {
    /// The node that answered.
    pub entry: String,
    /// Every known node, the entry node first.
    pub nodes: Vec<NodeSummary>,
    /// The entry node's links (for the link-RTT column).
    pub links: Vec<LinkStats>,
    /// Active warnings across the cluster.
    pub warnings: Vec<Warning>,
    /// The top processes by the default ranking (warnings, then mailbox
    /// growth), system processes left out.
    pub top_processes: Vec<crate::processes::ProcessRow>,
}

/// What a warning is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WarningKind {
    /// A mailbox above its threshold and growing.
    MailboxGrowing {
        /// Queued messages.
        len: u64,
        /// Growth, in messages per second.
        growth_per_s: i64,
    },
    /// A process busy nearly all the time while its mailbox grows, sample
    /// after sample: it cannot keep up, however short its queue still is.
    Saturated {
        /// Its utilisation over the last interval, per mille.
        util_permille: u16,
        /// Queued messages.
        len: u64,
        /// Growth, in messages per second.
        growth_per_s: i64,
    },
    /// A handler has been running longer than its limit.
    LongHandler {
        /// How long so far, in milliseconds.
        running_ms: u64,
    },
    /// A supervisor is near its restart intensity.
    RestartStorm {
        /// Restarts within the supervisor's period.
        restarts: u32,
        /// The supervisor's limit.
        max_restarts: u32,
    },
    /// Dead letters are rising.
    DeadLetters {
        /// Per second.
        per_s: u64,
    },
    /// A node link went down and up repeatedly.
    FlappingLink {
        /// The peer.
        peer: String,
        /// Down events within the window.
        flaps: u32,
    },
    /// A node does not answer.
    NodeDown,
    /// A BEAM process doing far more work than the others: reductions per
    /// second above the limit, sample after sample.
    ReductionsHog {
        /// Reductions per second.
        per_s: u64,
    },
    /// A BEAM process holding more memory than the limit.
    MemoryHog {
        /// Bytes.
        bytes: u64,
    },
}

/// A warning, raised with hysteresis so it does not flicker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// The node it concerns.
    pub node: String,
    /// The process it concerns, if any.
    pub pid: Option<PidRef>,
    /// That process's registered name, if it has one.
    pub name: Option<String>,
    /// That process's behaviour or type name.
    pub behaviour: Option<String>,
    /// What it is.
    pub kind: WarningKind,
    /// When it was raised, in milliseconds since the Unix epoch.
    pub since_unix_ms: u64,
}
