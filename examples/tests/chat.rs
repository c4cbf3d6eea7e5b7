//! The article's chat system over two nodes (OS processes), with real
//! WebSocket clients: a message posted on node A reaches a client on node
//! B; Presence lists both users and a leave shows in the diff; a late
//! joiner gets the recent messages, including those posted on the other
//! node; killing node B removes B's users from A's list. And a real
//! browser (headless Chromium) joins from node A's page, sends a message,
//! and sees one arrive from a WebSocket client on node B.

mod support;

use clustertop_examples::chat::PresenceMeta;
use clustertop_examples::chat::channel::ServerFrame;
use futures_util::{SinkExt, StreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::Proc;
use tokio_tungstenite::tungstenite::Message as Ws;

const BIN: &str = env!("CARGO_BIN_EXE_chat");
const LIMIT: Duration = Duration::from_secs(20);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A chat client: its socket and who it sees in the room.
struct Client {
    socket: Socket,
    present: BTreeMap<String, BTreeSet<String>>,
    /// Messages read but not yet taken by `next_message`.
    messages: std::collections::VecDeque<String>,
}

fn web_addr(p: &mut Proc) -> String {
    let line = p.wait_line("its web line", |l| l.starts_with("web http://"));
    line["web http://".len()..].trim_end_matches('/').to_owned()
}

impl Client {
    async fn join(web: &str, room: &str, user: &str) -> (Client, Vec<String>) {
        let url = format!("ws://{web}/ws?room={room}&user={user}");
        let (socket, _) = tokio_tungstenite::connect_async(&url)
            .await
            .expect("connects");
        let mut c = Client {
            socket,
            present: BTreeMap::new(),
            messages: std::collections::VecDeque::new(),
        };
        let history = match c.next().await {
            ServerFrame::Joined { messages, .. } => messages
                .into_iter()
                .map(|m| format!("{}: {}", m.sender, m.content))
                .collect(),
            other => panic!("expected joined, got {other:?}"),
        };
        match c.next().await {
            ServerFrame::PresenceState { .. } => {}
            other => panic!("expected presence_state, got {other:?}"),
        }
        (c, history)
    }

    /// The next frame (presence frames are applied to `present` too).
    async fn next(&mut self) -> ServerFrame {
        loop {
            let msg = tokio::time::timeout(LIMIT, self.socket.next())
                .await
                .expect("a frame in time")
                .expect("the socket is open")
                .expect("a frame");
            let Ws::Text(text) = msg else { continue };
            let frame: ServerFrame = serde_json::from_str(&text).expect("a server frame");
            match &frame {
                ServerFrame::PresenceState { presences } => {
                    self.present.clear();
                    apply(&mut self.present, presences, true);
                }
                ServerFrame::PresenceDiff { joins, leaves } => {
                    apply(&mut self.present, joins, true);
                    apply(&mut self.present, leaves, false);
                }
                ServerFrame::NewMessage { message } => self
                    .messages
                    .push_back(format!("{}: {}", message.sender, message.content)),
                _ => {}
            }
            return frame;
        }
    }

    /// Reads frames until `cond` holds of the presence seen.
    async fn until_present(&mut self, users: &[&str]) {
        while self.present.keys().map(String::as_str).collect::<Vec<_>>() != users {
            self.next().await;
        }
    }

    /// The next new message, "sender: content" (read already, or next).
    async fn next_message(&mut self) -> String {
        loop {
            if let Some(m) = self.messages.pop_front() {
                return m;
            }
            self.next().await;
        }
    }

    async fn say(&mut self, content: &str) {
        let frame = serde_json::json!({"event": "new_message", "content": content});
        self.socket
            .send(Ws::Text(frame.to_string().into()))
            .await
            .expect("sent");
    }
}

/// Adds or removes each user's connections.
fn apply(
    present: &mut BTreeMap<String, BTreeSet<String>>,
    map: &BTreeMap<String, Vec<PresenceMeta>>,
    add: bool,
) {
    for (user, metas) in map {
        let conns = present.entry(user.clone()).or_default();
        for m in metas {
            if add {
                conns.insert(m.conn.clone());
            } else {
                conns.remove(&m.conn);
            }
        }
    }
    present.retain(|_, c| !c.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_on_two_nodes_talk_see_each_other_and_leave() {
    let mut a = Proc::start(BIN, "a@localhost", &["--web", "127.0.0.1:0"]);
    let web_a = web_addr(&mut a);
    let mut b = Proc::start(
        BIN,
        "b@localhost",
        &["--connect", &a.addr.clone(), "--web", "127.0.0.1:0"],
    );
    let web_b = web_addr(&mut b);

    let (mut ann, history) = Client::join(&web_a, "lobby", "ann").await;
    assert!(history.is_empty());
    let (mut bob, _) = Client::join(&web_b, "lobby", "bob").await;
    ann.until_present(&["ann", "bob"]).await;
    bob.until_present(&["ann", "bob"]).await;

    // A message posted on A reaches the client on B (and A's own).
    ann.say("hello from a").await;
    assert_eq!(bob.next_message().await, "ann: hello from a");
    assert_eq!(ann.next_message().await, "ann: hello from a");
    bob.say("hi ann").await;
    assert_eq!(ann.next_message().await, "bob: hi ann");

    // A late joiner on B gets the recent messages, from both nodes, in order.
    let (mut carol, history) = Client::join(&web_b, "lobby", "carol").await;
    assert_eq!(history, ["ann: hello from a", "bob: hi ann"]);
    ann.until_present(&["ann", "bob", "carol"]).await;

    // bob leaves: the diff on A shows it.
    bob.socket.close(None).await.expect("closes");
    ann.until_present(&["ann", "carol"]).await;
    carol.until_present(&["ann", "carol"]).await;

    // Node B dies: its users leave A's list (carol was on B).
    b.kill();
    ann.until_present(&["ann"]).await;
}

/// Headless Chromium with a throwaway profile, killed on drop.
struct Browser {
    child: std::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn open(chromium: &std::path::Path, url: &str) -> Browser {
        let profile = tempfile::tempdir().expect("a profile dir");
        let child = std::process::Command::new(chromium)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromium starts");
        Browser {
            child,
            _profile: profile,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_on_node_a_talks_with_a_client_on_node_b() {
    let Some(chromium) = clustertop_testkit::require_program(
        "a_browser_on_node_a_talks_with_a_client_on_node_b",
        "chromium",
        Some("CHROMIUM"),
        "apt-get install chromium",
    ) else {
        return;
    };
    let mut a = Proc::start(BIN, "a@localhost", &["--web", "127.0.0.1:0"]);
    let web_a = web_addr(&mut a);
    let mut b = Proc::start(
        BIN,
        "b@localhost",
        &["--connect", &a.addr.clone(), "--web", "127.0.0.1:0"],
    );
    let web_b = web_addr(&mut b);
    let (mut bob, _) = Client::join(&web_b, "lobby", "bob").await;

    // The page joins as "web", says hello, and answers every message from
    // someone else with "saw <message>".
    let _browser = Browser::open(
        &chromium,
        &format!("http://{web_a}/?room=lobby&user=web&say=hello-from-the-browser&echo=1&layout=1"),
    );
    bob.until_present(&["bob", "web"]).await;
    assert_eq!(bob.next_message().await, "web: hello-from-the-browser");
    // The messages take the page's height; the header and the input box
    // take what their content needs.
    let layout = bob.next_message().await;
    let height = |part: &str| -> f64 {
        layout
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{part}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {part} in {layout:?}"))
    };
    let window = height("window");
    assert!(height("log") > window * 0.7, "{layout}");
    assert!(height("header") < window * 0.15, "{layout}");
    assert!(height("form") < window * 0.15, "{layout}");
    bob.say("ping-from-b").await;
    assert_eq!(bob.next_message().await, "bob: ping-from-b");
    assert_eq!(
        bob.next_message().await,
        "web: saw ping-from-b",
        "the page on node A showed the message from node B"
    );
}

/// A web port that cannot be bound is one plain line on standard error:
/// no log line before it, no colour on a pipe.
#[test]
fn a_failing_start_says_one_plain_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let web = taken.local_addr().unwrap().to_string();
    let out = std::process::Command::new(BIN)
        .args(["--name", "x@localhost", "--metrics", "off", "--web", &web])
        .env("CLUSTERTOP_COOKIE", support::COOKIE)
        .env_remove("RUST_LOG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .expect("chat runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains('\u{1b}'), "colour on a pipe: {err:?}");
    assert!(err.contains(&web), "{err}");
}

/// A browser page of another site may not open the chat's WebSocket: its
/// `Origin` is checked against the page's own host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_sites_page_may_not_open_the_socket() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut a = Proc::start(BIN, "a@localhost", &["--web", "127.0.0.1:0"]);
    let web = web_addr(&mut a);
    let open = |origin: String| {
        let url = format!("ws://{web}/ws?room=lobby&user=x");
        async move {
            let mut req = url.into_client_request().unwrap();
            req.headers_mut().insert("origin", origin.parse().unwrap());
            tokio_tungstenite::connect_async(req).await
        }
    };
    match open("http://evil.example".into()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("a cross-site socket was not refused: {other:?}"),
    }
    assert!(
        open(format!("http://{web}")).await.is_ok(),
        "the page's own origin is refused"
    );
}

/// Opens the chat's WebSocket from `from` (an address of the loopback
/// network), with a receive buffer of `recv_buffer` bytes if given.
async fn open_from(
    web: &str,
    from: &str,
    user: &str,
    recv_buffer: Option<u32>,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{from}:0").parse().unwrap()).unwrap();
    if let Some(size) = recv_buffer {
        sock.set_recv_buffer_size(size).unwrap();
    }
    let stream = sock.connect(web.parse().unwrap()).await.unwrap();
    let url = format!("ws://{web}/ws?room=lobby&user={user}");
    tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream))
        .await
        .map(|(s, _)| s)
}

fn status_of(r: Result<Socket, tokio_tungstenite::tungstenite::Error>) -> u16 {
    match r {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        Err(e) => panic!("no HTTP answer: {e}"),
    }
}

/// One address may hold only its share of the sockets: past it the
/// upgrade gets 429, while another address still gets in, and a closed
/// socket gives its place back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_may_not_take_every_socket() {
    let mut a = Proc::start(
        BIN,
        "a@localhost",
        &["--web", "127.0.0.1:0", "--max-sockets-per-address", "3"],
    );
    let web = web_addr(&mut a);
    let mut held = Vec::new();
    for n in 0..3 {
        held.push(
            open_from(&web, "127.0.0.1", &format!("u{n}"), None)
                .await
                .expect("within the address's share"),
        );
    }
    assert_eq!(
        status_of(open_from(&web, "127.0.0.1", "u3", None).await),
        429
    );
    let other = open_from(&web, "127.0.0.2", "v", None).await;
    assert_eq!(status_of(other), 101, "another address was refused");
    // A closed socket's place comes back once its channel has exited.
    held.pop().unwrap().close(None).await.expect("closes");
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        match status_of(open_from(&web, "127.0.0.1", "u4", None).await) {
            101 => break,
            429 if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("the closed socket's place did not come back: {other}"),
        }
    }
}

