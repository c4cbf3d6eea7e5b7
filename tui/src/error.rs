//! What can stop a `clustertop` command: each displays as the one line the
//! binary prints before it exits with status 1.

use clustertop_client::ClientError;

/// Why a command stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Attaching or a request failed (no node, wrong cookie, version,
    /// timeout).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Attaching to a BEAM node failed (EPMD, cookie, connection).
    #[error(transparent)]
    Beam(#[from] clustertop_beam::BeamError),
    /// There is no terminal to draw on.
    #[error(
        "the interactive view needs a terminal ({0}); `clustertop snapshot` prints one overview"
    )]
    NoTerminal(#[source] std::io::Error),
    /// Drawing or reading the terminal failed.
    #[error("terminal: {0}")]
    Terminal(#[source] std::io::Error),
    /// The signals that stop the view could not be watched.
    #[error("cannot watch for signals: {0}")]
    Signals(#[source] std::io::Error),
    /// The overview could not be written as JSON.
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A followed log stream ended because the entry node went away.
    #[error("the connection to {0} closed")]
    Closed(String),
    /// A demo cluster could not start.
    #[error(transparent)]
    Demo(#[from] crate::demo::DemoError),
    /// A demo node could not start.
    #[cfg(feature = "demo")]
    #[error("{0}")]
    DemoNode(String),
    /// The command line asks for something that cannot be done.
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    /// A second line saying what to do next, where there is one.
    pub(crate) fn hint(&self) -> Option<&'static str> {
        match self {
            CliError::Client(ClientError::NoNode { .. }) => Some(
                "nothing to attach to? `clustertop demo` starts a local cluster; --node ADDR names another",
            ),
            _ => None,
        }
    }
}
