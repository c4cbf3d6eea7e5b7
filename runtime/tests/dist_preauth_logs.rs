//! A name a stranger claims before proving the cookie never reaches the
//! log verbatim. In its own test binary: it installs the global
//! subscriber, so every thread's events are captured.

mod support;

use clustertop_runtime::dist::DistConfig;
use clustertop_runtime::dist::codec::{self, DEFAULT_MAX_FRAME};
use clustertop_runtime::dist::frame::{Frame, PROTOCOL_VERSION, RefuseReason};
use clustertop_runtime::{Node, NodeConfig};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(10);

fn node(name: &str) -> Node {
    let dist = DistConfig::listen("127.0.0.1:0".parse().unwrap()).cookie("secret");
    Node::start(NodeConfig::new(name).dist(dist)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_claimed_before_the_handshake_is_never_logged_verbatim() {
    let captured = clustertop_testkit::Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let a = node("a@localhost");
    let evil = "evil\u{1b}]2;pwned\u{7}@host";
    for name in [evil.to_owned(), format!("{}@host", "x".repeat(900))] {
        let raw = TcpStream::connect(a.dist().listen_addr().unwrap())
            .await
            .unwrap();
        let (r, mut w) = raw.into_split();
        let mut buf = bytes::BytesMut::new();
        let hello = Frame::Hello {
            version: PROTOCOL_VERSION,
            name,
            creation: 1,
            flags: 0,
            listen: None,
            nonce: [0; 32],
        };
        codec::encode(&hello, &mut buf, DEFAULT_MAX_FRAME).unwrap();
        w.write_all(&buf).await.unwrap();
        use futures_util::StreamExt;
        let mut frames =
            tokio_util::codec::FramedRead::new(r, codec::length_codec(DEFAULT_MAX_FRAME));
        let body = frames.next().await.unwrap().unwrap();
        assert_eq!(
            codec::decode(&body).unwrap(),
            Frame::Refused {
                reason: RefuseReason::BadName
            }
        );
    }
    support::wait_for("both failures counted", LIMIT, || {
        a.dist().stats().handshake_failures == 2
    })
    .await;
    let logs = captured.text();
    assert!(logs.contains("handshake failed"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "an escape byte reached the log");
    assert!(
        !logs.contains("pwned"),
        "the claimed name was logged: {logs}"
    );
    assert!(!logs.contains("xxxxxxxx"), "the claimed name was logged");
}
