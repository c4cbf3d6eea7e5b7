#![doc = include_str!("../README.md")]

mod histograms;
mod logs;
mod os;
mod sampler;
mod service;
mod state;
mod warnings;

pub use logs::log_layer;
pub use service::{LogBatch, PeerArgs, PeerCall, PeerReply, PeerServer};
pub use warnings::WarningConfig;

use clustertop_runtime::Node;
use std::sync::Arc;
use std::time::Duration;

/// How an agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Time between samples of the process table (default 1 s).
    pub interval: Duration,
    /// Processes in an overview's top list (default 20).
    pub top_k: u32,
    /// How long the entry node waits for each other node's agent before
    /// marking it slow (default 2 s).
    pub peer_timeout: Duration,
    /// Bytes of log records kept (default 8 MiB).
    pub log_capacity_bytes: usize,
    /// Records pushed to one subscriber per 100 ms at most; matching
    /// records beyond that are dropped and counted (default 1,000).
    pub log_batch: usize,
    /// A subscriber whose node link has more than this many bytes queued,
    /// or whose mailbox holds more than `log_backlog / 1024` batches, is
    /// behind: records for it are dropped and counted (default 1 MiB).
    pub log_backlog: usize,
    /// Warning thresholds.
    pub warnings: WarningConfig,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            interval: Duration::from_secs(1),
            top_k: 20,
            peer_timeout: Duration::from_secs(2),
            log_capacity_bytes: 8 << 20,
            log_batch: 1_000,
            log_backlog: 1 << 20,
            warnings: WarningConfig::default(),
        }
    }
}

/// The agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A process of this name is registered already (an agent runs).
    #[error("cannot register the agent's name {0:?}: {1}")]
    Name(&'static str, clustertop_runtime::RegistryError),
    /// One of the agent's servers failed to start.
    #[error("cannot start the agent's {0}: {1}")]
    Start(&'static str, String),
}

/// A running agent. Dropping the handle leaves it running; [`Agent::stop`]
/// stops it.
#[derive(Debug, Clone)]
pub struct Agent {
    shared: Arc<state::Shared>,
}

impl Agent {
    /// Starts the agent's system processes on `node`: the sampler, the log
    /// pusher, the attach service (registered as
    /// [`clustertop_proto::AGENT_NAME`]) and the service other agents call.
    ///
    /// # Errors
    /// [`AgentError::Name`] if an agent already runs on `node`;
    /// [`AgentError::Start`] if one of its servers fails to start.
    pub async fn start(node: &Node, config: AgentConfig) -> Result<Agent, AgentError> {
        let shared = state::Shared::new(node.clone(), config);
        service::start(&shared).await?;
        Ok(Agent { shared })
    }

    /// Stops the agent's processes.
    pub fn stop(&self) {
        service::stop(&self.shared);
    }

    /// Bytes the agent holds for its last sample and its log ring, and the
    /// number of log records held (for capacity checks).
    pub fn memory(&self) -> AgentMemory {
        self.shared.memory()
    }

    /// Log subscriptions this node feeds (its own clients' and other entry
    /// nodes').
    pub fn log_subscriptions(&self) -> usize {
        self.shared.pushes.lock().len()
    }

    /// Takes a sample now (besides the periodic ones) and returns the time
    /// it took; for benchmarks and tests.
    pub async fn sample_now(&self) -> Duration {
        state::sample(&self.shared).await
    }
}

/// What an agent holds in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentMemory {
    /// Bytes of the current process-table sample.
    pub sample_bytes: usize,
    /// Bytes charged to the log ring.
    pub log_bytes: usize,
    /// Records in the log ring.
    pub log_records: usize,
    /// Records evicted from the log ring since start.
    pub log_evicted: u64,
}
