//! The wire codec, chosen by measurement: postcard against bincode 1 and
//! MessagePack (rmp-serde), encoding and decoding the frames the
//! distribution layer sends most (a message frame with a small payload, a
//! heartbeat) and a typical application message.

use crate::report::Sample;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::hint::black_box;
use std::time::Instant;

/// Shaped like the runtime's message frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Frame {
    Heartbeat {
        seq: u64,
        reply: bool,
    },
    Message {
        to: (u64, u32),
        from: Option<u64>,
        tag: u64,
        trace: Option<([u8; 16], [u8; 8], u8)>,
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
}

/// A typical application message (the article's chat).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ChatMessage {
    room: String,
    user: String,
    text: String,
    at_ms: u64,
    seq: u32,
}

fn frame() -> Frame {
    Frame::Message {
        to: (123_456, 4711),
        from: Some(98_765),
        tag: 0x9e37_79b9_7f4a_7c15,
        trace: None,
        payload: vec![7; 16],
    }
}

fn chat() -> ChatMessage {
    ChatMessage {
        room: "lobby".into(),
        user: "ana".into(),
        text: "hello, distributed world".into(),
        at_ms: 1_764_000_000_000,
        seq: 42,
    }
}

fn measure<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(
    value: &T,
    n: u64,
    enc: impl Fn(&T) -> Vec<u8>,
    dec: impl Fn(&[u8]) -> T,
) -> (f64, usize) {
    let bytes = enc(value);
    assert_eq!(&dec(&bytes), value);
    let start = Instant::now();
    for _ in 0..n {
        let b = enc(black_box(value));
        black_box(dec(black_box(&b)));
    }
    (start.elapsed().as_nanos() as f64 / n as f64, bytes.len())
}

pub(crate) fn run(quick: bool) -> Vec<Sample> {
    let n: u64 = if quick { 200_000 } else { 2_000_000 };
    let mut out = Vec::new();
    macro_rules! all_codecs {
        ($what:expr, $value:expr) => {{
            let v = $value;
            for (codec, (ns, size)) in [
                (
                    "postcard",
                    measure(&v, n, |x| postcard::to_allocvec(x).unwrap(), |b| {
                        postcard::from_bytes(b).unwrap()
                    }),
                ),
                (
                    "postcard-reused-buffer",
                    measure(
                        &v,
                        n,
                        |x| {
                            thread_local!(static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 4096]));
                            BUF.with(|b| {
                                let mut b = b.borrow_mut();
                                let used = postcard::to_slice(x, &mut b[..]).unwrap().len();
                                b[..used].to_vec()
                            })
                        },
                        |b| postcard::from_bytes(b).unwrap(),
                    ),
                ),
                (
                    "bincode1",
                    measure(&v, n, |x| bincode::serialize(x).unwrap(), |b| {
                        bincode::deserialize(b).unwrap()
                    }),
                ),
                (
                    "msgpack",
                    measure(&v, n, |x| rmp_serde::to_vec(x).unwrap(), |b| {
                        rmp_serde::from_slice(b).unwrap()
                    }),
                ),
            ] {
                out.push(Sample {
                    scenario: "codec",
                    params: vec![("value", json!($what)), ("codec", json!(codec))],
                    figures: vec![("ns_per_roundtrip", ns), ("bytes", size as f64)],
                });
            }
        }};
    }
    all_codecs!("message-frame-16B", frame());
    all_codecs!(
        "heartbeat",
        Frame::Heartbeat {
            seq: 77,
            reply: false
        }
    );
    all_codecs!("chat-message", chat());
    out
}
