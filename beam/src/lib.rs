//! Attach clustertop to a live Erlang/Elixir cluster, loading no code into
//! it.
//!
//! [`BeamSource`] is a [`clustertop_client::Source`]: it answers the attach
//! protocol's requests from what a BEAM node offers through its built-in
//! functions, so every view, `snapshot` and the warnings engine work for a
//! BEAM cluster as for ours. It connects to the entry node as a hidden
//! node over the Erlang distribution protocol (the node's port from EPMD),
//! finds the others through `nodes()` and connects to each the same way.
//!
//! # What is done to the target
//! Calls through each node's `rex` server (what `rpc:call/4` does) of
//! functions the node already has: `erlang:processes/0`,
//! `erlang:process_info/2`, `erlang:memory/0`, `erlang:statistics/1`,
//! `erlang:system_info/1`, `erlang:nodes/0`, `supervisor:which_children/1`.
//! Each call runs in a process `rex` starts for it, which exits when it
//! has answered. No module is loaded, no process is left behind, nothing
//! is written.
//!
//! The cookie is found as `erl` finds it ([`resolve_cookie`]).

mod cluster;
mod config;
pub mod conn;
mod cookie;
pub mod detail;
pub mod frame;
mod node;
mod pids;
pub mod sample;
mod source;
mod term;

pub use config::{BeamConfig, PACE};
pub use conn::{Conn, ConnStats};
pub use cookie::{COOKIE_ENV, resolve_cookie};
pub use sample::TableMode;
pub use source::{BeamSource, NO_LOGS};
use std::time::Duration;
#[doc(hidden)]
pub use term::Term;

/// Why attaching to a BEAM node, or a call to it, failed. Each displays
/// as one line a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum BeamError {
    /// Not `name@host`.
    #[error("{0:?} is not a node name (name@host)")]
    BadName(String),
    /// EPMD on the node's host did not answer.
    #[error("no EPMD on {host} ({reason}); is an Erlang node running there?")]
    Epmd {
        /// The host.
        host: String,
        /// What failed.
        reason: String,
    },
    /// EPMD answered, without that node.
    #[error("no node {node} is registered in EPMD")]
    NotRegistered {
        /// The node.
        node: String,
    },
    /// The node's port did not take the connection.
    #[error("cannot connect to {node}: {reason}")]
    Connect {
        /// The node.
        node: String,
        /// What failed.
        reason: String,
    },
    /// The node refused the cookie.
    #[error("{0} refused the cookie (set --cookie, ERLANG_COOKIE or ~/.erlang.cookie)")]
    BadCookie(String),
    /// No cookie given and none found.
    #[error("no Erlang cookie: give --cookie, set ERLANG_COOKIE, or create ~/.erlang.cookie ({0})")]
    NoCookie(String),
    /// The handshake failed for another reason.
    #[error("the handshake with {node} failed: {reason}")]
    Handshake {
        /// The node.
        node: String,
        /// What failed.
        reason: String,
    },
    /// The node did not answer in time.
    #[error("{node} did not answer within {after:?}")]
    Timeout {
        /// The node.
        node: String,
        /// The limit.
        after: Duration,
    },
    /// The connection is gone.
    #[error("the connection to {0} is closed")]
    Disconnected(String),
    /// A call raised on the node.
    #[error("{call} on {node} failed: {reason}")]
    BadRpc {
        /// The node.
        node: String,
        /// `module:function`.
        call: String,
        /// The reason, as the node gave it.
        reason: String,
    },
    /// The call would need a module the node has not loaded (calling it
    /// would load it).
    #[error("{node} has not loaded {module}; clustertop loads no code into a BEAM node")]
    NotLoaded {
        /// The node.
        node: String,
        /// The module.
        module: String,
    },
    /// The node sent something this side cannot read.
    #[error("{node}: {reason}")]
    Protocol {
        /// The node.
        node: String,
        /// What was wrong.
        reason: String,
    },
}
