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
    // A connection dropped is closed: the node sees the hidden node go.
    let second_name = me();
    let second = Conn::connect(&node.name, &second_name, COOKIE, T)
        .await
        .unwrap();
    let hidden_now = || async {
        conn.call("erlang", "nodes", vec![atom("hidden")], T)
            .await
            .unwrap()
            .to_string()
    };
    assert!(hidden_now().await.contains(&second_name));
    drop(second);
    let start = std::time::Instant::now();
    while hidden_now().await.contains(&second_name) {
        assert!(start.elapsed() < T, "the dropped connection stayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

/// A node of the test's own that completes the handshake, then sends
/// `frame`: registered in EPMD as `name`, listening on all addresses.
async fn hostile_node(name: &str, frame: Vec<u8>) -> tokio::task::JoinHandle<()> {
    use erl_dist::epmd::{EpmdClient, NodeEntry};
    use erl_dist::handshake::{HandshakeStatus, ServerSideHandshake};
    use erl_dist::node::{Creation, LocalNode};
    use tokio::io::AsyncWriteExt;
    use tokio_util::compat::TokioAsyncReadCompatExt;
    // `erl` starts EPMD when it is not running; so does this.
    let _ = std::process::Command::new("epmd").arg("-daemon").status();
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let epmd = tokio::net::TcpStream::connect(("127.0.0.1", 4369))
        .await
        .unwrap();
    let (registration, creation) = EpmdClient::new(epmd.compat())
        .register(NodeEntry::new_hidden(name, port))
        .await
        .unwrap();
    let local = LocalNode::new(
        format!("{name}@{}", short_host()).parse().unwrap(),
        Creation::new(creation.get()),
    );
    tokio::spawn(async move {
        let _registered = registration;
        let (stream, _) = listener.accept().await.unwrap();
        let mut hs = ServerSideHandshake::new(stream.compat(), local, COOKIE);
        hs.execute_recv_name().await.unwrap();
        let (stream, _) = hs.execute_rest(HandshakeStatus::Ok).await.unwrap();
        let mut stream = stream.into_inner();
        stream.write_all(&frame).await.unwrap();
        // Held open: only this side's check may close the connection.
        std::future::pending::<()>().await;
    })
}

#[tokio::test]
async fn a_frame_whose_terms_claim_more_than_it_holds_closes_that_connection_only() {
    if support::erlang("conn").is_none() {
        return;
    }
    // A reply claiming a list of 4 billion elements, in a frame of 11
    // bytes: decoded as claimed, it would abort this process.
    let mut bomb = vec![0, 0, 0, 7, 112, 131, 108, 0xff, 0xff, 0xff, 0xff];
    let name = unique("hostile");
    let _node = hostile_node(&name, std::mem::take(&mut bomb)).await;
    let target = format!("{name}@{}", short_host());
    let conn = Conn::connect(&target, &me(), COOKIE, T).await.unwrap();
    let start = std::time::Instant::now();
    while conn.is_up() {
        assert!(start.elapsed() < T, "the connection stayed up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        conn.stats()
            .bad_frames
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // This process goes on: another node is reached as before.
    let good = ErlNode::start(&unique("g"), "ok");
    let other = Conn::connect(&good.name, &me(), COOKIE, T).await.unwrap();
    assert!(other.call("erlang", "node", vec![], T).await.is_ok());
}
