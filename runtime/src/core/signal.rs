//! System messages: `DOWN` from monitors and `EXIT` from links.

use crate::exit_reason::ExitReason;
use crate::id::ProcessId;
use std::fmt;

/// Identifies one monitor; returned by `monitor` and carried by its [`Down`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MonitorRef(pub(crate) u64);

impl fmt::Display for MonitorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#Ref<{}>", self.0)
    }
}

/// Sent once to the watcher when a monitored process exits (or, with reason
/// [`ExitReason::NoProc`], at once if it was already dead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Down {
    /// The monitor that fired.
    pub monitor: MonitorRef,
    /// The process that exited.
    pub pid: ProcessId,
    /// Why it exited.
    pub reason: ExitReason,
}

/// An exit signal turned into a message, as received by a process that traps
/// exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The process the signal came from (a linked process, or the caller of
    /// [`Node::exit`](crate::Node::exit)).
    pub from: ProcessId,
    /// The exit reason it carries.
    pub reason: ExitReason,
}

/// What a process takes out of its mailbox: one of its own messages, or a
/// system message.
#[derive(Debug)]
pub enum Received<M> {
    /// A message of the process's own type.
    Msg(M),
    /// A monitored process exited.
    Down(Down),
    /// A linked process exited (only when trapping exits).
    Exit(Exit),
    /// A node connected or disconnected (after `monitor_nodes(true)`).
    Node(NodeEvent),
}

impl<M> Received<M> {
    /// The process's own message, if this is one.
    pub fn into_msg(self) -> Option<M> {
        match self {
            Received::Msg(m) => Some(m),
            _ => None,
        }
    }
}

/// A queued item. System messages are boxed so they do not widen the
/// envelope of small user messages.
pub(crate) enum Item<M> {
    Msg(M),
    Down(Box<Down>),
    Exit(Box<Exit>),
    Node(Box<NodeEvent>),
}

impl<M> Item<M> {
    pub(crate) fn into_received(self) -> Received<M> {
        match self {
            Item::Msg(m) => Received::Msg(m),
            Item::Down(d) => Received::Down(*d),
            Item::Exit(e) => Received::Exit(*e),
            Item::Node(n) => Received::Node(*n),
        }
    }
}

impl<M: fmt::Debug> fmt::Debug for Item<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Msg(m) => m.fmt(f),
            Item::Down(d) => write!(f, "DOWN {} {} {}", d.monitor, d.pid, d.reason),
            Item::Exit(e) => write!(f, "EXIT {} {}", e.from, e.reason),
            Item::Node(n) => write!(f, "{n:?}"),
        }
    }
}

/// A system message on its way to a mailbox of any type.
#[derive(Debug)]
pub(crate) enum SystemMsg {
    Down(Box<Down>),
    Exit(Box<Exit>),
    Node(Box<NodeEvent>),
}

impl SystemMsg {
    pub(crate) fn into_item<M>(self) -> Item<M> {
        match self {
            SystemMsg::Down(d) => Item::Down(d),
            SystemMsg::Exit(e) => Item::Exit(e),
            SystemMsg::Node(n) => Item::Node(n),
        }
    }
}

/// A change in the set of connected nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// A connection to `node` is up.
    Up {
        /// The peer's name.
        node: String,
        /// Whether the peer is hidden.
        hidden: bool,
    },
    /// The connection to `node` is gone.
    Down {
        /// The peer's name.
        node: String,
        /// Why.
        reason: NodeDownReason,
    },
}

/// Why a connection to a node ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeDownReason {
    /// Nothing arrived from the peer for a whole tick time.
    HeartbeatTimeout,
    /// The peer closed the connection.
    ConnectionClosed,
    /// This node disconnected it.
    Disconnected,
    /// The peer sent something that is not the protocol.
    ProtocolError(String),
    /// The socket failed.
    Io(String),
    /// The peer stopped reading: nothing could be written to it for a
    /// whole tick time, or its queue of control frames (replies to its own
    /// requests) passed its bound.
    NotReading,
    /// The peer connected again while this connection was held, and nothing
    /// arrived on this one when it was asked for a heartbeat: the peer had
    /// closed its end without this side seeing it.
    Stale,
}

impl std::fmt::Display for NodeDownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeDownReason::HeartbeatTimeout => f.write_str("heartbeat timeout"),
            NodeDownReason::ConnectionClosed => f.write_str("connection closed"),
            NodeDownReason::Disconnected => f.write_str("disconnected"),
            NodeDownReason::ProtocolError(e) => write!(f, "protocol error: {e}"),
            NodeDownReason::Io(e) => write!(f, "i/o error: {e}"),
            NodeDownReason::NotReading => f.write_str("the peer stopped reading"),
            NodeDownReason::Stale => f.write_str("stale: the peer connected again"),
        }
    }
}
