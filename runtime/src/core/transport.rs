//! The process core's view of other nodes: the narrow interface that the
//! distribution layer (the `dist` module) implements, and (in [`inbound`])
//! the core's own entry points for what arrives from other nodes: a link,
//! an exit signal, a monitor, a `DOWN`, a lost node, a global name won or
//! lost, each applied by the core's rules.
//!
//! The core — processes, mailboxes, signals, the registry, GenServer,
//! supervisors — is written against this module alone. It says what it
//! needs in its own terms (a signal to a process on node index `n`, a
//! route that sends a typed message, the node events it watches) and never
//! builds a wire frame, a wire pid or a handshake. The distribution layer
//! implements [`Transport`] and [`RemoteRoute`], and offers the
//! distribution-only verbs (`named_on`, the global registry, remote spawn)
//! behind `node.dist()`. The seam speaks in ids and bytes and never names
//! the node: the node holds the layer, and a remote pid keeps its local
//! node beside its route. A test (`tests/layering.rs`) checks that no core
//! file names the distribution layer and that this file stays out of the
//! core's circle.
//!
//! # Cost
//! A remote send is one dynamic call through the pid's route (the route
//! object holds the connection handle, so it looks nothing up). Everything
//! else here is off the hot path: signals of links and monitors, group
//! announcements, flow-control resumption of a suspended process.

pub(crate) mod inbound;
use crate::exit_reason::ExitReason;
use crate::pid::{Message, ProcessId};
use crate::signal::MonitorRef;
pub use crate::signal::{NodeDownReason, NodeEvent};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::any::Any;
use std::sync::Arc;
use std::task::Poll;

/// A message that can cross nodes: any [`Message`] that serde can encode
/// and decode.
pub trait RemoteMessage: Message + Serialize + DeserializeOwned {}
impl<T: Message + Serialize + DeserializeOwned> RemoteMessage for T {}

/// A signal from a local process to a process on another node. `from` is
/// the local process's serial (`0`: no process).
#[derive(Debug)]
pub(crate) enum RemoteSignal {
    /// `from` links to `to` (the layer also remembers `from` holds a
    /// relation with `to`'s node, to fire `noconnection` when it goes).
    Link { from: u64, to: ProcessId },
    /// `from` removes its link to `to`.
    Unlink { from: u64, to: ProcessId },
    /// `from` monitors `to` with `mref` (remembered as for `Link`).
    Monitor {
        from: u64,
        to: ProcessId,
        mref: MonitorRef,
    },
    /// `from` removes its monitor `mref` of `to`.
    Demonitor {
        from: u64,
        to: ProcessId,
        mref: MonitorRef,
    },
    /// An exit signal: from a link (`link`) or from `Node::exit`.
    Exit {
        from: u64,
        to: ProcessId,
        reason: ExitReason,
        link: bool,
    },
    /// `from`, monitored by `to` with `mref`, exited with `reason`.
    Down {
        from: u64,
        to: ProcessId,
        mref: MonitorRef,
        reason: ExitReason,
    },
}

/// Why a signal to a process on another node could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unreachable {
    /// Its node is not connected.
    NoConnection,
    /// Its node is connected, but as another incarnation: the pid is dead.
    NoProc,
}

impl Unreachable {
    /// The exit reason a link or monitor fires with.
    pub(crate) fn reason(self) -> ExitReason {
        match self {
            Unreachable::NoConnection => ExitReason::NoConnection,
            Unreachable::NoProc => ExitReason::NoProc,
        }
    }
}