/// The value of `name` on a Prometheus page.
async fn scrape(metrics_url: &str, name: &str) -> Option<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = metrics_url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut s = tokio::net::TcpStream::connect(host).await.ok()?;
    let req = format!("GET /{path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut page = String::new();
    s.read_to_string(&mut page).await.ok()?;
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// A socket whose reader never reads does not make the node queue without
/// bound: once more than its share waits, it is disconnected (and
/// counted), while a reader that keeps up gets every message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_never_reads_is_disconnected() {
    let mut a = Proc::start(
        BIN,
        "a@localhost",
        &[
            "--web",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
            "--max-queued-bytes",
            "65536",
        ],
    );
    let metrics = a
        .wait_line("its metrics line", |l| l.starts_with("metrics "))
        .trim_start_matches("metrics ")
        .to_owned();
    let web = web_addr(&mut a);
    // The reader that never reads, with a small receive buffer so the
    // kernel's buffers fill soon.
    let mut stalled = open_from(&web, "127.0.0.1", "stalled", Some(4096))
        .await
        .expect("joins");
    let (writer, _) = Client::join(&web, "lobby", "writer").await;
    const SENT: usize = 4_000;
    let content = "x".repeat(2_000);
    let (mut tx, mut rx) = writer.socket.split();
    // The writer reads its room too, as a reader that keeps up.
    let reader = tokio::spawn(async move {
        let mut got = 0;
        while got < SENT {
            let frame = tokio::time::timeout(LIMIT, rx.next())
                .await
                .expect("a frame in time")
                .expect("open")
                .expect("a frame");
            if let Ws::Text(text) = frame {
                if text.contains("\"new_message\"") {
                    got += 1;
                }
            }
        }
        got
    });
    for n in 0..SENT {
        let frame =
            serde_json::json!({"event": "new_message", "content": format!("{n} {content}")});
        tx.send(Ws::Text(frame.to_string().into()))
            .await
            .expect("sent");
    }
    assert_eq!(reader.await.unwrap(), SENT, "the reader that keeps up");
    // Now read the stalled socket: it ends before all were delivered.
    let mut got = 0;
    loop {
        match tokio::time::timeout(LIMIT, stalled.next()).await {
            Ok(Some(Ok(Ws::Text(text)))) if text.contains("\"new_message\"") => got += 1,
            Ok(Some(Ok(Ws::Close(_)) | Err(_)) | None) => break,
            Ok(Some(Ok(_))) => {}
            Err(_) => panic!("the stalled socket stayed open, {got} messages read"),
        }
    }
    assert!(
        got < SENT,
        "every message was queued for the stalled reader"
    );
    assert_eq!(
        scrape(&metrics, "chat_slow_readers_total").await,
        Some(1.0),
        "the disconnect is counted"
    );
}
