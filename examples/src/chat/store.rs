//! The article's `ChatSystem.MessageStore`: the last 100 messages of each
//! room, `add_message` (a cast) and `get_recent_messages` (a call), and the
//! broadcast of every new message to the room's subscribers on every node.
//!
//! One difference from the article: there every node's store keeps only
//! the messages posted on that node, so a late joiner on another node
//! would miss them. Here each store also broadcasts the new message on
//! [`STORE_TOPIC`], where every other node's store takes it, so every
//! node's store holds the room's recent messages whichever node they were
//! posted on (in timestamp order, then by id).
//!
//! Bounded: [`KEEP`] messages per room and [`MAX_ROOMS`] rooms.

use crate::chat::{Message, NewMessage};
use clustertop_runtime::app::pubsub::PubSub;
use clustertop_runtime::gen_server::ServerMsg;
use clustertop_runtime::{CallResult, ExitReason, Flow, GenServer, Info, ServerContext, ServerPid};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// Messages kept per room.
pub const KEEP: usize = 100;
/// Rooms kept; past it, the room whose last message is oldest goes.
pub const MAX_ROOMS: usize = 10_000;
/// The default `limit` of `get_recent_messages`.
pub const DEFAULT_LIMIT: usize = 50;
/// Where stores tell each other about new messages.
pub const STORE_TOPIC: &str = "chat:store";
/// The store's registered name on each node.
pub const NAME: &str = "ChatSystem.MessageStore";

/// The store.
#[derive(Debug)]
pub struct MessageStore {
    pubsub: PubSub,
    /// Time spent on each message (zero but in the demo, whose store is
    /// deliberately slow).
    delay: std::time::Duration,
    rooms: HashMap<String, VecDeque<Message>>,
    next_id: u64,
}

/// `add_message(room, sender, content)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddMessage {
    /// The room.
    pub room: String,
    /// Who sent it.
    pub sender: String,
    /// What they wrote.
    pub content: String,
}

/// `get_recent_messages(room, limit)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetRecent {
    /// The room.
    pub room: String,
    /// At most this many, the newest.
    pub limit: usize,
}

impl GenServer for MessageStore {
    /// The PubSub instance, and a delay per message (zero normally).
    type Args = (PubSub, std::time::Duration);
    type Call = GetRecent;
    type Reply = Vec<Message>;
    type Cast = AddMessage;
    type Info = NewMessage;

    async fn init(
        (pubsub, delay): (PubSub, std::time::Duration),
        ctx: &mut ServerContext<Self>,
    ) -> Result<Self, ExitReason> {
        let me: ServerPid<Self> = ctx.pid();
        pubsub.subscribe_as(STORE_TOPIC, &me, ServerMsg::<Self>::info);
        Ok(MessageStore {
            pubsub,
            delay,
            rooms: HashMap::new(),
            next_id: 1,
        })
    }

    async fn handle_cast(&mut self, add: AddMessage, ctx: &mut ServerContext<Self>) -> Flow {
        let started = std::time::Instant::now();
        self.pause().await;
        let message = Message {
            id: format!("{}-{}", ctx.node().name(), self.next_id),
            sender: add.sender,
            content: add.content,
            timestamp: clustertop_proto::time::unix_ms(),
        };
        self.next_id += 1;
        if self.next_id % 1_000 == 0 {
            tracing::info!(
                stored = self.next_id - 1,
                "stored {} messages",
                self.next_id - 1
            );
        }
        let new = NewMessage {
            room: add.room,
            message,
        };
        self.insert(&new);
        // The article's `{:new_message, message}` to the room, on every node.
        if let Err(e) = self
            .pubsub
            .broadcast(&super::room_topic(&new.room), new.clone())
        {
            tracing::error!(error = %e, "cannot broadcast a chat message");
        }
        // And to the other nodes' stores.
        let _ = self.pubsub.broadcast_from(ctx.id(), STORE_TOPIC, new);
        // The application's own telemetry (no room label: room names come
        // from users, and a label's values must stay few).
        let took = started.elapsed().as_secs_f64();
        metrics::counter!("chat_messages_total").increment(1);
        metrics::histogram!("chat_store_seconds").record(took);
        clustertop_otel::telemetry::execute(
            &["chat", "message", "stored"],
            &[("duration", took)],
            &[],
        );
        Flow::Continue
    }

    async fn handle_call(
        &mut self,
        get: GetRecent,
        _: &mut ServerContext<Self>,
    ) -> CallResult<Vec<Message>> {
        let messages = self.rooms.get(&get.room).map_or_else(Vec::new, |m| {
            let skip = m.len().saturating_sub(get.limit);
            m.iter().skip(skip).cloned().collect()
        });
        CallResult::Reply(messages)
    }

    async fn handle_info(&mut self, info: Info<NewMessage>, _: &mut ServerContext<Self>) -> Flow {
        if let Info::Msg(new) = info {
            self.pause().await;
            self.insert(&new);
        }
        Flow::Continue
    }
}

impl MessageStore {
    async fn pause(&self) {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
    }

    /// Keeps `new` in its room: in (timestamp, id) order, at most [`KEEP`].
    fn insert(&mut self, new: &NewMessage) {
        if !self.rooms.contains_key(&new.room) && self.rooms.len() >= MAX_ROOMS {
            let stalest = self
                .rooms
                .iter()
                .min_by_key(|(_, m)| m.back().map_or(0, |m| m.timestamp))
                .map(|(name, _)| name.clone());
            if let Some(name) = stalest {
                self.rooms.remove(&name);
            }
        }
        let room = self.rooms.entry(new.room.clone()).or_default();
        let key = |m: &Message| (m.timestamp, m.id.clone());
        if room.iter().any(|m| m.id == new.message.id) {
            return;
        }
        let at = room.partition_point(|m| key(m) <= key(&new.message));
        room.insert(at, new.message.clone());
        while room.len() > KEEP {
            room.pop_front();
        }
    }
}
