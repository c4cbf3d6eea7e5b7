#![doc = include_str!("../README.md")]

mod config;
mod error;
mod histograms;
mod local;
mod logs;
mod membership;
mod os;
mod peer;
mod processes;
mod registry;
mod sampler;
mod service;
mod sessions;
mod state;
mod subscriptions;
mod telemetry;
mod warnings;

pub use config::AgentConfig;
pub use error::AgentError;
pub use logs::log_layer;
pub use state::AgentMemory;
pub use warnings::WarningConfig;

use clustertop_runtime::Node;
use std::sync::Arc;
use std::time::Duration;

/// A running agent. Dropping the handle leaves it running; [`Agent::stop`]
/// stops it.
#[derive(Debug, Clone)]
pub struct Agent {
    state: Arc<state::State>,
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
        let state = state::State::new(node.clone(), config);
        processes::start(&state).await?;
        Ok(Agent { state })
    }

    /// Stops the agent's processes.
    pub fn stop(&self) {
        processes::stop(&self.state);
    }

    /// Bytes the agent holds for its last sample and its log ring, and the
    /// number of log records held (for capacity checks).
    pub fn memory(&self) -> AgentMemory {
        self.state.memory()
    }

    /// Log subscriptions this node feeds (its own clients' and other entry
    /// nodes').
    pub fn log_subscriptions(&self) -> usize {
        self.state.logs.feeds()
    }

    /// Takes a sample now (besides the periodic ones) and returns the time
    /// it took; for benchmarks and tests.
    pub async fn sample_now(&self) -> Duration {
        self.state.sample().await
    }
}
