//! The chat's web endpoint (the article's `ChatSystemWeb.Endpoint`): the
//! page at `/`, and the WebSocket at `/ws?room=ROOM&user=USER`.
//! The frames on the socket are the channel's
//! ([`ClientFrame`](crate::chat::channel::ClientFrame),
//! [`ServerFrame`](crate::chat::channel::ServerFrame)).
//!
//! # Bounds
//! Anyone who reaches the port can connect, so: room and user names are
//! 1–64 characters of `A-Z a-z 0-9 _ - .`; a frame is at most 16 KiB and a
//! message at most 2,000 characters (longer ones are cut); at most
//! [`MAX_CONNECTIONS`] sockets at once per node, past which the upgrade is
//! refused with 503.

use crate::chat::channel::{self, ChannelEvent};
use crate::chat::{ChatError, ChatSystem};
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use clustertop_runtime::SpawnOptions;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;

/// Sockets one node serves at once.
pub const MAX_CONNECTIONS: usize = 10_000;
/// The largest frame a client may send.
pub const MAX_FRAME: usize = 16 * 1024;

#[derive(Clone)]
struct AppState {
    chat: ChatSystem,
    slots: Arc<tokio::sync::Semaphore>,
    /// Origins allowed besides the page's own (`scheme://host[:port]`).
    origins: Arc<Vec<String>>,
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
/// page's own origin only (see [`serve_with_origins`]).
///
/// # Errors
/// [`ChatError::Web`] when `addr` cannot be bound.
pub async fn serve(chat: ChatSystem, addr: SocketAddr) -> Result<SocketAddr, ChatError> {
    serve_with_origins(chat, addr, Vec::new()).await
}

/// As [`serve`], also accepting WebSockets from pages of `origins`
/// (`scheme://host[:port]`, as browsers send it in `Origin`).
///
/// # Errors
/// [`ChatError::Web`] when `addr` cannot be bound.
pub async fn serve_with_origins(
    chat: ChatSystem,
    addr: SocketAddr,
    origins: Vec<String>,
) -> Result<SocketAddr, ChatError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ChatError::Web { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ChatError::Web { addr, source })?;
    let state = AppState {
        chat,
        slots: Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS)),
        origins: Arc::new(origins),
    };
    let app = Router::new()
        .route("/", get(page))
        .route("/ws", get(socket))
        .with_state(state);
    // Page and upgrade requests are bounded by the shared listener; the
    // sockets themselves by MAX_CONNECTIONS above.
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
    Query(join): Query<JoinParams>,
    State(state): State<AppState>,
) -> Response {
    if !origin_allowed(&headers, &state.origins) {
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
    let Ok(slot) = state.slots.clone().try_acquire_owned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
    };
    upgrade
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |ws| async move {
            let chat = state.chat.clone();
            let pid = state.chat.node.spawn_opts::<ChannelEvent, _, _>(
                SpawnOptions::new().behaviour("RoomChannel"),
                move |ctx| channel::run(ctx, chat, ws, join.room, join.user),
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
