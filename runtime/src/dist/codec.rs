//! Bytes ⇄ frames. Pure functions, no I/O.
//!
//! A frame on the wire is `[u32 length, big-endian][body]`; the body is
//! `[u8 wire version][postcard-encoded Frame]`. The length is checked
//! against the connection's limit *before* anything is allocated (by
//! `tokio_util`'s `LengthDelimitedCodec`, configured by [`length_codec`]).
//!
//! # Cost
//! Encoding appends to a caller-owned buffer: no allocation per frame once
//! the buffer has grown. Many frames share one buffer and one `write()`.

use super::frame::Frame;
use bytes::{BufMut, BytesMut};
use tokio_util::codec::LengthDelimitedCodec;

/// The version byte that leads every frame body.
pub const WIRE_VERSION: u8 = 1;

/// Default cap on one frame's length.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// A frame body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body is empty.
    #[error("empty frame")]
    Empty,
    /// The body starts with an unknown wire version.
    #[error("unknown wire version {0}")]
    Version(u8),
    /// The body is not a valid frame.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// Bytes are left over after the frame.
    #[error("{0} trailing bytes after the frame")]
    Trailing(usize),
    /// The length prefix exceeds the connection's frame limit.
    #[error("frame length over the limit")]
    Oversized,
}

/// Decodes one frame body (without its length prefix).
///
/// # Errors
/// Any [`DecodeError`]; never panics, whatever the input.
pub fn decode(body: &[u8]) -> Result<Frame, DecodeError> {
    let (&version, rest) = body.split_first().ok_or(DecodeError::Empty)?;
    if version != WIRE_VERSION {
        return Err(DecodeError::Version(version));
    }
    let (frame, left) = postcard::take_from_bytes::<Frame>(rest)
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !left.is_empty() {
        return Err(DecodeError::Trailing(left.len()));
    }
    Ok(frame)
}

/// postcard's encoding of the [`Frame::Message`] variant index.
const MESSAGE_VARIANT: u8 = 7;

/// A [`Frame::Message`] decoded in place: the payload borrows the frame.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct MessageRef<'a> {
    pub(crate) to: super::frame::Target,
    pub(crate) from: Option<u64>,
    pub(crate) kind: super::frame::MsgKind,
    pub(crate) tag: u64,
    pub(crate) trace: Option<crate::trace::TraceContext>,
    #[serde(borrow)]
    pub(crate) payload: &'a [u8],
}

/// Decodes `body` as a message frame without copying its payload, if it is
/// one; `None` for any other frame.
pub(crate) fn decode_message(body: &[u8]) -> Option<Result<MessageRef<'_>, DecodeError>> {
    match body {
        [WIRE_VERSION, MESSAGE_VARIANT, rest @ ..] => {
            Some(match postcard::take_from_bytes::<MessageRef<'_>>(rest) {
                Ok((m, [])) => Ok(m),
                Ok((_, left)) => Err(DecodeError::Trailing(left.len())),
                Err(e) => Err(DecodeError::Malformed(e.to_string())),
            })
        }
        _ => None,
    }
}

/// Appends `frame`, with its length prefix, to `buf`.
///
/// # Errors
/// If the encoded frame would exceed `max_frame` bytes (nothing is appended).
pub fn encode(frame: &Frame, buf: &mut BytesMut, max_frame: usize) -> Result<(), EncodeError> {
    if let Frame::Message {
        to,
        from,
        kind,
        tag,
        trace,
        payload,
        out_of_band,
    } = frame
        && !out_of_band.is_empty()
    {
        // The out-of-band bytes follow the payload, copied here; the link's
        // writer sends them from their own buffers instead.
        let start = buf.len();
        let extra: usize = out_of_band.iter().map(|b| b.len()).sum();
        let header = (to, from, kind, tag, trace);
        encode_message_header(&header, payload.len() + extra, buf, max_frame)?;
        if buf.len() > start {
            buf.extend_from_slice(payload);
            for b in out_of_band {
                buf.extend_from_slice(b);
            }
        }
        return Ok(());
    }
    let start = buf.len();
    buf.put_u32(0);
    buf.put_u8(WIRE_VERSION);
    if let Err(e) = postcard::to_io(frame, (&mut *buf).writer()) {
        buf.truncate(start);
        return Err(EncodeError::Serialize(e.to_string()));
    }
    let len = buf.len() - start - 4;
    write_prefix(buf, start, len, max_frame)
}

