//! Every step and every out-of-order frame of the handshake.

use super::*;

fn local(name: &str, cookie: &str) -> LocalInfo {
    LocalInfo {
        name: name.into(),
        creation: 11,
        hidden: false,
        listen: Some("127.0.0.1:4000".into()),
        cookie: Cookie::new(cookie),
    }
}

fn admit_all(_: &PeerInfo) -> Result<(), RefuseReason> {
    Ok(())
}

fn sent(step: Step) -> Vec<Frame> {
    match step {
        Step::Continue(f) => f,
        other => panic!("expected Continue, got {other:?}"),
    }
}

/// Runs a full exchange; returns both sides' final steps.
fn run(init_cookie: &str, acc_cookie: &str) -> (Step, Step) {
    let (mut i, hello) = Handshake::initiator(local("a@h", init_cookie), [1; 32]);
    let mut a = Handshake::acceptor(local("b@h", acc_cookie), [2; 32]);
    let challenge = sent(a.next(hello, &admit_all));
    assert_eq!(challenge.len(), 1);
    let after_challenge = i.next(challenge.into_iter().next().unwrap(), &admit_all);
    let (proof, init_result) = match after_challenge {
        Step::Continue(mut f) => (f.remove(0), None),
        Step::Failed { mut send, error } => (send.remove(0), Some(error)),
        other => panic!("unexpected {other:?}"),
    };
    let acc_step = a.next(proof, &admit_all);
    let init_step = match (init_result, &acc_step) {
        (Some(error), _) => Step::Failed {
            send: vec![],
            error,
        },
        (None, Step::Established { send, .. }) => i.next(send[0].clone(), &admit_all),
        (None, Step::Failed { send, .. }) => i.next(send[0].clone(), &admit_all),
        (None, other) => panic!("unexpected acceptor step {other:?}"),
    };
    (init_step, acc_step)
}

#[test]
fn matching_cookies_establish_both_sides() {
    let (init, acc) = run("secret", "secret");
    match init {
        Step::Established { send, peer } => {
            assert!(send.is_empty());
            assert_eq!(peer.name, "b@h");
            assert_eq!(peer.creation, 11);
            assert_eq!(peer.listen.as_deref(), Some("127.0.0.1:4000"));
        }
        other => panic!("initiator: {other:?}"),
    }
    match acc {
        Step::Established { send, peer } => {
            assert_eq!(send, vec![Frame::Established]);
            assert_eq!(peer.name, "a@h");
            assert!(!peer.hidden);
        }
        other => panic!("acceptor: {other:?}"),
    }
}

#[test]
fn wrong_cookie_is_refused_on_both_sides() {
    let (init, acc) = run("secret", "other");
    assert!(matches!(
        init,
        Step::Failed {
            error: HandshakeError::Refused(RefuseReason::BadCookie),
            ..
        }
    ));
    match acc {
        Step::Failed { send, error } => {
            assert_eq!(error, HandshakeError::Refused(RefuseReason::BadCookie));
            assert_eq!(
                send,
                vec![Frame::Refused {
                    reason: RefuseReason::BadCookie
                }]
            );
        }
        other => panic!("acceptor: {other:?}"),
    }
}

