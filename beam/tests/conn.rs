//! One connection to a real BEAM node: EPMD, the handshake as a hidden
//! node, calls through `rex`, a wrong cookie, a node that dies.

use clustertop_testkit::erlang as support;

use clustertop_beam::{BeamError, Conn};
use std::time::Duration;
use support::{COOKIE, ErlNode, short_host, unique};

const T: Duration = Duration::from_secs(10);

fn me() -> String {
    format!("{}@{}", unique("ct"), short_host())
}

#[tokio::test]
async fn calls_reach_the_node_as_a_hidden_node_and_a_dead_node_fails_them_at_once() {
    if support::erlang("conn").is_none() {
        return;
    }
    let mut node = ErlNode::start(&unique("a"), "ok");
    let conn = Conn::connect(&node.name, &me(), COOKIE, T).await.unwrap();
    let release = conn
        .call("erlang", "system_info", vec![atom("otp_release")], T)
        .await
        .unwrap();
    let release = release.to_string();
    assert!(release.chars().any(|c| c.is_ascii_digit()), "{release}");
    // Hidden: not in the node's nodes(), but in nodes(hidden).
    let visible = conn.call("erlang", "nodes", vec![], T).await.unwrap();
    assert_eq!(visible.to_string(), "[]");
    let hidden = conn
        .call("erlang", "nodes", vec![atom("hidden")], T)
        .await
        .unwrap();
    assert!(hidden.to_string().contains("ct_"), "{hidden}");
    // A call that raises is a typed error, and the connection goes on.
    let err = conn
        .call("erlang", "binary_to_atom", vec![atom("x")], T)
        .await
        .unwrap_err();
    assert!(matches!(err, BeamError::BadRpc { .. }), "{err}");
    assert!(conn.is_up());
    // A module the node has not loaded is never called, so never loaded.
    let err = conn
        .call("pg", "which_groups", vec![], T)
        .await
        .unwrap_err();
    assert!(matches!(err, BeamError::NotLoaded { .. }), "{err}");
    let pg_loaded = conn
        .call("erlang", "module_loaded", vec![atom("pg")], T)
        .await
        .unwrap();
    assert_eq!(pg_loaded, atom("false"));
    node.kill();
    let err = conn.call("erlang", "nodes", vec![], T).await.unwrap_err();
    assert!(matches!(err, BeamError::Disconnected(_)), "{err}");
    assert!(!conn.is_up());
}

#[tokio::test]
async fn a_wrong_cookie_and_an_unknown_node_are_told_apart() {
    if support::erlang("conn").is_none() {
        return;
    }
    let node = ErlNode::start(&unique("b"), "ok");
    let err = Conn::connect(&node.name, &me(), "not-the-cookie", T)
        .await
        .unwrap_err();
    assert!(matches!(err, BeamError::BadCookie(_)), "{err}");
    let missing = format!("{}@{}", unique("nobody"), short_host());
    let err = Conn::connect(&missing, &me(), COOKIE, T).await.unwrap_err();
    assert!(matches!(err, BeamError::NotRegistered { .. }), "{err}");
}

fn atom(name: &str) -> clustertop_beam::Term {
    clustertop_beam::Term::Atom(name.into())
}
