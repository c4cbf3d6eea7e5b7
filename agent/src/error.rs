//! Why an agent could not start.

use clustertop_runtime::{RegistryError, StartError};

/// The agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A process of this name is registered already (an agent runs).
    #[error("cannot register the agent's name {name:?}: {source}")]
    Name {
        /// The name.
        name: &'static str,
        /// Why the registry refused it.
        #[source]
        source: RegistryError,
    },
    /// One of the agent's servers failed to start.
    #[error("cannot start the agent's {server}: {source}")]
    Start {
        /// The server's registered name.
        server: &'static str,
        /// Why it did not start.
        #[source]
        source: StartError,
    },
}
