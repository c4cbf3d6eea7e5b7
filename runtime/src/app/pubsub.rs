//! Topic publish/subscribe across the cluster (Phoenix.PubSub's model).
//!
//! Each node runs one server per PubSub instance, registered under the
//! instance's name. Subscribers are local processes and are known only to
//! their own node. A broadcast delivers to the local subscribers directly
//! and sends **one** message per other connected node, to the server of
//! the same name there, which delivers to its local subscribers.
//!
//! # Guarantees
//! - Per-pair FIFO: one publisher's broadcasts reach each subscriber in
//!   order (one link per node pair, one server per node, both in order).
//! - A subscriber that exits is removed (the server monitors it); a node
//!   that goes down takes its subscriptions with it (they were never held
//!   elsewhere). Delivery to other nodes is at most once, as every send.
//! - The broadcast carries the publisher's trace context; the server's
//!   relay span is its child, and each delivery carries the relay's
//!   context, so a broadcast and its handling on other nodes are one trace.
//!
//! # Types
//! A topic carries messages of any type that crosses nodes
//! ([`RemoteMessage`]) and is `Clone`; a subscriber receives those of its
//! mailbox's type. Across nodes a message travels encoded (postcard) with
//! its Rust type name; the receiving server decodes it once per type among
//! the topic's subscribers and skips the rest (counted as `mismatched`).
//! Both ends must run builds with the same message types.
//!
//! # Cost
//! A local delivery is a clone and a mailbox send under a read lock of the
//! topic table. A broadcast with remote nodes encodes the message once and
//! allocates one frame per node. Subscribing takes the write lock and, for
//! a process's first topic, one message to the server (which monitors it).

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::dist::{RemoteMessage, SendNamedError};
use crate::{Message, MonitorRef, Node, Pid, ProcessId, Received, SpawnOptions};

/// Why a PubSub operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PubSubError {
    /// The name is held by another process on this node.
    #[error("cannot register PubSub {name:?}: {reason}")]
    Register {
        /// The instance name.
        name: String,
        /// What the registry said.
        reason: crate::RegistryError,
    },
    /// The message could not be encoded for other nodes.
    #[error("encoding a broadcast on {topic:?}: {reason}")]
    Encode {
        /// The topic.
        topic: String,
        /// The encoder's error.
        reason: String,
    },
    /// `direct_broadcast` to a node that is not connected, or a node
    /// without distribution.
    #[error("direct broadcast to {node}: {reason}")]
    Send {
        /// The target node.
        node: String,
        /// Why.
        reason: SendNamedError,
    },
}

/// A broadcast as it crosses to another node's server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Frame {
    topic: String,
    type_name: String,
    #[serde(with = "serde_bytes")]
    payload: Vec<u8>,
}

/// What the server's mailbox takes.
#[derive(Debug, Serialize, Deserialize)]
pub enum ServerMsg {
    /// A broadcast from another node.
    Frame(Frame),
    /// Start monitoring a new local subscriber (local only).
    #[serde(skip)]
    Watch(ProcessId),
    /// Stop monitoring a process that left its last topic (local only).
    #[serde(skip)]
    Unwatch(ProcessId),
}

/// One topic's counters, as [`PubSub::topics`] reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The topic.
    pub topic: String,
    /// Local subscribers now.
    pub subscribers: usize,
    /// Broadcasts published on this node (monotonic).
    pub published: u64,
    /// Messages put into local subscribers' mailboxes, from any node
    /// (monotonic).
    pub delivered: u64,
}

/// Counters over all topics of an instance (monotonic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PubSubStats {
    /// Frames received from other nodes.
    pub frames_in: u64,
    /// Frames sent to other nodes.
    pub frames_out: u64,
    /// Broadcasts that reached a topic with subscribers none of which takes
    /// their type (locally, or in a frame from another node), and frames
    /// that failed to decode. Nonzero means two parts of the application
    /// disagree on a topic's message type.
    pub mismatched: u64,
}

