//! Process identifiers: the untyped [`ProcessId`] and the typed, sendable
//! [`Pid<M>`].
//!
//! A `Pid<M>` holds a direct reference to the process's mailbox, so a local
//! send never looks anything up. Sending to a dead process is silent, as on
//! the BEAM, and counted as a dead letter.

use crate::dist::PeerCache;
use crate::dist::proto::{Frame, MsgKind, Target, WirePid};
use crate::dist::remote::{self, RemoteMessage};
use crate::error::SendError;
use crate::mailbox::{Envelope, PushError};
use crate::node::Node;
use crate::process::{self, ProcessShared};
use crate::signal::Item;
use crate::trace;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// What a message must be: sendable across threads, and `Debug` so an
/// observer can render the head of a mailbox.
pub trait Message: Send + fmt::Debug + 'static {}
impl<T: Send + fmt::Debug + 'static> Message for T {}

/// The identity of a process: node index, serial number and node creation.
///
/// Displayed as OTP displays pids, `<node.serial.creation>`, where node `0`
/// is the local node. The creation changes on every node start, so an id
/// from an earlier incarnation never names a live process.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessId {
    pub(crate) node: u32,
    pub(crate) serial: u64,
    pub(crate) creation: u32,
}

impl ProcessId {
    /// "No process": the sender of a message sent from outside any process.
    pub(crate) const NONE: ProcessId = ProcessId {
        node: 0,
        serial: 0,
        creation: 0,
    };

    /// Index of the node in this node's node table; `0` is the local node.
    pub fn node_index(&self) -> u32 {
        self.node
    }

    /// Serial number, unique on its node incarnation.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// Creation of the node incarnation the process belongs to.
    pub fn creation(&self) -> u32 {
        self.creation
    }
}

impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}.{}.{}>", self.node, self.serial, self.creation)
    }
}

impl fmt::Debug for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A typed handle to a process accepting messages of type `M`, on this
/// node or another one (location transparency: `send` is the same call).
///
/// Cheap to clone (one reference-count increment), `Send` and `Sync`.
pub struct Pid<M> {
    pub(crate) route: Route<M>,
}

pub(crate) enum Route<M> {
    Local(Arc<ProcessShared<M>>),
    Remote(Arc<RemoteRoute<M>>),
}

/// How to reach a process on another node.
pub(crate) struct RemoteRoute<M> {
    pub(crate) id: ProcessId,
    /// The node it lives on.
    pub(crate) node: String,
    /// The process there: by serial or by registered name.
    pub(crate) target: Target,
    /// The local node that routes to it.
    pub(crate) via: Node,
    pub(crate) tag: u64,
    pub(crate) encode: fn(&M) -> Result<Vec<u8>, postcard::Error>,
    pub(crate) peer: PeerCache,
}

impl<M: Message> Pid<M> {
    pub(crate) fn local(shared: Arc<ProcessShared<M>>) -> Self {
        Pid {
            route: Route::Local(shared),
        }
    }

    /// The local process record, for a process of this node.
    pub(crate) fn shared(&self) -> Option<&Arc<ProcessShared<M>>> {
        match &self.route {
            Route::Local(s) => Some(s),
            Route::Remote(_) => None,
        }
    }

    /// The untyped id of the process.
    pub fn id(&self) -> ProcessId {
        match &self.route {
            Route::Local(s) => s.core.id,
            Route::Remote(r) => r.id,
        }
    }

    /// The local node: the one the process lives on, or, for a remote
    /// process, the one that routes messages to it.
    pub fn node(&self) -> &Node {
        match &self.route {
            Route::Local(s) => &s.core.node,
            Route::Remote(r) => &r.via,
        }
    }

    /// The name of the node the process lives on.
    pub fn node_name(&self) -> &str {
        match &self.route {
            Route::Local(s) => s.core.node.name(),
            Route::Remote(r) => &r.node,
        }
    }

    /// Whether the process lives on this node.
    pub fn is_local(&self) -> bool {
        matches!(self.route, Route::Local(_))
    }

    /// Whether the process is still alive. For a remote process: whether
    /// its node is connected (its own exit is learnt through a monitor).
    pub fn is_alive(&self) -> bool {
        match &self.route {
            Route::Local(s) => !s.core.has_exited(),
            Route::Remote(r) => r.via.nodes_all().iter().any(|n| *n == r.node),
        }
    }

    /// The exit reason, once a local process has exited.
    pub fn exit_reason(&self) -> Option<crate::ExitReason> {
        self.shared().and_then(|s| s.core.exit_reason())
    }