/// Fills in the length prefix at `start` for a body of `len` bytes, or
/// takes back everything from `start` if that exceeds `max_frame`.
fn write_prefix(
    buf: &mut BytesMut,
    start: usize,
    len: usize,
    max_frame: usize,
) -> Result<(), EncodeError> {
    if len > max_frame {
        buf.truncate(start);
        return Err(EncodeError::TooLarge {
            len,
            max: max_frame,
        });
    }
    buf[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Appends the length prefix and everything of a [`Frame::Message`] but its
/// payload, which the caller writes next (`payload_len` bytes): the same
/// bytes [`encode`] would produce, without copying the payload.
///
/// # Errors
/// If the whole frame would exceed `max_frame` bytes (nothing is appended).
pub(crate) fn encode_message_header<H: serde::Serialize>(
    header: &H,
    payload_len: usize,
    buf: &mut BytesMut,
    max_frame: usize,
) -> Result<(), EncodeError> {
    let start = buf.len();
    buf.put_u32(0);
    buf.put_u8(WIRE_VERSION);
    buf.put_u8(MESSAGE_VARIANT);
    if let Err(e) = postcard::to_io(header, (&mut *buf).writer()) {
        buf.truncate(start);
        return Err(EncodeError::Serialize(e.to_string()));
    }
    // The payload's length, as postcard writes a byte string's: LEB128.
    let mut n = payload_len;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            buf.put_u8(byte);
            break;
        }
        buf.put_u8(byte | 0x80);
    }
    let len = buf.len() - start - 4 + payload_len;
    write_prefix(buf, start, len, max_frame)
}

/// A frame could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The frame is larger than the connection allows.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The payload could not be serialized.
    #[error("cannot serialize: {0}")]
    Serialize(String),
}

