//! [`Payload`]: bytes a message carries to another node without being
//! copied into the frame, or out of it. What it guarantees and costs is on
//! the type.

use bytes::Bytes;
use serde::de::{Deserializer, Error as _};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Deref;

/// Shared, immutable bytes that cross nodes without copies.
///
/// A message field of type `Payload` (rather than `Vec<u8>`) is sent the
/// way the BEAM sends a large binary: the frame holds a marker with its
/// length, and the bytes themselves follow the frame's other contents,
/// written from the sender's own buffer with vectored writes. The
/// receiving node hands the message a slice of the frame it read, so a
/// 1 MiB payload is copied only by the kernel, once on each side.
///
/// # When the bytes go out of band
/// - Payloads of at least [`Payload::OUT_OF_BAND_MIN`] (4 KiB) in a
///   message sent to a process on another node. Smaller ones, and
///   payloads in call replies, remote-spawn arguments and anything
///   encoded outside a send (PubSub encodes each message once for every
///   node), are written inline, like a `Vec<u8>`.
/// - The receiver slices the frame only for large out-of-band payloads
///   (≥ 64 KiB) of a frame that is mostly those payloads; it copies the
///   others, so a small payload kept in a mailbox never pins a large read
///   buffer. Either way a received payload holds at most the frame it came
///   in (bounded by the connection's frame limit).
/// - A `Serialize` implementation of your own that encodes a message into
///   bytes while the message is being sent (a nested `postcard::to_vec`
///   inside `serialize`) would move its payloads out of the nested bytes:
///   decoding those bytes later fails with a clear error. Encode such
///   fields as `Vec<u8>`, or encode before sending.
///
/// With a human-readable format (JSON) a payload is a plain byte string.
///
/// # Cost
/// Cloning is a reference count. Sending one out of band costs a
/// reference-count increment and a slot in the frame's list; receiving
/// one, a reference-count increment (or a copy, as above).
///
/// ```
/// use clustertop_runtime::Payload;
/// let block = Payload::from(vec![7u8; 1 << 20]);
/// let again = block.clone(); // a reference count, not a copy
/// assert_eq!(again.len(), 1 << 20);
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Payload(Bytes);

impl Payload {
    /// Payloads at least this long go out of band in a remote send.
    pub const OUT_OF_BAND_MIN: usize = 4 * 1024;

    /// A payload of `bytes`.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        Payload(bytes.into())
    }

    /// The bytes, shared.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// The bytes, without a copy.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Bytes> for Payload {
    fn from(b: Bytes) -> Self {
        Payload(b)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(v: Vec<u8>) -> Self {
        Payload(Bytes::from(v))
    }
}

impl From<&'static [u8]> for Payload {
    fn from(s: &'static [u8]) -> Self {
        Payload(Bytes::from_static(s))
    }
}

impl From<Payload> for Bytes {
    fn from(p: Payload) -> Self {
        p.0
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 16;
        write!(f, "Payload({} bytes", self.0.len())?;
        if !self.0.is_empty() {
            write!(f, ": ")?;
            for b in self.0.iter().take(SHOWN) {
                write!(f, "{b:02x}")?;
            }
            if self.0.len() > SHOWN {
                write!(f, "…")?;
            }
        }
        write!(f, ")")
    }
}

/// How a payload is written by a binary format: inline, or its length,
/// the bytes following the frame.
#[derive(Serialize)]
enum WireRef<'a> {
    Inline(#[serde(with = "serde_bytes")] &'a [u8]),
    OutOfBand(u64),
}

#[derive(Deserialize)]
enum Wire {
    Inline(serde_bytes::ByteBuf),
    OutOfBand(u64),
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return s.serialize_bytes(&self.0);
        }
        if self.0.len() >= Self::OUT_OF_BAND_MIN && super::remote::out_of_band(&self.0) {
            return WireRef::OutOfBand(self.0.len() as u64).serialize(s);
        }
        WireRef::Inline(&self.0).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let b = serde_bytes::ByteBuf::deserialize(d)?;
            return Ok(Payload::from(b.into_vec()));
        }
        match Wire::deserialize(d)? {
            Wire::Inline(b) => Ok(Payload::from(b.into_vec())),
            Wire::OutOfBand(len) => super::remote::take_out_of_band(len)
                .map(Payload)
                .map_err(D::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_send_a_payload_is_inline_in_binary_formats_and_bytes_in_json() {
        let p = Payload::from(vec![1u8; 10_000]);
        let bin = postcard::to_allocvec(&p).unwrap();
        assert_eq!(bin.len(), 1 + 2 + 10_000);
        assert_eq!(postcard::from_bytes::<Payload>(&bin).unwrap(), p);
        let small = Payload::from(&b"abc"[..]);
        let json = serde_json::to_string(&small).unwrap();
        assert_eq!(json, "[97,98,99]");
        assert_eq!(serde_json::from_str::<Payload>(&json).unwrap(), small);
    }

    #[test]
    fn an_out_of_band_marker_outside_a_received_message_does_not_decode() {
        let marker = postcard::to_allocvec(&WireRef::OutOfBand(5000)).unwrap();
        assert!(postcard::from_bytes::<Payload>(&marker).is_err());
    }

    #[test]
    fn debug_shows_the_length_and_the_first_bytes() {
        let p = Payload::from(vec![0xabu8; 40]);
        assert_eq!(
            format!("{p:?}"),
            "Payload(40 bytes: abababababababababababababababab…)"
        );
    }
}