#[test]
fn initiator_with_wrong_cookie_still_sends_its_proof() {
    let (mut i, hello) = Handshake::initiator(local("a@h", "x"), [1; 32]);
    let mut a = Handshake::acceptor(local("b@h", "y"), [2; 32]);
    let challenge = sent(a.next(hello, &admit_all)).remove(0);
    match i.next(challenge, &admit_all) {
        Step::Failed { send, .. } => {
            assert!(matches!(send[0], Frame::Proof { .. }));
            assert_eq!(
                send[1],
                Frame::Refused {
                    reason: RefuseReason::BadCookie
                }
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn version_mismatch_is_refused() {
    let mut a = Handshake::acceptor(local("b@h", "c"), [2; 32]);
    let hello = Frame::Hello {
        version: PROTOCOL_VERSION + 1,
        name: "a@h".into(),
        creation: 1,
        flags: 0,
        listen: None,
        nonce: [0; 32],
    };
    let reason = RefuseReason::VersionMismatch {
        ours: PROTOCOL_VERSION,
        theirs: PROTOCOL_VERSION + 1,
    };
    assert_eq!(
        a.next(hello, &admit_all),
        Step::Failed {
            send: vec![Frame::Refused {
                reason: reason.clone()
            }],
            error: HandshakeError::Refused(reason),
        }
    );
}

#[test]
fn admission_refusal_is_sent_to_the_peer() {
    let (_, hello) = Handshake::initiator(local("a@h", "c"), [1; 32]);
    let mut a = Handshake::acceptor(local("b@h", "c"), [2; 32]);
    let step = a.next(hello, &|p| {
        assert_eq!(p.name, "a@h");
        Err(RefuseReason::NameInUse)
    });
    assert_eq!(
        step,
        Step::Failed {
            send: vec![Frame::Refused {
                reason: RefuseReason::NameInUse
            }],
            error: HandshakeError::Refused(RefuseReason::NameInUse),
        }
    );
}

#[test]
fn bad_and_own_names_are_refused() {
    for name in ["nohost", "@h", "a@", "a@b@c", "b@h"] {
        let (_, hello) = Handshake::initiator(local(name, "c"), [1; 32]);
        let mut a = Handshake::acceptor(local("b@h", "c"), [2; 32]);
        assert!(
            matches!(
                a.next(hello, &admit_all),
                Step::Failed {
                    error: HandshakeError::Refused(RefuseReason::BadName),
                    ..
                }
            ),
            "{name} must be refused"
        );
    }
}

#[test]
fn hidden_flag_is_carried() {
    let mut hidden = local("tui@h", "c");
    hidden.hidden = true;
    let (_, hello) = Handshake::initiator(hidden, [1; 32]);
    let mut a = Handshake::acceptor(local("b@h", "c"), [2; 32]);
    let seen = std::cell::Cell::new(false);
    sent(a.next(hello, &|p| {
        seen.set(p.hidden);
        Ok(())
    }));
    assert!(seen.get());
}

#[test]
fn replayed_handshake_fails_against_a_fresh_nonce() {
    // Record a good exchange.
    let (mut i, hello) = Handshake::initiator(local("a@h", "s"), [1; 32]);
    let mut a = Handshake::acceptor(local("b@h", "s"), [2; 32]);
    let challenge = sent(a.next(hello.clone(), &admit_all)).remove(0);
    let proof = sent(i.next(challenge, &admit_all)).remove(0);
    // Replay Hello and Proof against a new acceptor incarnation of the handshake.
    let mut fresh = Handshake::acceptor(local("b@h", "s"), [3; 32]);
    sent(fresh.next(hello, &admit_all));
    assert!(matches!(
        fresh.next(proof, &admit_all),
        Step::Failed {
            error: HandshakeError::Refused(RefuseReason::BadCookie),
            ..
        }
    ));
}

#[test]
fn peer_refusal_ends_the_handshake() {
    let (mut i, _) = Handshake::initiator(local("a@h", "s"), [1; 32]);
    assert_eq!(
        i.next(
            Frame::Refused {
                reason: RefuseReason::Duplicate
            },
            &admit_all
        ),
        Step::Failed {
            send: vec![],
            error: HandshakeError::PeerRefused(RefuseReason::Duplicate),
        }
    );
}

fn unexpected(step: Step, kind: &'static str) {
    assert_eq!(
        step,
        Step::Failed {
            send: vec![],
            error: HandshakeError::Unexpected(kind),
        }
    );
}

#[test]
fn out_of_order_frames_close_the_acceptor() {
    let frames = [
        (Frame::Proof { proof: [0; 32] }, "Proof"),
        (Frame::Established, "Established"),
        (
            Frame::Heartbeat {
                seq: 1,
                reply: false,
            },
            "Heartbeat",
        ),
        (Frame::Peers { peers: vec![] }, "Peers"),
    ];
    for (frame, kind) in frames {
        let mut a = Handshake::acceptor(local("b@h", "c"), [2; 32]);
        unexpected(a.next(frame, &admit_all), kind);
    }
    // A second Hello after the first.
    let (_, hello) = Handshake::initiator(local("a@h", "c"), [1; 32]);
    let mut a = Handshake::acceptor(local("b@h", "c"), [2; 32]);
    sent(a.next(hello.clone(), &admit_all));
    unexpected(a.next(hello, &admit_all), "Hello");
}

#[test]
fn out_of_order_frames_close_the_initiator() {
    let (_, hello) = Handshake::initiator(local("x@h", "c"), [9; 32]);
    let cases = [
        (hello, "Hello"),
        (Frame::Established, "Established"),
        (Frame::Proof { proof: [0; 32] }, "Proof"),
    ];
    for (frame, kind) in cases {
        let (mut i, _) = Handshake::initiator(local("a@h", "c"), [1; 32]);
        unexpected(i.next(frame, &admit_all), kind);
    }
    // A second Challenge after the first.
    let (mut i, hello) = Handshake::initiator(local("a@h", "c"), [1; 32]);
    let mut a = Handshake::acceptor(local("b@h", "c"), [2; 32]);
    let challenge = sent(a.next(hello, &admit_all)).remove(0);
    sent(i.next(challenge.clone(), &admit_all));
    unexpected(i.next(challenge, &admit_all), "Challenge");
}

#[test]
fn nothing_is_accepted_after_the_end() {
    let (mut i, hello) = Handshake::initiator(local("a@h", "s"), [1; 32]);
    let mut a = Handshake::acceptor(local("b@h", "s"), [2; 32]);
    let challenge = sent(a.next(hello, &admit_all)).remove(0);
    let proof = sent(i.next(challenge, &admit_all)).remove(0);
    assert!(matches!(
        a.next(proof.clone(), &admit_all),
        Step::Established { .. }
    ));
    unexpected(a.next(proof, &admit_all), "Proof");
    // A failed handshake stays closed too.
    let mut b = Handshake::acceptor(local("b@h", "s"), [2; 32]);
    unexpected(b.next(Frame::Established, &admit_all), "Established");
    unexpected(b.next(Frame::Established, &admit_all), "Established");
}
