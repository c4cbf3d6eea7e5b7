//! How an agent runs.

use crate::warnings::WarningConfig;
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
    /// The newest attach-protocol version this agent answers in (default
    /// [`clustertop_proto::VERSION`]). Lower it to behave as an older
    /// agent: rolling upgrades and compatibility tests.
    pub protocol_max: u32,
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
            protocol_max: clustertop_proto::VERSION,
        }
    }
}