/// A subscriber, type-erased.
trait Sink: Send + Sync {
    fn pid(&self) -> ProcessId;
    fn type_name(&self) -> &'static str;
    fn decode(&self, bytes: &[u8]) -> Option<Box<dyn Any + Send>>;
    /// Sends a clone of `msg` (which is of this sink's type); whether it was.
    fn deliver(&self, msg: &dyn Any) -> bool;
}

/// A subscriber whose mailbox takes `T`, fed messages of type `M` through
/// `map`: a variant of its own message type, or the identity for a plain
/// `subscribe`.
struct MappedSink<M, T: Message> {
    pid: Pid<T>,
    map: fn(M) -> T,
}

impl<M: RemoteMessage + Clone, T: Message> Sink for MappedSink<M, T> {
    fn pid(&self) -> ProcessId {
        self.pid.id()
    }
    fn type_name(&self) -> &'static str {
        std::any::type_name::<M>()
    }
    fn decode(&self, bytes: &[u8]) -> Option<Box<dyn Any + Send>> {
        postcard::from_bytes::<M>(bytes)
            .ok()
            .map(|m| Box::new(m) as Box<dyn Any + Send>)
    }
    fn deliver(&self, msg: &dyn Any) -> bool {
        match msg.downcast_ref::<M>() {
            Some(m) => {
                self.pid.send((self.map)(m.clone()));
                true
            }
            None => false,
        }
    }
}

#[derive(Default)]
struct Topic {
    sinks: Vec<Arc<dyn Sink>>,
    published: AtomicU64,
    delivered: AtomicU64,
}

struct Inner {
    name: Arc<str>,
    node: Node,
    server: Pid<ServerMsg>,
    topics: RwLock<HashMap<Arc<str>, Topic>>,
    /// Each subscriber's topics: what its exit removes.
    by_pid: Mutex<HashMap<ProcessId, Vec<Arc<str>>>>,
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    mismatched: AtomicU64,
}

/// A PubSub instance: a handle to this node's server of that name. Cheap
/// to clone.
#[derive(Clone)]
pub struct PubSub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSub")
            .field("name", &self.inner.name)
            .field("server", &self.inner.server.id())
            .finish()
    }
}

/// The PubSub instances of a node, for observers.
#[derive(Default)]
struct Directory {
    instances: Mutex<Vec<PubSub>>,
}

