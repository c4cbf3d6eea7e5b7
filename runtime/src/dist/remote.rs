//! Messages across nodes: what a remote-capable message is, how a process
//! learns to decode its messages from the wire, and delivery of received
//! messages into mailboxes.
//!
//! A process accepts remote messages once its `Pid` has been serialized
//! (sent to another node inside a message) or it has called
//! [`Context::enable_remote`](crate::Context::enable_remote): both happen
//! where the message type is known to be deserializable, and install a
//! decoder for it. A message whose type tag does not match the receiving
//! process's type, or that does not decode, is dropped, logged with the
//! expected type name and counted as a dead letter; the sender and the
//! connection are unaffected.
//!
//! # Cost
//! A remote send encodes the message once (postcard) and queues one frame
//! for the connection's writer; the receiver decodes it straight into the
//! mailbox envelope.

use super::Dist;
use super::proto::WirePid;
use crate::node::Node;
use crate::pid::ProcessId;
use crate::process::{ProcessDyn, ProcessShared};
use crate::trace::TraceContext;
pub(crate) use crate::transport::RemoteMessage;
use crate::transport::{DeliveryError, Incoming};
use serde::Serialize;
use std::cell::RefCell;
use std::sync::{Arc, Weak};

/// A stable tag for a message type: FNV-1a of its Rust type name. Nodes
/// built from the same code agree on it.
pub(crate) fn type_tag<M: ?Sized>() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::any::type_name::<M>().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The decoder of a plain process.
fn decode_plain<M: RemoteMessage>(input: &Incoming<'_>) -> Result<M, DeliveryError> {
    let expected = std::any::type_name::<M>();
    if input.tag != type_tag::<M>() {
        return Err(DeliveryError::TypeMismatch {
            expected,
            got: input.tag,
        });
    }
    postcard::from_bytes(input.payload).map_err(|e| DeliveryError::Malformed {
        expected,
        error: e.to_string(),
    })
}

impl<M: RemoteMessage> ProcessShared<M> {
    /// Lets the process take messages from other nodes: installs the
    /// decoder of its message type.
    pub(crate) fn enable_remote(&self) {
        self.remote.get_or_init(|| decode_plain::<M>);
    }
}

/// Encodes a message for the wire, sizing the buffer first so a large
/// message is written once, without regrowing.
pub(crate) fn encode<M: Serialize>(msg: &M) -> Result<Vec<u8>, postcard::Error> {
    SIZING.with(|s| s.set(true));
    let size = postcard::experimental::serialized_size(msg);
    SIZING.with(|s| s.set(false));
    postcard::to_extend(msg, Vec::with_capacity(size?))
}

thread_local! {
    /// Set while a message is only being measured: serializers with side
    /// effects (a call's reply handle parks its caller) must not act then.
    static SIZING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the current serialization only measures the size.
pub(crate) fn sizing() -> bool {
    SIZING.with(std::cell::Cell::get)
}

/// What the decoding thread knows: the node, and the process the message
/// is for (a decoded reply handle remembers it, to report its exit).
struct Decoding {
    node: Node,
    target: Option<Weak<dyn ProcessDyn>>,
}

/// What the encoding thread knows: the node a message is being encoded
/// for, and the id of a call's reply handle encoded in it.
struct Encoding {
    dist: Arc<Dist>,
    peer: String,
    reply_id: Option<u64>,
}

thread_local! {
    static DECODING: RefCell<Option<Decoding>> = const { RefCell::new(None) };
    static ENCODING: RefCell<Option<Encoding>> = const { RefCell::new(None) };
}

/// Sets the decoding context for its lifetime.
pub(crate) struct DecodingGuard {
    prev: Option<Decoding>,
}

impl DecodingGuard {
    pub(crate) fn new(node: &Node, target: Option<Weak<dyn ProcessDyn>>) -> Self {
        let prev = DECODING.with(|d| {
            d.replace(Some(Decoding {
                node: node.clone(),
                target,
            }))
        });
        DecodingGuard { prev }
    }
}

impl Drop for DecodingGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        DECODING.with(|d| *d.borrow_mut() = prev);
    }
}

/// The node decoding on this thread, if any.
pub(crate) fn decoding_node() -> Option<Node> {
    DECODING.with(|d| d.borrow().as_ref().map(|d| d.node.clone()))
}

/// The process the message being decoded is for.
pub(crate) fn decoding_target() -> Option<Weak<dyn ProcessDyn>> {
    DECODING.with(|d| d.borrow().as_ref().and_then(|d| d.target.clone()))
}

/// Runs `encode` for a message bound to `peer`; returns its result and the
/// id of the call reply handle it parked, if any.
pub(crate) fn encoding_for<R>(
    dist: &Arc<Dist>,
    peer: &str,
    encode: impl FnOnce() -> R,
) -> (R, Option<u64>) {
    let prev = ENCODING.with(|e| {
        e.replace(Some(Encoding {
            dist: dist.clone(),
            peer: peer.to_owned(),
            reply_id: None,
        }))
    });
    let r = encode();
    let reply_id = ENCODING.with(|e| {
        let mine = e.replace(prev);
        mine.and_then(|m| m.reply_id)
    });
    (r, reply_id)
}

/// Parks a reply completion for the message being encoded; returns the id.
pub(crate) fn park_reply(completion: super::replies::Completion) -> Option<(u64, Arc<Dist>)> {
    ENCODING.with(|e| {
        let mut e = e.borrow_mut();
        let enc = e.as_mut()?;
        let id = enc.dist.replies().register(enc.peer.clone(), completion);
        enc.reply_id = Some(id);
        Some((id, enc.dist.clone()))
    })
}

/// Delivers one received message to a local process.
pub(crate) fn deliver(
    node: &Node,
    target: Option<Arc<dyn ProcessDyn>>,
    input: Incoming<'_>,
    from: ProcessId,
    trace: Option<TraceContext>,
    describe_target: &dyn Fn() -> String,
) {
    let result = match target {
        None => Err(DeliveryError::NoProcess),
        Some(p) => {
            let _guard = DecodingGuard::new(node, Some(Arc::downgrade(&p)));
            p.deliver_remote(&input, from, trace)
        }
    };
    if let Err(e) = result {
        node.count_dead_letter();
        match e {
            DeliveryError::NoProcess => tracing::debug!(
                to = %describe_target(),
                from = %from,
                "dead letter: remote message for a process that does not exist"
            ),
            e => tracing::warn!(
                to = %describe_target(),
                from = %from,
                error = %e,
                "dropped a remote message"
            ),
        }
    }
}

impl Node {
    /// The name of the node `id` belongs to (this node's for index 0),
    /// if this node knows it.
    pub fn node_of(&self, id: ProcessId) -> Option<String> {
        if id.node == 0 {
            return Some(self.name().to_owned());
        }
        let (name, _creation) = self.dist()?.node_table().get(id.node)?;
        Some(name.to_string())
    }

    /// The local form of a wire process id.
    pub(crate) fn process_id(&self, wire: &WirePid) -> ProcessId {
        match self.dist() {
            Some(d) => d.process_id(wire),
            None => ProcessId {
                node: u32::MAX,
                serial: wire.serial,
                creation: wire.creation,
            },
        }
    }
}