/// What the process core asks of the distribution layer. One object per
/// distributed node, held by the node.
pub(crate) trait Transport: Any + Send + Sync {
    /// Queues `signal` for the node incarnation its target's index names.
    fn signal(&self, signal: RemoteSignal) -> Result<(), Unreachable>;
    /// Tells the other nodes that the local process `member` joined or
    /// left `group`.
    fn announce_group(&self, group: &str, member: ProcessId, joined: bool);
    /// The members of `group` on other nodes.
    fn remote_group_members(&self, group: &str) -> Vec<ProcessId>;
    /// The groups with members on other nodes.
    fn remote_groups(&self) -> Vec<String>;
    /// The local process `holder` exited holding the global name `name`.
    fn release_global(&self, name: &str, holder: ProcessId);
    /// Ready once the local process `serial`, suspended for sending on a
    /// busy link, may run again; registers the waker otherwise.
    fn poll_resume(&self, serial: u64, cx: &mut std::task::Context<'_>) -> Poll<()>;
    /// Whether the local process `pid` receives node events.
    fn watch(&self, pid: ProcessId, on: bool);
    /// Node events from now on.
    fn events(&self) -> tokio::sync::broadcast::Receiver<NodeEvent>;
    /// Whether a connection to `node` (visible or hidden) is up.
    fn is_connected(&self, node: &str) -> bool;
    /// Forgets the reply parked under `id` (its caller stopped waiting).
    fn cancel_reply(&self, id: u64);
    /// Registers the local process `pid` (which must take messages from
    /// other nodes) under the cluster-wide `name`.
    fn register_global(
        &self,
        name: String,
        pid: ProcessId,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), crate::GlobalNameError>> + Send>,
    >;
}

/// The distribution layer as a node holds it: the [`Transport`] the core
/// calls, and the same object type-erased, for the layer to take back as
/// its own type.
pub(crate) struct Layer {
    transport: Arc<dyn Transport>,
    typed: Box<dyn Any + Send + Sync>,
}

impl Layer {
    pub(crate) fn new<T: Transport>(layer: Arc<T>) -> Self {
        Layer {
            transport: layer.clone(),
            typed: Box::new(layer),
        }
    }

    pub(crate) fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// The layer as its own type (a type-id comparison).
    pub(crate) fn get<T: Transport>(&self) -> Option<&Arc<T>> {
        self.typed.downcast_ref::<Arc<T>>()
    }
}

/// How a `Pid<M>` reaches a process on another node. Implemented by the
/// distribution layer; the core only sends through it.
pub(crate) trait RemoteRoute<M>: Send + Sync + 'static {
    /// The process's id on this node.
    fn id(&self) -> ProcessId;
    /// The name of the node it lives on.
    fn node_name(&self) -> &str;
    /// Encodes and queues `msg`. `Err` if it cannot go (the node is not
    /// connected, or the message does not encode); otherwise the call reply
    /// parked while encoding it, if the message carried one.
    fn send(&self, msg: &M) -> Result<Option<ParkedReply>, ()>;
    /// The route as `Any`, for the layer to take back.
    fn as_any(&self) -> &dyn Any;
}

/// A call's reply parked with the distribution layer while it waits for an
/// answer from another node; forgotten when dropped, however the call ends.
pub(crate) struct ParkedReply {
    transport: Arc<dyn Transport>,
    id: u64,
}

impl ParkedReply {
    pub(crate) fn new(transport: Arc<dyn Transport>, id: u64) -> Self {
        ParkedReply { transport, id }
    }
}

impl Drop for ParkedReply {
    fn drop(&mut self) {
        self.transport.cancel_reply(self.id);
    }
}

impl std::fmt::Debug for ParkedReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ParkedReply({})", self.id)
    }
}

/// A message received from another node, before it is decoded for its
/// target process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Incoming<'a> {
    /// The sender's tag for the message type.
    pub(crate) tag: u64,
    /// The encoded message.
    pub(crate) payload: &'a [u8],
}

/// Turns a received message into the target process's message type;
/// installed in a process once it is reachable from other nodes.
pub(crate) type Decoder<M> = fn(&Incoming<'_>) -> Result<M, DeliveryError>;

/// Why a received message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DeliveryError {
    #[error("the process does not accept remote messages")]
    NotRemote,
    #[error("type tag {got:#x} does not match {expected}")]
    TypeMismatch { expected: &'static str, got: u64 },
    #[error("payload does not decode as {expected}: {error}")]
    Malformed {
        expected: &'static str,
        error: String,
    },
    #[error("mailbox full")]
    Full,
    #[error("no such process")]
    NoProcess,
}

/// The other end of a call made on another node: answering it sends the
/// reply back over the connection. Dropped unanswered, it reports why.
pub(crate) trait RemoteReplySink<R>: Send + Sync {
    /// Sends `reply`; `false` if it could not go.
    fn reply(self: Box<Self>, reply: R) -> bool;
    /// The sink as `Any`, for the layer to take back (a reply handle sent
    /// on to a third node).
    fn as_any(&self) -> &dyn Any;
}
