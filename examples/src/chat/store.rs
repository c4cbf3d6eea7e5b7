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
//! # Bounds
//! One bound in bytes holds the whole store: [`MAX_BYTES`] (32 MiB) per
//! node, however many rooms and users there are. Past it, the room whose
//! last message is oldest goes, and the next, until the store is under
//! it again. A message is counted at the length of its strings (id,
//! sender, content) plus [`MESSAGE_OVERHEAD`] for its place in its room;
//! a room at its name's length plus [`ROOM_OVERHEAD`]. Within that, a
//! room keeps its last [`KEEP`] messages and the store at most
//! [`MAX_ROOMS`] rooms. One room at its fullest (100 messages of 2,000
//! four-byte characters) is 0.8 MB, so the newest room always fits.

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
/// Bytes one node's store holds at most, counted as the module docs say.
pub const MAX_BYTES: usize = 32 << 20;
/// Bytes counted per message besides its strings: the `Message` itself
/// and its slot in the room's queue.
pub const MESSAGE_OVERHEAD: usize = 96;
/// Bytes counted per room besides its name: its map entry and queue.
pub const ROOM_OVERHEAD: usize = 128;
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
    rooms: Rooms,
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
            rooms: Rooms::new(MAX_BYTES),
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
        self.rooms.insert(&new);
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
        CallResult::Reply(self.rooms.recent(&get.room, get.limit))
    }

    async fn handle_info(&mut self, info: Info<NewMessage>, _: &mut ServerContext<Self>) -> Flow {
        if let Info::Msg(new) = info {
            self.pause().await;
            self.rooms.insert(&new);
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
}

/// The heap a message to the store owns, for its memory figure.
pub fn message_heap(msg: &ServerMsg<MessageStore>) -> usize {
    if let Some(add) = msg.as_cast() {
        add.room.capacity() + add.sender.capacity() + add.content.capacity()
    } else if let Some(new) = msg.as_info() {
        new.heap()
    } else {
        msg.as_call().map_or(0, |get| get.room.capacity())
    }
}

/// The rooms' recent messages, within a bound in bytes.
#[derive(Debug)]
pub struct Rooms {
    rooms: HashMap<String, VecDeque<Message>>,
    bytes: usize,
    max_bytes: usize,
}

/// What `message` counts towards the bound.
fn message_bytes(message: &Message) -> usize {
    message.id.len() + message.sender.len() + message.content.len() + MESSAGE_OVERHEAD
}

impl Rooms {
    /// No rooms, holding at most `max_bytes` (as counted in the module
    /// docs).
    pub fn new(max_bytes: usize) -> Self {
        Rooms {
            rooms: HashMap::new(),
            bytes: 0,
            max_bytes,
        }
    }

    /// Bytes held, as counted in the module docs.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Rooms held.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Whether no room is held.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// The newest `limit` messages of `room`, oldest first.
    pub fn recent(&self, room: &str, limit: usize) -> Vec<Message> {
        self.rooms.get(room).map_or_else(Vec::new, |m| {
            let skip = m.len().saturating_sub(limit);
            m.iter().skip(skip).cloned().collect()
        })
    }

    /// Keeps `new` in its room: in (timestamp, id) order, at most
    /// [`KEEP`]; then drops the stalest rooms until within the bound.
    pub fn insert(&mut self, new: &NewMessage) {
        if !self.rooms.contains_key(&new.room) && self.rooms.len() >= MAX_ROOMS {
            self.drop_stalest(None);
        }
        let room = match self.rooms.get_mut(&new.room) {
            Some(room) => room,
            None => {
                self.bytes += new.room.len() + ROOM_OVERHEAD;
                self.rooms.entry(new.room.clone()).or_default()
            }
        };
        if room.iter().any(|m| m.id == new.message.id) {
            return;
        }
        let key = |m: &Message| (m.timestamp, m.id.clone());
        let at = room.partition_point(|m| key(m) <= key(&new.message));
        room.insert(at, new.message.clone());
        self.bytes += message_bytes(&new.message);
        while room.len() > KEEP {
            if let Some(old) = room.pop_front() {
                self.bytes -= message_bytes(&old);
            }
        }
        while self.bytes > self.max_bytes && self.rooms.len() > 1 {
            self.drop_stalest(Some(&new.room));
        }
    }

    /// Drops the room whose last message is oldest, other than `keep`.
    fn drop_stalest(&mut self, keep: Option<&str>) {
        let stalest = self
            .rooms
            .iter()
            .filter(|(name, _)| Some(name.as_str()) != keep)
            .min_by_key(|(_, m)| m.back().map_or(0, |m| m.timestamp))
            .map(|(name, _)| name.clone());
        if let Some(name) = stalest {
            if let Some(messages) = self.rooms.remove(&name) {
                self.bytes -= name.len() + ROOM_OVERHEAD;
                self.bytes -= messages.iter().map(message_bytes).sum::<usize>();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(room: &str, n: u64, content: &str) -> NewMessage {
        NewMessage {
            room: room.to_owned(),
            message: Message {
                id: format!("a@localhost-{n}"),
                sender: "ann".to_owned(),
                content: content.to_owned(),
                timestamp: n,
            },
        }
    }

    fn recount(rooms: &Rooms) -> usize {
        rooms
            .rooms
            .iter()
            .map(|(name, m)| {
                name.len() + ROOM_OVERHEAD + m.iter().map(message_bytes).sum::<usize>()
            })
            .sum()
    }

    /// Many rooms of long messages: the store stays within its bytes, its
    /// count is the recount of what it holds, and the newest rooms stay.
    #[test]
    fn the_store_holds_its_bound_in_bytes_however_many_rooms_are_filled() {
        let bound = 2 << 20;
        let mut rooms = Rooms::new(bound);
        let long = "é".repeat(2_000);
        let mut n = 0;
        for room in 0..200 {
            for _ in 0..KEEP {
                n += 1;
                rooms.insert(&message(&format!("room-{room}"), n, &long));
                assert!(rooms.bytes() <= bound, "{} > {bound}", rooms.bytes());
            }
        }
        assert_eq!(rooms.bytes(), recount(&rooms));
        // 100 messages of 4,000 bytes: about 0.4 MB a room, so 4 or 5 fit.
        assert!((4..=5).contains(&rooms.len()), "{} rooms", rooms.len());
        assert_eq!(
            rooms.recent("room-199", 1)[0].id,
            format!("a@localhost-{n}")
        );
        assert!(rooms.recent("room-0", 1).is_empty());
    }

    #[test]
    fn a_room_keeps_its_last_messages_in_order_and_counts_what_it_drops() {
        let mut rooms = Rooms::new(MAX_BYTES);
        for n in (1..=150).rev() {
            rooms.insert(&message("lobby", n, "hi"));
        }
        // The same message again is not kept twice.
        rooms.insert(&message("lobby", 150, "hi"));
        let recent = rooms.recent("lobby", KEEP);
        assert_eq!(recent.len(), KEEP);
        assert!(recent.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
        assert_eq!(rooms.bytes(), recount(&rooms));
    }
}