impl PubSub {
    /// Starts this node's server for the instance `name` and registers it
    /// under that name. Every node of the cluster that uses the instance
    /// starts it under the same name.
    ///
    /// # Errors
    /// [`PubSubError::Register`] when the name is taken on this node.
    pub fn start(node: &Node, name: &str) -> Result<PubSub, PubSubError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Arc<Inner>>(1);
        let server = node.spawn_opts(
            SpawnOptions::new().behaviour("pubsub"),
            move |ctx: crate::Context<ServerMsg>| async move {
                // The handle exists before the first message is taken.
                let Ok(inner) = ready_rx.recv() else { return };
                serve(ctx, inner).await;
            },
        );
        server.enable_remote();
        if let Err(reason) = node.register(name, server.id()) {
            node.exit(server.id(), crate::ExitReason::Normal);
            return Err(PubSubError::Register {
                name: name.to_owned(),
                reason,
            });
        }
        let inner = Arc::new(Inner {
            name: name.into(),
            node: node.clone(),
            server,
            topics: RwLock::new(HashMap::new()),
            by_pid: Mutex::new(HashMap::new()),
            frames_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            mismatched: AtomicU64::new(0),
        });
        let _ = ready_tx.send(inner.clone());
        let pubsub = PubSub { inner };
        let directory = node.extension::<Directory>();
        let mut instances = directory.instances.lock();
        instances.retain(|p| p.inner.server.is_alive());
        instances.push(pubsub.clone());
        Ok(pubsub)
    }

    /// The PubSub instances running on `node`.
    pub fn instances(node: &Node) -> Vec<PubSub> {
        let directory = node.extension::<Directory>();
        let mut instances = directory.instances.lock();
        instances.retain(|p| p.inner.server.is_alive());
        instances.clone()
    }

    /// The instance name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// This node's server.
    pub fn server(&self) -> ProcessId {
        self.inner.server.id()
    }

    /// Subscribes `pid` (a local process) to `topic`. Subscribing twice
    /// delivers each message twice, as in Phoenix.
    pub fn subscribe<M: RemoteMessage + Clone>(&self, topic: &str, pid: &Pid<M>) {
        self.subscribe_as(topic, pid, std::convert::identity::<M>);
    }

    /// Subscribes `pid` to the messages of type `M` on `topic`, each turned
    /// into the process's own message type by `map`: one process can take
    /// several types of broadcast (a chat room's messages and its presence
    /// diffs), as one Phoenix process receives any term.
    pub fn subscribe_as<M: RemoteMessage + Clone, T: Message>(
        &self,
        topic: &str,
        pid: &Pid<T>,
        map: fn(M) -> T,
    ) {
        self.add_sink(
            topic,
            pid.id(),
            Arc::new(MappedSink {
                pid: pid.clone(),
                map,
            }),
        );
    }

    fn add_sink(&self, topic: &str, pid: ProcessId, sink: Arc<dyn Sink>) {
        let topic: Arc<str> = {
            let mut topics = self.inner.topics.write();
            let key = match topics.get_key_value(topic) {
                Some((k, _)) => k.clone(),
                None => {
                    make_room(&mut topics);
                    let k: Arc<str> = topic.into();
                    topics.insert(k.clone(), Topic::default());
                    k
                }
            };
            if let Some(entry) = topics.get_mut(&key) {
                entry.sinks.push(sink);
            }
            key
        };
        let first = {
            let mut by_pid = self.inner.by_pid.lock();
            let topics = by_pid.entry(pid).or_default();
            topics.push(topic);
            topics.len() == 1
        };
        if first {
            self.inner.server.send(ServerMsg::Watch(pid));
        }
    }

    /// Unsubscribes `pid` from `topic` (every subscription it has there).
    pub fn unsubscribe(&self, topic: &str, pid: ProcessId) {
        self.inner.remove(pid, Some(topic));
    }

    /// Sends `msg` to every subscriber of `topic` in the cluster.
    ///
    /// # Errors
    /// [`PubSubError::Encode`] when the message cannot be encoded for
    /// other nodes (local subscribers have it by then).
    pub fn broadcast<M: RemoteMessage + Clone>(
        &self,
        topic: &str,
        msg: M,
    ) -> Result<(), PubSubError> {
        self.publish(None, topic, msg, Scope::Cluster)
    }

    /// As [`broadcast`](Self::broadcast), skipping `from` (the sender).
    ///
    /// # Errors
    /// As [`broadcast`](Self::broadcast).
    pub fn broadcast_from<M: RemoteMessage + Clone>(
        &self,
        from: ProcessId,
        topic: &str,
        msg: M,
    ) -> Result<(), PubSubError> {
        self.publish(Some(from), topic, msg, Scope::Cluster)
    }

    /// Sends `msg` to the subscribers of `topic` on this node only.
    pub fn local_broadcast<M: RemoteMessage + Clone>(&self, topic: &str, msg: M) {
        let _ = self.publish(None, topic, msg, Scope::Local);
    }

    /// As [`local_broadcast`](Self::local_broadcast), skipping `from`.
    pub fn local_broadcast_from<M: RemoteMessage + Clone>(
        &self,
        from: ProcessId,
        topic: &str,
        msg: M,
    ) {
        let _ = self.publish(Some(from), topic, msg, Scope::Local);
    }

    /// Sends `msg` to the subscribers of `topic` on `node` only (this node
    /// included).
    ///
    /// # Errors
    /// [`PubSubError::Encode`], or [`PubSubError::Send`] when this node has
    /// no distribution.
    pub fn direct_broadcast<M: RemoteMessage + Clone>(
        &self,
        node: &str,
        topic: &str,
        msg: M,
    ) -> Result<(), PubSubError> {
        if node == self.inner.node.name() {
            return self.publish(None, topic, msg, Scope::Local);
        }
        self.count_published(topic);
        let frame = encode(topic, &msg)?;
        self.inner
            .send_frame(node, frame)
            .map_err(|reason| PubSubError::Send {
                node: node.to_owned(),
                reason,
            })
    }

    /// The local subscribers of `topic`.
    pub fn subscribers(&self, topic: &str) -> Vec<ProcessId> {
        self.inner
            .topics
            .read()
            .get(topic)
            .map(|t| t.sinks.iter().map(|s| s.pid()).collect())
            .unwrap_or_default()
    }

    /// The topics `pid` is subscribed to on this instance.
    pub fn subscriptions(&self, pid: ProcessId) -> Vec<String> {
        let mut topics: Vec<String> = self
            .inner
            .by_pid
            .lock()
            .get(&pid)
            .map(|t| t.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default();
        topics.sort();
        topics.dedup();
        topics
    }

    /// Every topic with local subscribers or local publications, sorted.
    pub fn topics(&self) -> Vec<TopicInfo> {
        let mut out: Vec<TopicInfo> = self
            .inner
            .topics
            .read()
            .iter()
            .map(|(name, t)| TopicInfo {
                topic: name.to_string(),
                subscribers: t.sinks.len(),
                published: t.published.load(Ordering::Relaxed),
                delivered: t.delivered.load(Ordering::Relaxed),
            })
            .collect();
        out.sort_by(|a, b| a.topic.cmp(&b.topic));
        out
    }

    /// Counters over all topics.
    pub fn stats(&self) -> PubSubStats {
        PubSubStats {
            frames_in: self.inner.frames_in.load(Ordering::Relaxed),
            frames_out: self.inner.frames_out.load(Ordering::Relaxed),
            mismatched: self.inner.mismatched.load(Ordering::Relaxed),
        }
    }

    fn count_published(&self, topic: &str) {
        self.inner.count_published(topic);
    }

    fn publish<M: RemoteMessage + Clone>(
        &self,
        from: Option<ProcessId>,
        topic: &str,
        msg: M,
        scope: Scope,
    ) -> Result<(), PubSubError> {
        self.count_published(topic);
        if scope == Scope::Cluster {
            let nodes = self.inner.node.nodes();
            if !nodes.is_empty() {
                let frame = encode(topic, &msg)?;
                for node in &nodes {
                    // A node that went away meanwhile: its subscribers went
                    // with it.
                    let _ = self.inner.send_frame(node, frame.clone());
                }
            }
        }
        self.inner
            .deliver_local(topic, std::any::type_name::<M>(), from, &msg as &dyn Any);
        Ok(())
    }
}

