//! `Payload`s between nodes over real TCP: large ones travel out of band
//! (after the frame's other contents, written from their own buffers), and
//! a frame whose out-of-band bytes do not add up is refused without harm
//! to the node.

mod support;

use clustertop_runtime::dist::frame::{Frame, MsgKind, Target};
use clustertop_runtime::{Node, Payload, Pid, Received};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::mpsc;

const LIMIT: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Blob {
    id: u32,
    /// Out of band, sliced from the frame on arrival.
    big: Payload,
    /// Out of band, copied on arrival (under 64 KiB).
    mid: Payload,
    /// Inline (under 4 KiB).
    small: Payload,
    more: Vec<Payload>,
    back_to: Option<Pid<Blob>>,
}

fn pattern(len: usize, seed: u8) -> Payload {
    Payload::from(
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<u8>>(),
    )
}

fn blob(id: u32, back_to: Option<Pid<Blob>>) -> Blob {
    Blob {
        id,
        big: pattern(1 << 20, 1),
        mid: pattern(10_000, 2),
        small: pattern(100, 3),
        more: vec![pattern(70_000, 4), pattern(0, 5), pattern(200_000, 6)],
        back_to,
    }
}

/// A process on `node`, registered as `blobs`, that sends every blob back
/// to its `back_to` (the payloads it received, re-sent) and reports it.
fn echo(node: &Node) -> mpsc::UnboundedReceiver<Blob> {
    let (tx, rx) = mpsc::unbounded_channel();
    let pid = node.spawn::<Blob, _, _>(move |mut ctx| async move {
        while let Received::Msg(b) = ctx.recv().await {
            if let Some(to) = &b.back_to {
                to.send(Blob {
                    back_to: None,
                    ..b.clone()
                });
            }
            let _ = tx.send(b);
        }
    });
    // Before its name is known: a message that arrives before the body
    // first runs is taken too.
    pid.enable_remote();
    node.register("blobs", pid.id()).unwrap();
    rx
}

