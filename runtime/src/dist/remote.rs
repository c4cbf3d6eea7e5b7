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

use super::frame::WirePid;
use super::mesh::Mesh;
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
    let decoded = postcard::from_bytes(input.payload);
    let left = OUT_OF_BAND.with(|o| {
        let mut o = o.borrow_mut();
        o.as_mut().map(|o| (o.rest.len(), o.error.take()))
    });
    match (decoded, left) {
        (Ok(m), None | Some((0, None))) => Ok(m),
        (Ok(_), Some((n, _))) => Err(DeliveryError::Malformed {
            expected,
            error: format!("{n} out-of-band bytes left over by the message"),
        }),
        (Err(e), left) => Err(DeliveryError::Malformed {
            expected,
            error: left
                .and_then(|(_, why)| why)
                .unwrap_or_else(|| e.to_string()),
        }),
    }
}

/// The plain decoder of `M`, as a static the process record can point to.
struct Plain<M>(std::marker::PhantomData<M>);

impl<M: RemoteMessage> Plain<M> {
    const DECODER: &'static crate::transport::Decoder<M> = &(decode_plain::<M> as _);
}

impl<M: RemoteMessage> ProcessShared<M> {
    /// Lets the process take messages from other nodes: installs the
    /// decoder of its message type.
    pub(crate) fn enable_remote(&self) {
        self.set_remote(Plain::<M>::DECODER);
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
/// for, the id of a call's reply handle encoded in it, and the payloads
/// that go out of band.
struct Encoding {
    mesh: Arc<Mesh>,
    peer: String,
    reply_id: Option<u64>,
    out_of_band: Vec<bytes::Bytes>,
}

/// The out-of-band bytes of the message being decoded, not yet claimed.
struct OutOfBand {
    rest: bytes::Bytes,
    /// Whether payloads may be slices of the frame (else each is copied).
    slice: bool,
    /// Why a payload could not be taken (the decoder's own error loses it).
    error: Option<String>,
}

/// Out-of-band payloads at least this long are slices of the frame they
/// came in (when the frame allows it); shorter ones are copied.
const SLICE_MIN: usize = 64 * 1024;

thread_local! {
    static DECODING: RefCell<Option<Decoding>> = const { RefCell::new(None) };
    static ENCODING: RefCell<Option<Encoding>> = const { RefCell::new(None) };
    static OUT_OF_BAND: RefCell<Option<OutOfBand>> = const { RefCell::new(None) };
}

/// While a [`Payload`](crate::Payload) is serialized for a message sent to
/// another node: takes it out of band (except when only measuring) and
/// says so; `false` anywhere else.
pub(crate) fn out_of_band(bytes: &bytes::Bytes) -> bool {
    let measuring = sizing();
    ENCODING.with(|e| match e.borrow_mut().as_mut() {
        Some(enc) => {
            if !measuring {
                enc.out_of_band.push(bytes.clone());
            }
            true
        }
        None => false,
    })
}

/// The next `len` out-of-band bytes of the message being decoded.
pub(crate) fn take_out_of_band(len: u64) -> Result<bytes::Bytes, String> {
    OUT_OF_BAND.with(|o| {
        let mut o = o.borrow_mut();
        let Some(o) = o.as_mut() else {
            return Err("an out-of-band payload in bytes that carry none".to_owned());
        };
        let have = o.rest.len();
        let Some(len) = usize::try_from(len).ok().filter(|&l| l <= have) else {
            let why = format!("an out-of-band payload of {len} bytes, {have} left in the frame");
            o.error = Some(why.clone());
            return Err(why);
        };
        let taken = o.rest.split_to(len);
        Ok(if o.slice && len >= SLICE_MIN {
            taken
        } else {
            bytes::Bytes::copy_from_slice(&taken)
        })
    })
}

/// Makes a message's out-of-band bytes available to its decoding, for its
/// lifetime.
pub(crate) struct OutOfBandGuard {
    prev: Option<OutOfBand>,
}

impl OutOfBandGuard {
    /// `slice`: whether payloads may keep slices of `rest`'s buffer.
    pub(crate) fn new(rest: bytes::Bytes, slice: bool) -> Self {
        let prev = OUT_OF_BAND.with(|o| {
            o.replace(Some(OutOfBand {
                rest,
                slice,
                error: None,
            }))
        });
        OutOfBandGuard { prev }
    }
}

impl Drop for OutOfBandGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        OUT_OF_BAND.with(|o| *o.borrow_mut() = prev);
    }
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

/// What encoding a message for another node left besides its bytes.
pub(crate) struct Encoded {
    /// The id of the call reply handle it parked, if any.
    pub(crate) reply_id: Option<u64>,
    /// Its out-of-band payloads, in order.
    pub(crate) out_of_band: Vec<bytes::Bytes>,
}

/// Runs `encode` for a message bound to `peer`; returns its result, and
/// the reply handle and out-of-band payloads it left.
pub(crate) fn encoding_for<R>(
    mesh: &Arc<Mesh>,
    peer: &str,
    encode: impl FnOnce() -> R,
) -> (R, Encoded) {
    let prev = ENCODING.with(|e| {
        e.replace(Some(Encoding {
            mesh: mesh.clone(),
            peer: peer.to_owned(),
            reply_id: None,
            out_of_band: Vec::new(),
        }))
    });
    let r = encode();
    let mine = ENCODING.with(|e| e.replace(prev));
    let encoded = match mine {
        Some(m) => Encoded {
            reply_id: m.reply_id,
            out_of_band: m.out_of_band,
        },
        None => Encoded {
            reply_id: None,
            out_of_band: Vec::new(),
        },
    };
    (r, encoded)
}

/// Parks a reply completion for the message being encoded; returns the id,
/// and the mesh it is parked in.
pub(crate) fn park_reply(completion: super::replies::Completion) -> Option<(u64, Arc<Mesh>)> {
    ENCODING.with(|e| {
        let mut e = e.borrow_mut();
        let enc = e.as_mut()?;
        let id = enc.mesh.replies().register(enc.peer.clone(), completion);
        enc.reply_id = Some(id);
        Some((id, enc.mesh.clone()))
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

impl super::Distribution<'_> {
    /// The name of the node `id` belongs to (this node's for index 0),
    /// if this node knows it.
    pub fn node_of(&self, id: ProcessId) -> Option<String> {
        self.node_at(id.node)
    }

    /// The name of the node at `index` of this node's node table (the
    /// first part of a pid as the runtime writes it, `<1.8.40253>`; 0 is
    /// this node), if this node knows it.
    pub fn node_at(&self, index: u32) -> Option<String> {
        if index == 0 {
            return Some(self.node.name().to_owned());
        }
        let (name, _creation) = self.node.dist_layer()?.mesh.node_table().get(index)?;
        Some(name.to_string())
    }
}

impl Node {
    /// The local form of a wire process id.
    pub(crate) fn process_id(&self, wire: &WirePid) -> ProcessId {
        match self.dist_layer() {
            Some(d) => d.mesh.process_id(wire),
            None => ProcessId {
                node: u32::MAX,
                serial: wire.serial,
                creation: wire.creation,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_out_of_band_payloads_are_slices_of_the_frame_and_small_ones_copies() {
        let rest = bytes::Bytes::from(vec![5u8; SLICE_MIN + 5_000]);
        let base = rest.as_ptr();
        {
            let _g = OutOfBandGuard::new(rest.clone(), true);
            let big = take_out_of_band(SLICE_MIN as u64).unwrap();
            assert_eq!(big.as_ptr(), base, "sliced, not copied");
            let small = take_out_of_band(4_000).unwrap();
            assert_ne!(small.as_ptr(), base.wrapping_add(SLICE_MIN));
            assert_eq!(&small[..], &[5u8; 4_000][..]);
            let e = take_out_of_band(2_000).unwrap_err();
            assert_eq!(
                e,
                "an out-of-band payload of 2000 bytes, 1000 left in the frame"
            );
        }
        {
            let _g = OutOfBandGuard::new(rest, false);
            let copied = take_out_of_band(SLICE_MIN as u64).unwrap();
            assert_ne!(copied.as_ptr(), base, "the frame may not be pinned");
        }
        assert!(take_out_of_band(1).is_err(), "no frame: nothing to take");
    }
}
