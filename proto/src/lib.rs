#![doc = include_str!("../README.md")]

mod beam;
mod call;
mod logs;
mod metrics;
mod nodes;
mod processes;
mod registry;
mod telemetry;
pub mod time;
mod version;
pub mod warnings;

pub use beam::{BeamMemory, BeamNode, BeamProcess, BeamProcessDetail};
pub use call::{
    Call, GetMetrics, GetNode, GetOverview, GetProcess, GetTree, GetWarnings, SubscribeLogs,
    Unsubscribe,
};
pub use logs::{LogFilter, LogLevel, LogRecord};
pub use metrics::{Histogram, HistogramKey, MetricsSnapshot, Percentiles};
pub use nodes::{
    ClusterOverview, LinkStats, NodeDetail, NodeStatus, NodeSummary, Warning, WarningKind,
};
pub use processes::{
    Activity, ExitSummary, MailboxPeek, PeekMailbox, PidRef, ProcessDetail, ProcessFigures,
    ProcessFilter, ProcessPage, ProcessQuery, ProcessRow, ProcessStatus, ProcessTotals,
    RestartIntensity, SortFields, SortKey, SupervisionTree, TreeNode,
};
pub use registry::{
    GetProcessRegistry, GetRegistry, GroupRow, NameRow, NameScope, NodeRegistry, PresenceRow,
    ProcessRegistry, Registry, TopicRow,
};
pub use telemetry::{
    Bucket, Endpoint, EndpointKind, EventCount, GetProcessTraces, GetTelemetry, NodeTelemetry,
    ProcessTraces, Series, SeriesValue, Telemetry, TraceRow, merge_buckets, quantile,
};
pub use version::{Hello, HelloReply, MIN_VERSION, ProtoError, VERSION, fallback, negotiate};
pub use warnings::WarningConfig;

use serde::{Deserialize, Serialize};

/// The name every node's attach service is registered under.
pub const AGENT_NAME: &str = "clustertop_agent";

/// A request as it travels to an agent's attach service: the request, the
/// id the client correlates the answer by, and where to send it.
///
/// `P` is the client's reply address (the runtime's `Pid<AgentReply>`);
/// it is a parameter so this crate stays free of the runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentCall<P> {
    /// Echoed in the [`AgentReply`].
    pub id: u64,
    /// Where the answer goes.
    pub reply_to: P,
    /// The request.
    pub request: Request,
}

/// An answer (`id` of the request) or a pushed message (`id` 0: log
/// records of a subscription).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReply {
    /// The request's id, or 0 for pushes.
    pub id: u64,
    /// The answer.
    pub response: Response,
}

/// What a client asks an agent, as it travels. Every request is
/// read-only. Each variant holds a request type that names its answer
/// (see [`Call`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Opens the session; must come first.
    Hello(Hello),
    /// Every node of the cluster, gathered by the entry node's agent.
    ClusterOverview(GetOverview),
    /// One node in depth.
    NodeDetail(GetNode),
    /// A page of processes, sorted and filtered, across the cluster or on
    /// one node.
    ProcessList(ProcessQuery),
    /// One process in depth.
    ProcessInfo(GetProcess),
    /// The supervision trees of one node.
    SupervisionTree(GetTree),
    /// Latency histograms, for one node or all.
    Metrics(GetMetrics),
    /// Active warnings across the cluster.
    Warnings(GetWarnings),
    /// Log records from every node, pushed until unsubscribed.
    SubscribeLogs(SubscribeLogs),
    /// Ends a log subscription.
    Unsubscribe(Unsubscribe),
    /// The application layer's registries of every node (version 3).
    Registry(GetRegistry),
    /// One process's subscriptions and names (version 3).
    ProcessRegistry(GetProcessRegistry),
    /// Every node's telemetry endpoints, user series and events (version 4).
    Telemetry(GetTelemetry),
    /// One process's last traced handlings (version 4).
    ProcessTraces(GetProcessTraces),
    /// The first queued messages of one process, read when asked
    /// (version 6).
    PeekMailbox(PeekMailbox),
}

/// What an agent answers (or pushes, for log subscriptions).
// An answer is built once, sent and dropped, never kept in bulk: its size
// costs nothing, and boxing the large variants would make every reader of
// a `Call::Reply` unbox it.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to [`Request::Hello`].
    Hello(HelloReply),
    /// Answer to [`Request::ClusterOverview`].
    Overview(ClusterOverview),
    /// Answer to [`Request::NodeDetail`].
    Node(NodeDetail),
    /// Answer to [`Request::ProcessList`].
    Processes(ProcessPage),
    /// Answer to [`Request::ProcessInfo`].
    Process(ProcessDetail),
    /// Answer to [`Request::SupervisionTree`].
    Tree(SupervisionTree),
    /// Answer to [`Request::Metrics`].
    Metrics(MetricsSnapshot),
    /// Answer to [`Request::Warnings`].
    Warnings(Vec<Warning>),
    /// Answer to [`Request::SubscribeLogs`].
    Subscribed {
        /// Names the subscription in [`Unsubscribe`].
        subscription: u64,
    },
    /// Answer to [`Request::Unsubscribe`].
    Unsubscribed {
        /// The subscription that ended.
        subscription: u64,
    },
    /// Pushed to a subscriber: records of one node, in the order it
    /// logged them.
    Logs {
        /// The subscription they belong to.
        subscription: u64,
        /// The node that logged them.
        node: String,
        /// The records.
        records: Vec<LogRecord>,
        /// Records that matched but were dropped because the subscriber
        /// fell behind (a counter since the subscription began).
        dropped_total: u64,
        /// Whether these are the node's backlog: its last matching records
        /// before the subscription began (at most the `backlog` asked for).
        /// Each node sends its backlog first, in one push, even when empty;
        /// every other push holds records logged after it.
        backlog: bool,
    },
    /// The request could not be answered.
    Error(ProtoError),
    /// Answer to [`Request::Registry`] (version 3).
    Registry(Registry),
    /// Answer to [`Request::ProcessRegistry`] (version 3).
    ProcessRegistry(ProcessRegistry),
    /// Answer to [`Request::Telemetry`] (version 4).
    Telemetry(Telemetry),
    /// Answer to [`Request::ProcessTraces`] (version 4).
    ProcessTraces(ProcessTraces),
    /// Answer to [`Request::PeekMailbox`] (version 6).
    Mailbox(MailboxPeek),
}
