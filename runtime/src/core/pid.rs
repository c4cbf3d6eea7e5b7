//! Process identifiers: the untyped [`ProcessId`] and the typed, sendable
//! [`Pid<M>`].
//!
//! A `Pid<M>` holds a direct reference to the process's mailbox, so a local
//! send never looks anything up. Sending to a dead process is silent, as on
//! the BEAM, and counted as a dead letter.

use crate::error::SendError;
pub use crate::id::{Message, ProcessId};
use crate::mailbox::{Envelope, PushError};
use crate::node::Node;
use crate::process::{self, ProcessShared};
use crate::signal::Item;
use crate::trace;
use crate::transport::{ParkedReply, RemoteRoute};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A typed handle to a process accepting messages of type `M`, on this
/// node or another one (location transparency: `send` is the same call).
///
/// Cheap to clone (one reference-count increment), `Send` and `Sync`.
pub struct Pid<M> {
    pub(crate) route: Route<M>,
}

pub(crate) enum Route<M> {
    Local(Arc<ProcessShared<M>>),
    /// Through the distribution layer (see [`crate::transport`]), from
    /// the local node `via`.
    Remote {
        via: Node,
        route: Arc<dyn RemoteRoute<M>>,
    },
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
            Route::Remote { .. } => None,
        }
    }

    /// The untyped id of the process.
    pub fn id(&self) -> ProcessId {
        match &self.route {
            Route::Local(s) => s.core.id(),
            Route::Remote { route, .. } => route.id(),
        }
    }

    /// The local node: the one the process lives on, or, for a remote
    /// process, the one that routes messages to it.
    pub fn node(&self) -> &Node {
        match &self.route {
            Route::Local(s) => &s.core.node,
            Route::Remote { via, .. } => via,
        }
    }

    /// The name of the node the process lives on.
    pub fn node_name(&self) -> &str {
        match &self.route {
            Route::Local(s) => s.core.node.name(),
            Route::Remote { route, .. } => route.node_name(),
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
            Route::Remote { via, route } => via
                .transport()
                .is_some_and(|t| t.is_connected(route.node_name())),
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
            Route::Remote { via, route } => Some((
                via.transport().map(|t| t.events()),
                route.node_name().to_owned(),
            )),
            Route::Local(_) => None,
        };
        async move {
            if let Some(rx) = waiter {
                return rx.await.unwrap_or(crate::ExitReason::NoProc);
            }
            if let Some((Some(mut events), name)) = lost {
                while let Ok(e) = events.recv().await {
                    if matches!(&e, crate::transport::NodeEvent::Down { node, .. } if *node == name)
                    {
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
                if let Err(e) = shared.mailbox.push(
                    self.envelope(shared, Item::Msg(msg)),
                    true,
                    &shared.core.counts,
                ) {
                    self.dead_letter(&e);
                }
            }
            Route::Remote { via, route } => {
                if route.send(&msg).is_err() {
                    via.count_dead_letter();
                }
            }
        }
    }

    /// Sends `msg` and, for a remote process, returns the call reply
    /// handle parked while encoding it. `Err` if it could not go.
    pub(crate) async fn send_tracked(&self, msg: M) -> Result<Option<ParkedReply>, SendError<M>> {
        match &self.route {
            Route::Local(_) => self.send_wait(msg).await.map(|()| None),
            Route::Remote { route, .. } => match route.send(&msg) {
                Ok(parked) => Ok(parked),
                Err(()) => Err(SendError::NoProcess(msg)),
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
                .push(
                    self.envelope(shared, Item::Msg(msg)),
                    true,
                    &shared.core.counts,
                )
                .map_err(|e| self.send_error(e)),
            Route::Remote { route, .. } => match route.send(&msg) {
                Ok(_) => Ok(()),
                Err(()) => Err(SendError::NoProcess(msg)),
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
                    .push_wait(env, &shared.core.counts)
                    .await
                    .map_err(|e| self.send_error(e))
            }
            Route::Remote { .. } => self.try_send(msg),
        }
    }

    /// A sent message's envelope. Sent from a process of the same node,
    /// it is stamped with the start of the sender's poll (no clock read;
    /// see [`process::note_send_to`]); from elsewhere, with the clock.
    #[inline]
    fn envelope(&self, shared: &ProcessShared<M>, item: Item<M>) -> Envelope<M> {
        let node = &shared.core.node;
        let (from, at) = process::note_send_to(node).unwrap_or((ProcessId::NONE, None));
        Envelope {
            item,
            from,
            at: at.unwrap_or_else(|| node.clock().now_ns()),
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
                Route::Remote { via, route } => Route::Remote {
                    via: via.clone(),
                    route: route.clone(),
                },
            },
        }
    }
}

impl<M: 'static> Pid<M> {
    fn raw_id(&self) -> ProcessId {
        match &self.route {
            Route::Local(s) => s.core.id(),
            Route::Remote { route, .. } => route.id(),
        }
    }
}

impl<M: 'static> PartialEq for Pid<M> {
    fn eq(&self, other: &Self) -> bool {
        self.raw_id() == other.raw_id()
    }
}

impl<M: 'static> Eq for Pid<M> {}

impl<M: 'static> Hash for Pid<M> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw_id().hash(state)
    }
}

impl<M: 'static> fmt::Debug for Pid<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.raw_id(), f)
    }
}

impl<M: 'static> fmt::Display for Pid<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.raw_id(), f)
    }
}

#[cfg(test)]
mod tests {
    /// A pid is three words whichever node its process lives on: the remote
    /// route's node handle shares the enum's room with a local record.
    #[test]
    fn a_pid_is_three_words() {
        assert_eq!(
            std::mem::size_of::<super::Pid<u64>>(),
            3 * std::mem::size_of::<usize>()
        );
    }
}