fn bytes_out(from: &Node, to: &str) -> u64 {
    from.dist()
        .peer_stats()
        .iter()
        .find(|p| p.node == to)
        .map_or(0, |p| p.bytes_out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_cross_nodes_intact_and_are_sent_once() {
    let (a, b) = support::pair(TICK).await;
    let mut seen_on_b = echo(&b);
    let (back_tx, mut back) = mpsc::unbounded_channel();
    let home = a.spawn::<Blob, _, _>(move |mut ctx| async move {
        while let Received::Msg(b) = ctx.recv().await {
            let _ = back_tx.send(b);
        }
    });
    let to_b = a.dist().named_on::<Blob>("b@localhost", "blobs").unwrap();

    let before = bytes_out(&a, "b@localhost");
    let sent = blob(1, Some(home.clone()));
    let payload_bytes: usize = [&sent.big, &sent.mid, &sent.small]
        .into_iter()
        .chain(&sent.more)
        .map(|p| p.len())
        .sum();
    to_b.send(sent.clone());
    let got = tokio::time::timeout(LIMIT, seen_on_b.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.id, 1);
    assert_eq!(
        (&got.big, &got.mid, &got.small),
        (&sent.big, &sent.mid, &sent.small)
    );
    assert_eq!(got.more, sent.more);
    // The payloads crossed once: the frame is their bytes plus a header.
    // (The writer counts a frame once written, which can be after b has
    // read it.)
    let wire = || (bytes_out(&a, "b@localhost") - before) as usize;
    support::wait_for("a counts the frame", LIMIT, || wire() >= payload_bytes).await;
    let wire = wire();
    assert!(
        wire >= payload_bytes && wire < payload_bytes + 1024,
        "{wire} bytes on the wire for {payload_bytes} bytes of payloads"
    );

    // Received payloads sent on again (slices of b's read buffer, re-sent
    // from there) arrive intact too.
    let echoed = tokio::time::timeout(LIMIT, back.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        echoed,
        Blob {
            back_to: None,
            ..sent.clone()
        }
    );

    // Many in a row, interleaved with small messages on the same link.
    for id in 2..12 {
        to_b.send(blob(id, None));
    }
    for id in 2..12 {
        let got = tokio::time::timeout(LIMIT, seen_on_b.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.id, id);
        assert_eq!(got.big, sent.big);
        assert_eq!(got.more[2], sent.more[2]);
    }
    assert_eq!(a.stats().dead_letters + b.stats().dead_letters, 0);
}

/// The type tag a receiver checks: FNV-1a of the type's name.
fn tag_of<M>() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::any::type_name::<M>().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn raw_message(kind: MsgKind, payload: Vec<u8>) -> Frame {
    Frame::Message {
        to: Target::Name("blobs".into()),
        from: None,
        kind,
        tag: tag_of::<Blob>(),
        trace: None,
        payload,
        out_of_band: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_band_bytes_that_do_not_add_up_drop_the_message_or_the_link() {
    let (a, b) = support::pair(TICK).await;
    let mut seen_on_a = echo(&a);
    let small = Blob {
        id: 7,
        big: Payload::default(),
        mid: Payload::default(),
        small: pattern(10, 0),
        more: vec![],
        back_to: None,
    };
    let inline = postcard::to_allocvec(&small).unwrap();

    // Bytes the message does not claim: that message is dropped (a dead
    // letter), the link stays.
    let mut extra = inline.clone();
    extra.extend_from_slice(&[9; 10]);
    assert!(b.dist().send_raw_frame(
        "a@localhost",
        raw_message(MsgKind::Bulk { out_of_band: 10 }, extra)
    ));
    // A marker for more out-of-band bytes than the frame has: dropped too.
    let mut claims = small.clone();
    claims.big = pattern(8_000, 0);
    let marker = {
        // Encoded inside a send, `big` is a marker plus 8,000 trailing
        // bytes; cut the trailing bytes to 100.
        let mut bytes = postcard::to_allocvec(&Blob {
            big: Payload::default(),
            ..claims.clone()
        })
        .unwrap();
        // `big` is the second field: after `id` (one byte, 7), replace its
        // inline form (variant 0, length 0) by variant 1, length 8,000.
        assert_eq!(&bytes[..3], &[7, 0, 0]);
        bytes.splice(1..3, [1, 0xc0, 0x3e]);
        bytes.extend_from_slice(&[0; 100]);
        bytes
    };
    assert!(b.dist().send_raw_frame(
        "a@localhost",
        raw_message(MsgKind::Bulk { out_of_band: 100 }, marker)
    ));
    // A good message after both arrives: the link is up.
    assert!(
        b.dist()
            .send_raw_frame("a@localhost", raw_message(MsgKind::Send, inline.clone()))
    );
    let got = tokio::time::timeout(LIMIT, seen_on_a.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, small);
    assert_eq!(a.stats().dead_letters, 2);
    assert_eq!(a.dist().stats().decode_errors, 0);

    // A kind that counts more out-of-band bytes than the payload holds
    // breaks the frame's own structure: that link closes, the node goes on.
    let mut events = b.dist().node_events().unwrap();
    assert!(b.dist().send_raw_frame(
        "a@localhost",
        raw_message(MsgKind::Bulk { out_of_band: 1000 }, inline)
    ));
    support::wait_down(&mut events, "a@localhost", LIMIT).await;
    support::wait_for("a counts the decode error", LIMIT, || {
        a.dist().stats().decode_errors == 1
    })
    .await;
    // b sees the link close when a's reader stops, which can be before a
    // has dropped its record of b; until then a refuses a second
    // connection from b as a duplicate.
    support::wait_nodes(&a, &[], LIMIT).await;
    b.connect(&support::addr(&a)).await.unwrap();
    support::remote_call_works(&b, &a).await;
}
