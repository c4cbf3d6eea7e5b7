//! The chat's web endpoint (the article's `ChatSystemWeb.Endpoint`): the
//! page at `/`, and the WebSocket at `/ws?room=ROOM&user=USER`.
//! The frames on the socket are the channel's
//! ([`ClientFrame`](crate::chat::channel::ClientFrame),
//! [`ServerFrame`](crate::chat::channel::ServerFrame)).
//!
//! # Bounds
//! Anyone who reaches the port can connect, so ([`WebConfig`] sets the
//! numbers):
//! - room and user names are 1–64 characters of `A-Z a-z 0-9 _ - .`; a
//!   frame is at most 16 KiB and a message at most 2,000 characters
//!   (longer ones are cut);
//! - at most 10,000 sockets at once per node (past it the upgrade gets
//!   503) and 256 from one address (past it, 429);
//! - a socket's buffers are sized to use: a 4 KiB read buffer that grows
//!   to the frame being read (at most 16 KiB), and no write buffer beyond
//!   the frame being written;
//! - what waits to be written to one socket is at most 128 KiB (plus the
//!   one frame that found it empty): a reader that stays further behind is
//!   disconnected, logged and counted (`chat_slow_readers_total`).
//!
//! So an idle socket costs its channel process, its buffers and the
//! connection's state (about 10 KB measured, examples/README.md), and a
//! node's sockets at most `max_sockets` × (that + `max_queued_bytes` +
//! 16 KiB + one frame).

use crate::chat::channel::{self, ChannelEvent};
use crate::chat::{ChatError, ChatSystem};
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use clustertop_runtime::SpawnOptions;
use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The largest frame a client may send.
pub const MAX_FRAME: usize = 16 * 1024;
/// A socket's read buffer before a frame needs more.
const READ_BUFFER: usize = 4 * 1024;

/// What the endpoint accepts, and what one node may be made to hold.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Origins whose pages may open the WebSocket besides the page's own
    /// (`scheme://host[:port]`, as browsers send it in `Origin`).
    pub allow_origins: Vec<String>,
    /// Sockets at once on this node (default 10,000).
    pub max_sockets: usize,
    /// Sockets at once from one IP address (default 256).
    pub max_sockets_per_address: usize,
    /// Bytes waiting to be written to one socket before its reader is
    /// disconnected as too slow (default 128 KiB).
    pub max_queued_bytes: usize,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            allow_origins: Vec::new(),
            max_sockets: 10_000,
            max_sockets_per_address: 256,
            max_queued_bytes: 128 * 1024,
        }
    }
}

#[derive(Clone)]
struct AppState {
    chat: ChatSystem,
    sockets: Arc<Sockets>,
    config: Arc<WebConfig>,
}

