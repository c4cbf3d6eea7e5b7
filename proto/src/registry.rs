//! The application layer's registries: PubSub topics, Presence topics,
//! registered and global names, process groups (protocol version 3).

use serde::{Deserialize, Serialize};

use crate::PidRef;

/// The registries of every node, gathered by the entry node's agent.
/// Answered with [`Registry`]. Since protocol version 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GetRegistry;

/// The registries of one process: what it is subscribed to and what it
/// holds. Answered with [`ProcessRegistry`]. Since protocol version 3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetProcessRegistry {
    /// The process.
    pub pid: PidRef,
}

/// Every node's registries, one entry per node that answered.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Registry {
    /// Each node's part, in node-name order.
    pub nodes: Vec<NodeRegistry>,
    /// Nodes that did not answer (slow or down).
    pub missing: Vec<String>,
}

/// One node's registries.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeRegistry {
    /// The node.
    pub node: String,
    /// When the figures were read, ms since the Unix epoch.
    pub sampled_at_unix_ms: u64,
    /// PubSub topics with subscribers or publications on this node.
    pub topics: Vec<TopicRow>,
    /// Presence topics with present processes, as this node sees them.
    pub presences: Vec<PresenceRow>,
    /// Names held by this node's processes: local and global.
    pub names: Vec<NameRow>,
    /// Process groups with members on this node.
    pub groups: Vec<GroupRow>,
}

/// A PubSub topic on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRow {
    /// The PubSub instance's name.
    pub instance: String,
    /// The topic.
    pub topic: String,
    /// Subscribers on this node now.
    pub subscribers: u64,
    /// Broadcasts published on this node (monotonic).
    pub published_total: u64,
    /// Messages put into this node's subscribers' mailboxes, from any node
    /// (monotonic).
    pub delivered_total: u64,
}

/// A Presence topic as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceRow {
    /// The Presence instance's name.
    pub instance: String,
    /// The topic.
    pub topic: String,
    /// Present processes, cluster-wide.
    pub tracked: u64,
    /// Distinct keys among them.
    pub keys: u64,
    /// Of `tracked`, this node's processes.
    pub local: u64,
}

/// Where a name is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NameScope {
    /// In the node's own registry.
    Local,
    /// In the cluster-wide registry.
    Global,
}

/// A name and the process holding it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameRow {
    /// The name.
    pub name: String,
    /// Local or global.
    pub scope: NameScope,
    /// The holder.
    pub pid: PidRef,
    /// The holder's behaviour (as in process rows), if known.
    pub behaviour: Option<String>,
    /// Whether the holder is a system process (the agent's own), which
    /// views leave out unless asked.
    pub system: bool,
}

/// A process group on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRow {
    /// The group.
    pub group: String,
    /// Members on this node.
    pub members: u64,
}

/// What one process is subscribed to and holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProcessRegistry {
    /// Its locally registered name.
    pub name: Option<String>,
    /// Global names it holds.
    pub global_names: Vec<String>,
    /// Groups it is a member of.
    pub groups: Vec<String>,
    /// PubSub topics it is subscribed to, as (instance, topic).
    pub subscriptions: Vec<(String, String)>,
    /// Presence entries it is tracked under, as (instance, topic, key).
    pub presences: Vec<(String, String, String)>,
}