/// How many topics an instance keeps counters for. Past it, topics with
/// no local subscriber are forgotten (their counters restart if they come
/// back), so publishing to ever new topic names cannot grow a node without
/// bound; topics with subscribers are always kept.
pub const MAX_IDLE_TOPICS: usize = 10_000;

fn make_room(topics: &mut HashMap<Arc<str>, Topic>) {
    if topics.len() >= MAX_IDLE_TOPICS {
        topics.retain(|_, t| !t.sinks.is_empty());
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Local,
    Cluster,
}

fn encode<M: RemoteMessage>(topic: &str, msg: &M) -> Result<Frame, PubSubError> {
    let payload = postcard::to_allocvec(msg).map_err(|e| PubSubError::Encode {
        topic: topic.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(Frame {
        topic: topic.to_owned(),
        type_name: std::any::type_name::<M>().to_owned(),
        payload,
    })
}

impl Inner {
    fn count_published(&self, topic: &str) {
        if let Some(t) = self.topics.read().get(topic) {
            t.published.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut topics = self.topics.write();
        make_room(&mut topics);
        topics
            .entry(topic.into())
            .or_default()
            .published
            .fetch_add(1, Ordering::Relaxed);
    }

    fn send_frame(&self, node: &str, frame: Frame) -> Result<(), SendNamedError> {
        self.node
            .dist()
            .send_named_on(node, &self.name, ServerMsg::Frame(frame))?;
        self.frames_out.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn deliver_local(
        &self,
        topic: &str,
        type_name: &str,
        skip: Option<ProcessId>,
        msg: &dyn Any,
    ) -> u64 {
        // Held across the sends: a send to a local mailbox never waits.
        let topics = self.topics.read();
        let Some(entry) = topics.get(topic) else {
            return 0;
        };
        let mut delivered = 0;
        let mut of_type = false;
        for sink in entry.sinks.iter().filter(|s| s.type_name() == type_name) {
            of_type = true;
            if Some(sink.pid()) != skip && sink.deliver(msg) {
                delivered += 1;
            }
        }
        entry.delivered.fetch_add(delivered, Ordering::Relaxed);
        if !of_type && !entry.sinks.is_empty() {
            self.mismatched.fetch_add(1, Ordering::Relaxed);
        }
        delivered
    }

    /// Delivers a frame from another node: decoded once per subscriber type.
    fn deliver_frame(&self, frame: &Frame) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
        let topics = self.topics.read();
        let Some(entry) = topics.get(frame.topic.as_str()) else {
            return;
        };
        let mut decoded: Option<Box<dyn Any + Send>> = None;
        let mut delivered = 0;
        for sink in entry
            .sinks
            .iter()
            .filter(|s| s.type_name() == frame.type_name)
        {
            if decoded.is_none() {
                decoded = sink.decode(&frame.payload);
                if decoded.is_none() {
                    break;
                }
            }
            if let Some(msg) = &decoded {
                if sink.deliver(msg.as_ref()) {
                    delivered += 1;
                }
            }
        }
        if decoded.is_none() && !entry.sinks.is_empty() {
            self.mismatched.fetch_add(1, Ordering::Relaxed);
        }
        entry.delivered.fetch_add(delivered, Ordering::Relaxed);
    }

    /// Removes `pid` from `topic`, or from every topic; returns whether
    /// the process has no topic left.
    fn remove(&self, pid: ProcessId, only: Option<&str>) -> bool {
        let (left, gone): (bool, Vec<Arc<str>>) = {
            let mut by_pid = self.by_pid.lock();
            let Some(topics) = by_pid.get_mut(&pid) else {
                return true;
            };
            let gone: Vec<Arc<str>> = match only {
                Some(t) => {
                    let g: Vec<_> = topics.iter().filter(|x| &***x == t).cloned().collect();
                    topics.retain(|x| &**x != t);
                    g
                }
                None => std::mem::take(topics),
            };
            let left = topics.is_empty();
            if left {
                by_pid.remove(&pid);
            }
            (left, gone)
        };
        if !gone.is_empty() {
            let mut topics = self.topics.write();
            for name in &gone {
                if let Some(entry) = topics.get_mut(name) {
                    entry.sinks.retain(|s| s.pid() != pid);
                }
            }
        }
        if left && only.is_some() {
            self.server.send(ServerMsg::Unwatch(pid));
        }
        left
    }
}

async fn serve(mut ctx: crate::Context<ServerMsg>, inner: Arc<Inner>) {
    let mut monitors: HashMap<ProcessId, MonitorRef> = HashMap::new();
    loop {
        match ctx.recv().await {
            Received::Msg(ServerMsg::Frame(frame)) => {
                let parent = ctx.trace_context();
                if crate::trace::wants_span(parent.as_ref()) {
                    let span = tracing::debug_span!("pubsub.deliver", topic = %frame.topic);
                    crate::trace::set_parent(&span, parent.as_ref());
                    let _entered = span.enter();
                    inner.deliver_frame(&frame);
                } else {
                    inner.deliver_frame(&frame);
                }
            }
            Received::Msg(ServerMsg::Watch(pid)) => {
                monitors.entry(pid).or_insert_with(|| ctx.monitor(pid));
            }
            Received::Msg(ServerMsg::Unwatch(pid)) => {
                // Still unsubscribed (no topic re-taken since)?
                if !inner.by_pid.lock().contains_key(&pid) {
                    if let Some(m) = monitors.remove(&pid) {
                        ctx.demonitor(m);
                    }
                }
            }
            Received::Down(down) => {
                monitors.remove(&down.pid);
                inner.remove(down.pid, None);
            }
            Received::Exit(_) | Received::Node(_) => {}
        }
    }
}