    /// Resolves to the exit reason once a local process has exited (at once
    /// if it already has); registers interest when called, not when polled.
    /// For a remote process it resolves with `noconnection` when the
    /// connection to its node is lost; monitor it from a process to learn
    /// of its exit.
    pub fn exited(&self) -> impl std::future::Future<Output = crate::ExitReason> + Send + 'static {
        let waiter = self.shared().map(|s| process::exit_waiter(&s.core));
        let lost = match &self.route {
            Route::Remote(r) => Some((r.via.node_events(), r.node.clone())),
            Route::Local(_) => None,
        };
        async move {
            if let Some(rx) = waiter {
                return rx.await.unwrap_or(crate::ExitReason::NoProc);
            }
            if let Some((Some(mut events), name)) = lost {
                while let Ok(e) = events.recv().await {
                    if matches!(&e, crate::dist::NodeEvent::Down { node, .. } if *node == name) {
                        break;
                    }
                }
            }
            crate::ExitReason::NoConnection
        }
    }

    /// Sends `msg`. Never blocks and never fails: a message to a dead
    /// process, to a full bounded mailbox or to a node that is not
    /// connected is dropped and counted as a dead letter.
    #[inline]
    pub fn send(&self, msg: M) {
        match &self.route {
            Route::Local(shared) => {
                if let Err(e) = shared
                    .mailbox
                    .push(self.envelope(shared, Item::Msg(msg)), true)
                {
                    self.dead_letter(&e);
                }
            }
            Route::Remote(r) => {
                if r.send(&msg).is_none() {
                    r.via.count_dead_letter();
                }
            }
        }
    }

    /// Sends `msg` and, for a remote process, returns the id of a call
    /// reply handle parked while encoding it. `Err` if it could not go.
    pub(crate) async fn send_tracked(&self, msg: M) -> Result<Option<u64>, SendError<M>> {
        match &self.route {
            Route::Local(_) => self.send_wait(msg).await.map(|()| None),
            Route::Remote(r) => match r.send(&msg) {
                Some(reply_id) => Ok(reply_id),
                None => Err(SendError::NoProcess(msg)),
            },
        }
    }

    /// Sends `msg` if there is room.
    ///
    /// # Errors
    /// [`SendError::Full`] if the mailbox is bounded and full;
    /// [`SendError::NoProcess`] if the process is dead (or, for a remote
    /// process, its node is not connected). Either way the message is
    /// handed back (and so not counted as a dead letter).
    pub fn try_send(&self, msg: M) -> Result<(), SendError<M>> {
        match &self.route {
            Route::Local(shared) => shared
                .mailbox
                .push(self.envelope(shared, Item::Msg(msg)), true)
                .map_err(|e| self.send_error(e)),
            Route::Remote(r) => match r.send(&msg) {
                Some(_) => Ok(()),
                None => Err(SendError::NoProcess(msg)),
            },
        }
    }

    /// Sends `msg`, waiting for room if the mailbox is bounded and full.
    ///
    /// # Errors
    /// [`SendError::NoProcess`] if the process is dead or dies while waiting.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes drops the message.
    pub async fn send_wait(&self, msg: M) -> Result<(), SendError<M>> {
        match &self.route {
            Route::Local(shared) => {
                let env = self.envelope(shared, Item::Msg(msg));
                shared
                    .mailbox
                    .push_wait(env)
                    .await
                    .map_err(|e| self.send_error(e))
            }
            Route::Remote(_) => self.try_send(msg),
        }
    }

    #[inline]
    fn envelope(&self, shared: &ProcessShared<M>, item: Item<M>) -> Envelope<M> {
        Envelope {
            item,
            from: process::note_send().unwrap_or(ProcessId::NONE),
            at: shared.core.node.clock().now_ns(),
            trace: trace::current_context().map(Box::new),
        }
    }

    /// The message goes back to the caller, so it is not a dead letter.
    fn send_error(&self, e: PushError<M>) -> SendError<M> {
        match e {
            PushError::Closed(env) => SendError::NoProcess(unwrap_msg(env)),
            PushError::Full(env) => SendError::Full(unwrap_msg(env)),
        }
    }

    #[cold]
    fn dead_letter(&self, e: &PushError<M>) {
        let why = match e {
            PushError::Closed(_) => "noproc",
            PushError::Full(_) => "mailbox_full",
        };
        self.node().count_dead_letter();
        tracing::debug!(
            to = %self.id(),
            message_type = std::any::type_name::<M>(),
            why,
            "dead letter"
        );
    }
}

