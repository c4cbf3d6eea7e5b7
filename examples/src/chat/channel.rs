//! The article's `ChatSystemWeb.RoomChannel`: one process per WebSocket.
//!
//! On join it answers the room's recent messages, tracks the user in the
//! room's presence topic and pushes the presence state; then it pushes
//! every new message of the room and every presence diff, and stores what
//! the user sends. The process exits when the socket closes, which
//! untracks the user (Presence monitors it).
//!
//! # Wire format
//! JSON text frames. From the client: `{"event":"new_message","content":…}`.
//! To the client: `joined` (the room's recent messages, oldest first),
//! `presence_state` (user → metas), `presence_diff` (joins and leaves),
//! `new_message`, and `error`.

use crate::chat::{ChatSystem, Message, NewMessage, PresenceMeta, presence_topic, room_topic};
use axum::extract::ws::{Message as WsMessage, WebSocket};
use clustertop_runtime::app::presence::PresenceDiff;
use clustertop_runtime::{Context, Received};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a client sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ClientFrame {
    /// `handle_in("new_message", %{"content" => content})`.
    NewMessage {
        /// The text.
        content: String,
    },
}

/// What a client receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The answer to joining: the room's recent messages, oldest first.
    Joined {
        /// The room.
        room: String,
        /// The user, as joined.
        user: String,
        /// Recent messages.
        messages: Vec<Message>,
    },
    /// Everyone present in the room, by user.
    PresenceState {
        /// User → one meta per connection.
        presences: BTreeMap<String, Vec<PresenceMeta>>,
    },
    /// Who arrived and who left.
    PresenceDiff {
        /// User → metas that arrived.
        joins: BTreeMap<String, Vec<PresenceMeta>>,
        /// User → metas that left.
        leaves: BTreeMap<String, Vec<PresenceMeta>>,
    },
    /// A new message in the room.
    NewMessage {
        /// The message.
        message: Message,
    },
    /// A frame the server could not take.
    Error {
        /// Why.
        reason: String,
    },
}

/// What a channel process receives besides its socket's frames.
#[derive(Debug)]
pub enum ChannelEvent {
    /// A new message in the room.
    NewMessage(NewMessage),
    /// Presence joins and leaves in the room.
    Presence(PresenceDiff<PresenceMeta>),
}

/// The longest message a user may send, in characters.
pub const MAX_CONTENT: usize = 2_000;

/// Runs a channel for `user` in `room` over `socket` until it closes.
pub async fn run(
    ctx: Context<ChannelEvent>,
    chat: ChatSystem,
    mut socket: WebSocket,
    room: String,
    user: String,
) {
    let me = ctx.pid();
    chat.pubsub
        .subscribe_as(&room_topic(&room), &me, ChannelEvent::NewMessage);
    chat.pubsub
        .subscribe_as(&presence_topic(&room), &me, ChannelEvent::Presence);
    // join: the recent messages.
    let messages = chat
        .get_recent_messages(&room, crate::chat::store::DEFAULT_LIMIT)
        .await
        .unwrap_or_default();
    if send(
        &mut socket,
        &ServerFrame::Joined {
            room: room.clone(),
            user: user.clone(),
            messages,
        },
    )
    .await
    .is_err()
    {
        return;
    }
    // after_join: track, then the presence state.
    let meta = PresenceMeta {
        online_at: clustertop_proto::time::unix_ms(),
        node: chat.node.name().to_owned(),
        conn: me.id().to_string(),
    };
    if let Err(e) = chat
        .presence
        .track(me.id(), &presence_topic(&room), &user, meta)
    {
        tracing::error!(error = %e, "cannot track a chat user");
    }
    let presences: BTreeMap<String, Vec<PresenceMeta>> = chat
        .presence
        .list(&presence_topic(&room))
        .into_iter()
        .collect();
    if send(&mut socket, &ServerFrame::PresenceState { presences })
        .await
        .is_err()
    {
        return;
    }
    tracing::info!(%room, %user, "joined");
    let mut ctx = ctx;
    loop {
        tokio::select! {
            event = ctx.recv() => {
                let frame = match event {
                    Received::Msg(ChannelEvent::NewMessage(new)) => ServerFrame::NewMessage { message: new.message },
                    Received::Msg(ChannelEvent::Presence(diff)) => ServerFrame::PresenceDiff { joins: diff.joins, leaves: diff.leaves },
                    _ => continue,
                };
                if send(&mut socket, &frame).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(WsMessage::Text(text))) => match serde_json::from_str::<ClientFrame>(&text) {
                    Ok(ClientFrame::NewMessage { content }) => {
                        let content: String = content.chars().take(MAX_CONTENT).collect();
                        if !content.trim().is_empty() {
                            chat.add_message(&room, &user, &content);
                        }
                    }
                    Err(e) => {
                        let _ = send(&mut socket, &ServerFrame::Error { reason: format!("bad frame: {e}") }).await;
                    }
                },
                Some(Ok(WsMessage::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    tracing::info!(%room, %user, "left");
}

async fn send(socket: &mut WebSocket, frame: &ServerFrame) -> Result<(), axum::Error> {
    let text = serde_json::to_string(frame).expect("frames encode");
    socket.send(WsMessage::Text(text.into())).await
}
