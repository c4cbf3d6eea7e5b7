//! Errors of the process, registry and messaging APIs.

use crate::exit_reason::ExitReason;
use crate::id::ProcessId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The process does not exist (or has exited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no such process")]
pub struct NoProcess;

/// Why a message was not delivered; the message is handed back.
#[derive(thiserror::Error)]
pub enum SendError<M> {
    /// The bounded mailbox is full.
    #[error("mailbox full")]
    Full(M),
    /// The process is dead.
    #[error("no such process")]
    NoProcess(M),
}

impl<M> SendError<M> {
    /// The undelivered message.
    pub fn into_inner(self) -> M {
        match self {
            SendError::Full(m) | SendError::NoProcess(m) => m,
        }
    }
}

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Full(_) => f.write_str("Full(..)"),
            SendError::NoProcess(_) => f.write_str("NoProcess(..)"),
        }
    }
}

/// Registry errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The name is held by another process.
    #[error("name {name:?} is already registered to {holder}")]
    Taken {
        /// The name.
        name: String,
        /// The process holding it.
        holder: ProcessId,
    },
    /// The process already has a name.
    #[error("process already registered as {0:?}")]
    AlreadyNamed(String),
    /// The process is not alive.
    #[error("no such process")]
    NoProcess,
    /// No process holds the name.
    #[error("name {0:?} is not registered")]
    NotRegistered(String),
}

/// A typed lookup of a process failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No live process with that id or name.
    #[error("no such process")]
    NoProcess,
    /// No process holds the name.
    #[error("name {0:?} is not registered")]
    NotRegistered(String),
    /// The process takes messages of another type.
    #[error("process takes {actual}, not {expected}")]
    WrongType {
        /// The message type asked for.
        expected: &'static str,
        /// The message type the process takes.
        actual: &'static str,
    },
}

/// Starting a process (a GenServer, a supervisor, a task) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// `init` failed, or the process exited before it finished starting.
    #[error("init failed: {0}")]
    Init(ExitReason),
    /// The requested name is taken.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Starting did not finish in time.
    #[error("start timed out")]
    Timeout,
    /// The cluster-wide name could not be taken.
    #[error("global name {name:?}: {reason}")]
    Global {
        /// The name.
        name: String,
        /// Why.
        reason: GlobalNameError,
    },
}

/// Why a server's cluster-wide name ([`ServerOptions::global_name`]) could
/// not be registered.
///
/// [`ServerOptions::global_name`]: crate::ServerOptions::global_name
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobalNameError {
    /// A process of some node holds it (Erlang's `already_started`).
    #[error("taken")]
    Taken,
    /// The node has no distribution.
    #[error("the node is not distributed")]
    NotDistributed,
    /// The server does not take messages from other nodes: its `init` must
    /// call `ctx.enable_remote()`.
    #[error(
        "the server does not take messages from other nodes (call ctx.enable_remote() in init)"
    )]
    NotRemote,
    /// Anything else the global registry said (lock contention, a hidden
    /// node, the process gone).
    #[error("{0}")]
    Failed(String),
}

impl StartError {
    /// This error as the exit reason a failed start leaves behind.
    pub fn into_exit_reason(self) -> ExitReason {
        match self {
            StartError::Init(reason) => reason,
            other => ExitReason::custom(other),
        }
    }
}

/// A GenServer call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No reply within the timeout.
    #[error("call timed out")]
    Timeout,
    /// The server was not alive when called.
    #[error("no such process")]
    NoProcess,
    /// The server exited before replying.
    #[error("server exited: {0}")]
    Exited(ExitReason),
    /// The connection to the server's node is lost (or was never up).
    #[error("node {0} is down")]
    NodeDown(String),
    /// The reply from another node did not decode as the reply type.
    #[error("reply does not decode: {0}")]
    BadReply(String),
}

/// Why a call to another node got no reply (part of the wire schema: a
/// `Reply` frame carries it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub))] // re-exported by the wire schema with `testing`
pub enum ReplyFailure {
    /// The server exited before replying.
    Exited(ExitReason),
    /// The server dropped the reply handle without replying.
    NoReply,
    /// The connection to the server's node was lost.
    NoConnection,
    /// The reply did not decode as the expected type.
    Malformed(String),
    /// No behaviour or task is registered under that name.
    UnknownName(String),
    /// The behaviour takes another message type than the caller expects.
    TypeMismatch(String),
}
