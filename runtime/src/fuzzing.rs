//! Entry points for the fuzz targets (feature `fuzzing`); not a stable API.

use crate::dist::codec::{self, DEFAULT_MAX_FRAME};
use crate::dist::cookie::Cookie;
use crate::dist::handshake::{Handshake, LocalInfo, Step};
use bytes::BytesMut;
use tokio_util::codec::Decoder;

const LIMIT: usize = 1024 * 1024;

/// Bytes through the length codec and the decoder; a decodable frame must
/// re-encode to a frame that decodes to the same value. (Not to the same
/// bytes: postcard accepts overlong varints, so the wire form of one value
/// is not unique. Nothing authenticates frame bytes, so that is harmless.)
pub fn frame_decoder(data: &[u8]) {
    let mut codec = codec::length_codec(LIMIT);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(body)) = codec.decode(&mut buf) {
        assert!(body.len() <= LIMIT);
        if let Ok(frame) = codec::decode(&body) {
            let mut out = BytesMut::new();
            codec::encode(&frame, &mut out, DEFAULT_MAX_FRAME).expect("a decoded frame encodes");
            let again = codec::decode(&out[4..]).expect("a re-encoded frame decodes");
            assert_eq!(again, frame, "re-encoding changed the frame");
        }
    }
}

/// Frames decoded from `data` into a handshake; the first byte picks the
/// role. Without the cookie's proofs the handshake must never succeed.
pub fn handshake(data: &[u8]) {
    let Some((&role, rest)) = data.split_first() else {
        return;
    };
    let local = LocalInfo {
        name: "fuzz@localhost".into(),
        creation: 1,
        hidden: false,
        listen: None,
        cookie: Cookie::new("the cookie the fuzzer does not know"),
    };
    let mut hs = if role & 1 == 0 {
        Handshake::acceptor(local, [7; 32])
    } else {
        Handshake::initiator(local, [7; 32]).0
    };
    let mut codec = codec::length_codec(64 * 1024);
    let mut buf = BytesMut::from(rest);
    while let Ok(Some(body)) = codec.decode(&mut buf) {
        let Ok(frame) = codec::decode(&body) else {
            return;
        };
        match hs.next(frame, &|_| Ok(())) {
            Step::Continue(_) => {}
            Step::Failed { .. } => return,
            Step::Established { peer, .. } => {
                panic!("established with {peer:?} without the cookie")
            }
        }
    }
}