/// The length-prefix codec for reading: 4-byte big-endian lengths, frames
/// over `max_frame` rejected before allocation.
pub fn length_codec(max_frame: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .big_endian()
        .max_frame_length(max_frame)
        .new_codec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::frame::{PeerAddr, RefuseReason};
    use tokio_util::codec::Decoder;

    fn roundtrip(frame: Frame) {
        let mut buf = BytesMut::new();
        encode(&frame, &mut buf, DEFAULT_MAX_FRAME).unwrap();
        let mut codec = length_codec(DEFAULT_MAX_FRAME);
        let body = codec.decode(&mut buf).unwrap().expect("a whole frame");
        assert!(buf.is_empty());
        assert_eq!(decode(&body).unwrap(), frame);
    }

    #[test]
    fn frames_roundtrip() {
        roundtrip(Frame::Hello {
            version: 1,
            name: "a@host".into(),
            creation: 7,
            flags: 1,
            listen: Some("127.0.0.1:4370".into()),
            nonce: [9; 32],
        });
        roundtrip(Frame::Proof { proof: [3; 32] });
        roundtrip(Frame::Refused {
            reason: RefuseReason::VersionMismatch { ours: 1, theirs: 9 },
        });
        roundtrip(Frame::Heartbeat {
            seq: u64::MAX,
            reply: true,
        });
        roundtrip(Frame::Peers {
            peers: vec![PeerAddr {
                name: "b@h".into(),
                listen: "127.0.0.1:1".into(),
            }],
        });
    }

    #[test]
    fn message_frames_decode_in_place() {
        use crate::dist::frame::{MsgKind, Target};
        let frame = Frame::Message {
            to: Target::Name("sink".into()),
            from: Some(9),
            kind: MsgKind::Send,
            tag: u64::MAX,
            trace: None,
            payload: vec![1, 2, 3, 4],
            out_of_band: vec![],
        };
        let mut buf = BytesMut::new();
        encode(&frame, &mut buf, DEFAULT_MAX_FRAME).unwrap();
        let m = decode_message(&buf[4..]).expect("a message frame").unwrap();
        assert_eq!(m.to, Target::Name("sink".into()));
        assert_eq!(
            (m.from, m.tag, m.payload),
            (Some(9), u64::MAX, &[1u8, 2, 3, 4][..])
        );
        let mut hb = BytesMut::new();
        encode(
            &Frame::Heartbeat {
                seq: 1,
                reply: false,
            },
            &mut hb,
            DEFAULT_MAX_FRAME,
        )
        .unwrap();
        assert!(decode_message(&hb[4..]).is_none());
    }

    #[test]
    fn a_message_header_plus_payload_is_the_encoded_frame() {
        use crate::dist::frame::{MsgKind, Target};
        for size in [0usize, 1, 127, 128, 300, 70_000] {
            let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
            let frame = Frame::Message {
                to: Target::Pid {
                    serial: 5,
                    creation: 6,
                },
                from: None,
                kind: MsgKind::Send,
                tag: 77,
                trace: None,
                payload: payload.clone(),
                out_of_band: vec![],
            };
            let mut whole = BytesMut::new();
            encode(&frame, &mut whole, DEFAULT_MAX_FRAME).unwrap();
            let mut split = BytesMut::new();
            let header = (
                Target::Pid {
                    serial: 5,
                    creation: 6,
                },
                None::<u64>,
                MsgKind::Send,
                77u64,
                None::<crate::trace::TraceContext>,
            );
            encode_message_header(&header, size, &mut split, DEFAULT_MAX_FRAME).unwrap();
            split.extend_from_slice(&payload);
            assert_eq!(whole, split, "payload of {size} bytes");
        }
    }

    #[test]
    fn out_of_band_bytes_follow_the_payload_and_are_counted_by_the_kind() {
        use crate::dist::frame::{MsgKind, Target};
        let oob = [
            bytes::Bytes::from(vec![7u8; 5000]),
            bytes::Bytes::from(vec![8u8; 3]),
        ];
        let frame = Frame::Message {
            to: Target::Name("sink".into()),
            from: None,
            kind: MsgKind::Bulk { out_of_band: 5003 },
            tag: 1,
            trace: None,
            payload: vec![1, 2],
            out_of_band: oob.to_vec(),
        };
        let mut buf = BytesMut::new();
        encode(&frame, &mut buf, DEFAULT_MAX_FRAME).unwrap();
        let m = decode_message(&buf[4..]).unwrap().unwrap();
        assert_eq!(m.kind, MsgKind::Bulk { out_of_band: 5003 });
        assert_eq!(m.payload.len(), 2 + 5003);
        assert_eq!(&m.payload[..2], &[1, 2]);
        assert!(m.payload[2..5002].iter().all(|&b| b == 7));
        assert_eq!(&m.payload[5002..], &[8, 8, 8]);
        // Over the limit, nothing is appended.
        let mut small = BytesMut::new();
        assert!(matches!(
            encode(&frame, &mut small, 4000),
            Err(EncodeError::TooLarge { .. })
        ));
        assert!(small.is_empty());
    }

    #[test]
    fn many_frames_share_one_buffer() {
        let mut buf = BytesMut::new();
        for seq in 0..100 {
            encode(
                &Frame::Heartbeat { seq, reply: false },
                &mut buf,
                DEFAULT_MAX_FRAME,
            )
            .unwrap();
        }
        let mut codec = length_codec(DEFAULT_MAX_FRAME);
        for seq in 0..100 {
            let body = codec.decode(&mut buf).unwrap().unwrap();
            assert_eq!(
                decode(&body).unwrap(),
                Frame::Heartbeat { seq, reply: false }
            );
        }
        assert!(codec.decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn bad_bodies_are_typed_errors() {
        assert_eq!(decode(&[]), Err(DecodeError::Empty));
        assert_eq!(decode(&[99, 1, 2]), Err(DecodeError::Version(99)));
        assert!(matches!(
            decode(&[WIRE_VERSION, 200, 200, 200]),
            Err(DecodeError::Malformed(_))
        ));
        let mut buf = BytesMut::new();
        encode(&Frame::Established, &mut buf, DEFAULT_MAX_FRAME).unwrap();
        let mut body = buf[4..].to_vec();
        body.push(0);
        assert_eq!(decode(&body), Err(DecodeError::Trailing(1)));
    }

    #[test]
    fn oversized_length_is_refused_before_allocation() {
        let mut codec = length_codec(1024);
        let mut buf = BytesMut::from(&[0xFFu8, 0xFF, 0xFF, 0xFF, 1, 2, 3][..]);
        assert!(codec.decode(&mut buf).is_err());
        let big = Frame::Peers {
            peers: vec![
                PeerAddr {
                    name: "x".repeat(600),
                    listen: "y".repeat(600),
                };
                1
            ],
        };
        let mut out = BytesMut::new();
        assert!(matches!(
            encode(&big, &mut out, 1024),
            Err(EncodeError::TooLarge { .. })
        ));
        assert!(out.is_empty(), "nothing appended on error");
    }
}
