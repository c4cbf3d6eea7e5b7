//! Process identifiers: the untyped [`ProcessId`] and the typed, sendable
//! [`Pid<M>`].
//!
//! A `Pid<M>` holds a direct reference to the process's mailbox, so a local
//! send never looks anything up. Sending to a dead process is silent, as on
//! the BEAM, and counted as a dead letter.

use crate::error::SendError;
use crate::mailbox::{Envelope, PushError};
use crate::node::Node;
use crate::process::{self, ProcessShared};
use crate::signal::Item;
use crate::trace;
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

/// A typed handle to a process accepting messages of type `M`.
///
/// Cheap to clone (one reference-count increment), `Send` and `Sync`.
pub struct Pid<M> {
    pub(crate) shared: Arc<ProcessShared<M>>,
}

impl<M: Message> Pid<M> {
    /// The untyped id of the process.
    pub fn id(&self) -> ProcessId {
        self.shared.core.id
    }

    /// The node the process lives on.
    pub fn node(&self) -> &Node {
        &self.shared.core.node
    }

    /// Whether the process is still alive.
    pub fn is_alive(&self) -> bool {
        !self.shared.core.has_exited()
    }

    /// The exit reason, once the process has exited.
    pub fn exit_reason(&self) -> Option<crate::ExitReason> {
        self.shared.core.exit_reason()
    }

    /// Resolves to the exit reason once the process has exited (at once if
    /// it already has). Registers interest when called, not when polled.
    pub fn exited(&self) -> impl std::future::Future<Output = crate::ExitReason> + Send + 'static {
        let rx = process::exit_waiter(&self.shared.core);
        async move { rx.await.unwrap_or(crate::ExitReason::NoProc) }
    }

    /// Sends `msg`. Never blocks and never fails: a message to a dead
    /// process, or to a full bounded mailbox, is dropped and counted as a
    /// dead letter.
    #[inline]
    pub fn send(&self, msg: M) {
        if let Err(e) = self
            .shared
            .mailbox
            .push(self.envelope(Item::Msg(msg)), true)
        {
            self.dead_letter(&e);
        }
    }

    /// Sends `msg` if there is room.
    ///
    /// # Errors
    /// [`SendError::Full`] if the mailbox is bounded and full;
    /// [`SendError::NoProcess`] if the process is dead. Either way the
    /// message is handed back (and so not counted as a dead letter).
    pub fn try_send(&self, msg: M) -> Result<(), SendError<M>> {
        match self
            .shared
            .mailbox
            .push(self.envelope(Item::Msg(msg)), true)
        {
            Ok(()) => Ok(()),
            Err(e) => Err(self.send_error(e)),
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
        let env = self.envelope(Item::Msg(msg));
        match self.shared.mailbox.push_wait(env).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.send_error(e)),
        }
    }

    #[inline]
    fn envelope(&self, item: Item<M>) -> Envelope<M> {
        Envelope {
            item,
            from: process::note_send().unwrap_or(ProcessId::NONE),
            at: self.shared.core.node.clock().now_ns(),
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
        self.shared.core.node.count_dead_letter();
        tracing::debug!(
            to = %self.id(),
            message_type = std::any::type_name::<M>(),
            why,
            "dead letter"
        );
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
            shared: self.shared.clone(),
        }
    }
}

impl<M> PartialEq for Pid<M> {
    fn eq(&self, other: &Self) -> bool {
        self.shared.core.id == other.shared.core.id
    }
}

impl<M> Eq for Pid<M> {}

impl<M> Hash for Pid<M> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.shared.core.id.hash(state)
    }
}

impl<M> fmt::Debug for Pid<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.shared.core.id, f)
    }
}

impl<M> fmt::Display for Pid<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.shared.core.id, f)
    }
}
