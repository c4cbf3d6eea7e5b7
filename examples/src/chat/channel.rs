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
use axum::extract::ws::{Message as WsMessage, Utf8Bytes, WebSocket};
use clustertop_runtime::app::presence::PresenceDiff;
use clustertop_runtime::{Context, Received};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

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

impl ChannelEvent {
    /// The heap an event owns, for the channel's memory figure.
    pub fn heap(&self) -> usize {
        match self {
            ChannelEvent::NewMessage(new) => new.heap(),
            ChannelEvent::Presence(diff) => [&diff.joins, &diff.leaves]
                .iter()
                .flat_map(|m| m.iter())
                .map(|(user, metas)| {
                    user.len() + metas.iter().map(PresenceMeta::heap).sum::<usize>() + 64
                })
                .sum(),
        }
    }
}

/// The longest message a user may send, in characters.
pub const MAX_CONTENT: usize = 2_000;

/// Runs a channel for `user` in `room` over `socket` until it closes, or
/// until more than `max_queued` bytes wait to be written to it (a reader
/// that stays behind is disconnected, logged and counted).
pub async fn run(
    ctx: Context<ChannelEvent>,
    chat: ChatSystem,
    socket: WebSocket,
    room: String,
    user: String,
    max_queued: usize,
) {
    let (sink, mut incoming) = socket.split();
    let mut out = Outbox::new(sink, max_queued);
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
    let joined = ServerFrame::Joined {
        room: room.clone(),
        user: user.clone(),
        messages,
    };
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
    // An empty outbox takes any one frame: these two cannot be refused.
    let _ = out.push(&joined);
    let _ = out.push(&ServerFrame::PresenceState { presences });
    tracing::info!(%room, %user, "joined");
    let mut ctx = ctx;
    loop {
        // Writing first: the outbox grows only while the socket cannot
        // take more, never because a message was taken first by chance.
        // Then the client's frames (at the rate its connection brings
        // them), then the room's messages.
        tokio::select! {
            biased;
            sent = out.sent(), if out.writing() => {
                if sent.is_err() {
                    break;
                }
            }
            frame = incoming.next() => match frame {
                Some(Ok(WsMessage::Text(text))) => match serde_json::from_str::<ClientFrame>(&text) {
                    Ok(ClientFrame::NewMessage { content }) => {
                        let content: String = content.chars().take(MAX_CONTENT).collect();
                        if !content.trim().is_empty() {
                            chat.add_message(&room, &user, &content);
                        }
                    }
                    Err(e) => {
                        let _ = out.push(&ServerFrame::Error { reason: format!("bad frame: {e}") });
                    }
                },
                Some(Ok(WsMessage::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            event = ctx.recv() => {
                let frame = match event {
                    Received::Msg(ChannelEvent::NewMessage(new)) => ServerFrame::NewMessage { message: new.message },
                    Received::Msg(ChannelEvent::Presence(diff)) => ServerFrame::PresenceDiff { joins: diff.joins, leaves: diff.leaves },
                    _ => continue,
                };
                if let Err(Behind { queued }) = out.push(&frame) {
                    metrics::counter!("chat_slow_readers_total").increment(1);
                    tracing::warn!(%room, %user, queued_bytes = queued, "a reader stayed {queued} bytes behind: disconnected");
                    break;
                }
            }
        }
    }
    tracing::info!(%room, %user, "left");
}

type Sink = SplitSink<WebSocket, WsMessage>;
type Sending = Pin<Box<dyn Future<Output = (Sink, Result<(), axum::Error>)> + Send>>;

/// What waits to be written to one socket, within a bound in bytes. One
/// frame is written at a time by a future the outbox keeps, so the
/// channel's loop may stop awaiting it (to take a message or a frame) and
/// resume it later without losing or repeating a frame.
struct Outbox {
    queue: VecDeque<Utf8Bytes>,
    /// Bytes queued and being written.
    bytes: usize,
    max: usize,
    sink: Option<Sink>,
    sending: Option<(Sending, usize)>,
}

/// The reader is further behind than the outbox's bound.
struct Behind {
    queued: usize,
}

impl Outbox {
    fn new(sink: Sink, max: usize) -> Self {
        Outbox {
            queue: VecDeque::new(),
            bytes: 0,
            max,
            sink: Some(sink),
            sending: None,
        }
    }

    /// Queues `frame`; refused when it would take the outbox past its
    /// bound (an empty outbox takes any one frame).
    fn push(&mut self, frame: &ServerFrame) -> Result<(), Behind> {
        let text = serde_json::to_string(frame).expect("frames encode");
        if self.bytes > 0 && self.bytes + text.len() > self.max {
            return Err(Behind { queued: self.bytes });
        }
        self.bytes += text.len();
        self.queue.push_back(text.into());
        self.start();
        Ok(())
    }

    /// Whether a frame is being written.
    fn writing(&self) -> bool {
        self.sending.is_some()
    }

    /// Starts writing the next frame if none is being written.
    fn start(&mut self) {
        if self.sending.is_some() {
            return;
        }
        let Some(frame) = self.queue.pop_front() else {
            return;
        };
        let Some(mut sink) = self.sink.take() else {
            return;
        };
        let len = frame.len();
        let send: Sending = Box::pin(async move {
            let r = sink.send(WsMessage::Text(frame)).await;
            (sink, r)
        });
        self.sending = Some((send, len));
    }

    /// Waits until the frame being written is written, then starts the
    /// next. Cancel-safe: the write goes on at the next call.
    async fn sent(&mut self) -> Result<(), axum::Error> {
        let Some((sending, _)) = self.sending.as_mut() else {
            return Ok(());
        };
        let (sink, result) = sending.await;
        if let Some((_, len)) = self.sending.take() {
            self.bytes -= len;
        }
        self.sink = Some(sink);
        result?;
        self.start();
        Ok(())
    }
}