impl<M> RemoteRoute<M> {
    /// Encodes and queues `msg` for the connection. `None` if it cannot go;
    /// otherwise the id of a call reply handle parked while encoding.
    fn send(&self, msg: &M) -> Option<Option<u64>> {
        let dist = self.via.dist()?;
        let (payload, reply_id) = remote::encoding_for(dist, &self.node, || (self.encode)(msg));
        let payload = match payload {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(to = %self.id, node = %self.node, error = %e, "cannot encode a remote message");
                if let Some(id) = reply_id {
                    dist.replies().cancel(id);
                }
                return None;
            }
        };
        let from = process::note_send()
            .filter(|id| id.node == 0)
            .map(|id| id.serial);
        let frame = Frame::Message {
            to: self.target.clone(),
            from,
            kind: MsgKind::Send,
            tag: self.tag,
            trace: trace::current_context(),
            payload,
        };
        if dist.send_frame(&self.peer, &self.node, frame) {
            if let Some(p) = self.peer.read().as_ref() {
                dist.check_busy(p);
            }
            Some(reply_id)
        } else {
            if let Some(id) = reply_id {
                dist.replies().cancel(id);
            }
            None
        }
    }
}

impl<M: RemoteMessage> Pid<M> {
    /// Lets this (local) process take messages from other nodes, from now
    /// on: call it right after spawning, before its pid or name is known
    /// elsewhere. A no-op for a remote pid. Sending the pid to another node
    /// does this too.
    pub fn enable_remote(&self) {
        if let Route::Local(shared) = &self.route {
            shared.enable_remote();
        }
    }
}

impl<M: RemoteMessage> Serialize for Pid<M> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.route {
            Route::Local(shared) => {
                // The pid is leaving the node: its process must now accept
                // remote messages.
                shared.enable_remote();
                WirePid {
                    node: shared.core.node.name().to_owned(),
                    creation: shared.core.id.creation,
                    serial: shared.core.id.serial,
                }
                .serialize(s)
            }
            Route::Remote(r) => match &r.target {
                Target::Pid { serial, creation } => WirePid {
                    node: r.node.clone(),
                    creation: *creation,
                    serial: *serial,
                }
                .serialize(s),
                Target::Name(name) => Err(serde::ser::Error::custom(format!(
                    "the name-routed pid {{{name}, {}}} cannot be sent in a message",
                    r.node
                ))),
            },
        }
    }
}

impl<'de, M: RemoteMessage> Deserialize<'de> for Pid<M> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = WirePid::deserialize(d)?;
        let node = remote::decoding_node().ok_or_else(|| {
            serde::de::Error::custom("a Pid can only be decoded by a node receiving a message")
        })?;
        Ok(node.pid_from_wire(wire))
    }
}

impl Node {
    /// A handle to the process `wire` names: the live local process if it
    /// is ours and of type `M`, otherwise a route through the connection
    /// to its node (which counts sends as dead letters if the process or
    /// the connection is gone).
    pub(crate) fn pid_from_wire<M: RemoteMessage>(&self, wire: WirePid) -> Pid<M> {
        let id = self.process_id(&wire);
        if id.node == 0 {
            if let Ok(pid) = self.pid::<M>(id) {
                return pid;
            }
        }
        let target = Target::Pid {
            serial: wire.serial,
            creation: wire.creation,
        };
        Pid::remote(self, id, wire.node, target)
    }
}

impl<M: RemoteMessage> Pid<M> {
    /// A route through `via`'s connection to `target` on `node`.
    pub(crate) fn remote(via: &Node, id: ProcessId, node: String, target: Target) -> Self {
        Pid {
            route: Route::Remote(Arc::new(RemoteRoute {
                id,
                node,
                target,
                via: via.clone(),
                tag: remote::type_tag::<M>(),
                encode: remote::encode::<M>,
                peer: PeerCache::default(),
            })),
        }
    }
}

fn unwrap_msg<M>(env: Envelope<M>) -> M {
    match env.item {
        Item::Msg(m) => m,
        _ => unreachable!("send_error is only called for user messages"),
    }
}

impl<M> Clone for Pid<M> {
    fn clone(&self) -> Self {
        Pid {
            route: match &self.route {
                Route::Local(s) => Route::Local(s.clone()),
                Route::Remote(r) => Route::Remote(r.clone()),
            },
        }
    }
}

impl<M> Pid<M> {
    fn raw_id(&self) -> ProcessId {
        match &self.route {
            Route::Local(s) => s.core.id,
            Route::Remote(r) => r.id,
        }
    }
}

impl<M> PartialEq for Pid<M> {
    fn eq(&self, other: &Self) -> bool {
        self.raw_id() == other.raw_id()
    }
}

impl<M> Eq for Pid<M> {}

impl<M> Hash for Pid<M> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw_id().hash(state)
    }
}

impl<M> fmt::Debug for Pid<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.raw_id(), f)
    }
}

impl<M> fmt::Display for Pid<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.raw_id(), f)
    }
}