/// The sockets open now: in all, and by address.
struct Sockets {
    total: usize,
    per_address: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// Why a socket was refused.
enum Full {
    Node,
    Address,
}

/// One open socket's place; given back on drop.
struct SocketSlot {
    sockets: Arc<Sockets>,
    ip: IpAddr,
}

impl Sockets {
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<SocketSlot, Full> {
        let mut open = self.open.lock();
        let (total, by_address) = &mut *open;
        if *total >= self.total {
            return Err(Full::Node);
        }
        let here = by_address.entry(ip).or_default();
        if *here >= self.per_address {
            return Err(Full::Address);
        }
        *here += 1;
        *total += 1;
        Ok(SocketSlot {
            sockets: self.clone(),
            ip,
        })
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut open = self.sockets.open.lock();
        let (total, by_address) = &mut *open;
        *total -= 1;
        if let Some(here) = by_address.get_mut(&self.ip) {
            *here -= 1;
            if *here == 0 {
                by_address.remove(&self.ip);
            }
        }
    }
}

/// Whether a WebSocket upgrade with these headers may proceed: a browser
/// sends `Origin`, which must be the page's own (`Host` under http or
/// https) or one of `allowed`; a request without one is not a browser's,
/// and cross-site requests are what the check is for.
fn origin_allowed(headers: &axum::http::HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(axum::http::header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let own = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| {
            origin == format!("http://{host}") || origin == format!("https://{host}")
        });
    own || allowed.iter().any(|a| a == origin)
}

#[derive(Debug, Deserialize)]
struct JoinParams {
    room: String,
    user: String,
}

/// Whether `name` may name a room or a user.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Serves the page and the WebSocket on `addr` (port 0: any free port);
/// returns where it listens. The server runs on the current tokio runtime
/// until the process ends. A browser's WebSocket is accepted from the
/// page's own origin only, within the default bounds (see
/// [`serve_with`]).
///
/// # Errors
/// [`ChatError::Web`] when `addr` cannot be bound.
pub async fn serve(chat: ChatSystem, addr: SocketAddr) -> Result<SocketAddr, ChatError> {
    serve_with(chat, addr, WebConfig::default()).await
}

/// As [`serve`], with `config`'s origins and bounds.
///
/// # Errors
/// [`ChatError::Web`] when `addr` cannot be bound.
pub async fn serve_with(
    chat: ChatSystem,
    addr: SocketAddr,
    config: WebConfig,
) -> Result<SocketAddr, ChatError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ChatError::Web { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ChatError::Web { addr, source })?;
    let state = AppState {
        chat,
        sockets: Arc::new(Sockets {
            total: config.max_sockets,
            per_address: config.max_sockets_per_address,
            open: Mutex::new((0, HashMap::new())),
        }),
        config: Arc::new(config),
    };
    let app = Router::new()
        .route("/", get(page))
        .route("/ws", get(socket))
        .with_state(state);
    // Page and upgrade requests are bounded by the shared listener; the
    // sockets themselves by the config's bounds.
    tokio::spawn(clustertop_otel::http::serve(
        listener,
        app,
        clustertop_otel::http::HttpLimits::default(),
        "chat web",
    ));
    Ok(bound)
}

async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

async fn socket(
    upgrade: WebSocketUpgrade,
    headers: axum::http::HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(join): Query<JoinParams>,
    State(state): State<AppState>,
) -> Response {
    if !origin_allowed(&headers, &state.config.allow_origins) {
        return (
            StatusCode::FORBIDDEN,
            "this page's origin may not open the chat's WebSocket",
        )
            .into_response();
    }
    if !valid_name(&join.room) || !valid_name(&join.user) {
        return (
            StatusCode::BAD_REQUEST,
            "room and user: 1 to 64 characters of A-Z a-z 0-9 _ - .",
        )
            .into_response();
    }
    let slot = match state.sockets.admit(peer.ip()) {
        Ok(slot) => slot,
        Err(Full::Node) => {
            return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
        }
        Err(Full::Address) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                "too many connections from this address",
            )
                .into_response();
        }
    };
    let max_queued = state.config.max_queued_bytes;
    upgrade
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .on_upgrade(move |ws| async move {
            let chat = state.chat.clone();
            let pid = state.chat.node.spawn_opts::<ChannelEvent, _, _>(
                SpawnOptions::new()
                    .behaviour("RoomChannel")
                    .message_heap(ChannelEvent::heap),
                move |ctx| channel::run(ctx, chat, ws, join.room, join.user, max_queued),
            );
            pid.exited().await;
            drop(slot);
        })
}

#[cfg(test)]
mod origin_tests {
    use super::origin_allowed;
    use axum::http::{HeaderMap, HeaderValue, header};

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn only_the_pages_own_origin_or_an_allowed_one_may_open_the_socket() {
        let none: &[String] = &[];
        assert!(origin_allowed(
            &headers("127.0.0.1:4000", Some("http://127.0.0.1:4000")),
            none
        ));
        assert!(origin_allowed(
            &headers("chat.example", Some("https://chat.example")),
            none
        ));
        assert!(!origin_allowed(
            &headers("127.0.0.1:4000", Some("http://evil.example")),
            none
        ));
        assert!(!origin_allowed(
            &headers("127.0.0.1:4000", Some("http://127.0.0.1:4001")),
            none
        ));
        // Not a browser: no Origin.
        assert!(origin_allowed(&headers("127.0.0.1:4000", None), none));
        let allowed = ["https://app.example".to_owned()];
        assert!(origin_allowed(
            &headers("127.0.0.1:4000", Some("https://app.example")),
            &allowed
        ));
    }
}
