//! The article's distributed chat system (`ChatSystem`): rooms, a message
//! store that keeps the last 100 messages of each room, PubSub broadcast
//! of new messages to every node, Presence of who is in each room, and a
//! WebSocket endpoint with a small page, so a person can join a room from
//! a browser on any node and talk with people on other nodes.
//!
//! ```elixir
//! children = [
//!   {Phoenix.PubSub, name: ChatSystem.PubSub},
//!   {ChatSystem.Presence, name: ChatSystem.Presence},
//!   {ChatSystem.MessageStore, name: ChatSystem.MessageStore},
//!   ChatSystemWeb.Endpoint
//! ]
//! ```
//!
//! [`ChatSystem::start`] starts the same four on a node. The room channel
//! (the article's `ChatSystemWeb.RoomChannel`) is one process per
//! WebSocket ([`channel`]); its wire format is in [`web`].

pub mod channel;
pub mod store;
pub mod web;

use clustertop_runtime::app::presence::{Presence, PresenceConfig, PresenceError};
use clustertop_runtime::app::pubsub::{PubSub, PubSubError};
use clustertop_runtime::gen_server::{self, ServerMsg};
use clustertop_runtime::{Node, ServerOptions, ServerPid, StartError};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use store::MessageStore;

/// A stored chat message (the article's `%{id, sender, content, timestamp}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Unique in the cluster: the storing node and a sequence number.
    pub id: String,
    /// Who sent it.
    pub sender: String,
    /// What they wrote.
    pub content: String,
    /// When it was stored, ms since the Unix epoch.
    pub timestamp: u64,
}

/// `{:new_message, message}`, broadcast on the room's topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    /// The room.
    pub room: String,
    /// The message.
    pub message: Message,
}

impl Message {
    /// The heap its strings take.
    pub fn heap(&self) -> usize {
        self.id.capacity() + self.sender.capacity() + self.content.capacity()
    }
}

impl NewMessage {
    /// The heap its strings take.
    pub fn heap(&self) -> usize {
        self.room.capacity() + self.message.heap()
    }
}

/// What Presence tracks for a user in a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceMeta {
    /// When they joined, ms since the Unix epoch.
    pub online_at: u64,
    /// The node their connection is on.
    pub node: String,
    /// Their connection (unique: a user may join twice).
    pub conn: String,
}

impl PresenceMeta {
    /// The heap its strings take, and its own size (metas are boxed in
    /// vectors).
    pub fn heap(&self) -> usize {
        self.node.capacity() + self.conn.capacity() + std::mem::size_of::<Self>()
    }
}

/// The PubSub instance's name.
pub const PUBSUB: &str = "ChatSystem.PubSub";
/// The Presence instance's name.
pub const PRESENCE: &str = "ChatSystem.Presence";

/// The topic of a room's messages: `room:<id>`.
pub fn room_topic(room: &str) -> String {
    format!("room:{room}")
}

/// The topic of a room's presence: `room:<id>:presence`.
pub fn presence_topic(room: &str) -> String {
    format!("room:{room}:presence")
}

/// One node's chat system.
#[derive(Debug, Clone)]
pub struct ChatSystem {
    /// The node.
    pub node: Node,
    /// `ChatSystem.PubSub`.
    pub pubsub: PubSub,
    /// `ChatSystem.Presence`.
    pub presence: Presence<PresenceMeta>,
    /// `ChatSystem.MessageStore`.
    pub store: ServerPid<MessageStore>,
}

/// Why the chat system could not start.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// PubSub.
    #[error(transparent)]
    PubSub(#[from] PubSubError),
    /// Presence.
    #[error(transparent)]
    Presence(#[from] PresenceError),
    /// The message store.
    #[error("message store: {0}")]
    Store(#[from] StartError),
    /// The web endpoint.
    #[error("web endpoint on {addr}: {source}")]
    Web {
        /// Where it was to listen.
        addr: SocketAddr,
        /// Why it could not.
        source: std::io::Error,
    },
}

impl ChatSystem {
    /// Starts PubSub, Presence and the message store on `node`.
    ///
    /// # Errors
    /// [`ChatError`]: a name is taken on this node.
    pub async fn start(node: &Node) -> Result<ChatSystem, ChatError> {
        Self::start_with_store_delay(node, std::time::Duration::ZERO).await
    }

    /// As [`start`](Self::start), with a store that spends `delay` on every
    /// message: the demo's deliberately slow consumer.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn start_with_store_delay(
        node: &Node,
        delay: std::time::Duration,
    ) -> Result<ChatSystem, ChatError> {
        let pubsub = PubSub::start(node, PUBSUB)?;
        let presence = Presence::start(node, PRESENCE, &pubsub, PresenceConfig::default())?;
        let store = gen_server::start::<MessageStore>(
            node,
            (pubsub.clone(), delay),
            ServerOptions::new()
                .name(store::NAME)
                .message_heap(store::message_heap),
        )
        .await?;
        Ok(ChatSystem {
            node: node.clone(),
            pubsub,
            presence,
            store,
        })
    }

    /// `MessageStore.add_message(room, sender, content)`.
    pub fn add_message(&self, room: &str, sender: &str, content: &str) {
        self.store.cast(store::AddMessage {
            room: room.to_owned(),
            sender: sender.to_owned(),
            content: content.to_owned(),
        });
    }

    /// `MessageStore.get_recent_messages(room, limit)`, oldest first.
    ///
    /// # Errors
    /// The store did not answer in time.
    pub async fn get_recent_messages(
        &self,
        room: &str,
        limit: usize,
    ) -> Result<Vec<Message>, clustertop_runtime::CallError> {
        let get = store::GetRecent {
            room: room.to_owned(),
            limit,
        };
        self.store
            .call(get, std::time::Duration::from_secs(5))
            .await
    }
}

/// The message store's mailbox type, for callers that hold its pid.
pub type StoreMsg = ServerMsg<MessageStore>;
