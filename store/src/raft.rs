//! Raft groups: a replicated state machine in OTP terms (the article's
//! `ConsensusStore` on `Rafter.Server`).
//!
//! A [`RaftServer`] says how to start the state and how a command changes
//! it; [`Raft::start`] starts this node's replica of a group; any node's
//! replica takes [`Raft::command`] (forwarded to the leader, applied in
//! log order on every replica, answered once committed and applied on the
//! leader), [`Raft::read`] (linearizable: read-index on the leader) and
//! [`Raft::dirty_read`] (this replica's state as it is).
//!
//! # Guarantees
//! - Commands are linearizable; a command answered `Ok` is committed on a
//!   majority and survives any minority's loss.
//! - A replica cut off from the majority cannot commit: its commands and
//!   reads fail with [`CommandError::Timeout`] or
//!   [`CommandError::Unavailable`] within [`RaftConfig::command_timeout`],
//!   never hang.
//! - A panic in [`RaftServer::handle_command`] fails that command with the
//!   panic's text ([`CommandError::Failed`]) and leaves the state as it was
//!   on every replica; the group goes on.
//!
//! # Cost
//! A command is one call to the leader (if it is elsewhere), one log
//! append with an fsync on each replica (on the blocking pool), and one
//! round of replication. Commands and replies are encoded with postcard.

pub(crate) mod engine;

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

/// A replicated state machine: its state, and what commands and queries
/// do to it. Handlers must be deterministic: every replica applies the
/// same commands in the same order and must reach the same state.
pub trait RaftServer: Send + Sync + 'static {
    /// The replicated state; its snapshot is its serde encoding.
    type State: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What changes the state.
    type Command: Serialize + DeserializeOwned + Send + 'static;
    /// What a command answers.
    type Reply: Serialize + DeserializeOwned + Send + 'static;
    /// What reads the state.
    type Query: Serialize + DeserializeOwned + Send + 'static;
    /// What a query answers.
    type Answer: Serialize + DeserializeOwned + Send + 'static;

    /// The state of a new group.
    fn init() -> Self::State;
    /// Applies `command` to `state` (`handle_command` of the article's
    /// `ConsensusStore`).
    fn handle_command(command: Self::Command, state: &mut Self::State) -> Self::Reply;
    /// Answers `query` from `state`.
    fn handle_query(query: Self::Query, state: &Self::State) -> Self::Answer;
}

/// Where a replica keeps its log, its vote and its snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// In `DIR/GROUP.redb`, fsynced on every write (mnesia's
    /// `disc_copies`): a restarted node comes back with its state.
    Disc(PathBuf),
    /// In memory (mnesia's `ram_copies`): a restarted node comes back
    /// empty. Its vote is forgotten with the rest, so restart such a
    /// member only under a new node name, or after the group has moved
    /// past its term.
    Ram,
}

/// A group's timing and log bounds.
#[derive(Debug, Clone)]
pub struct RaftConfig {
    /// How often the leader sends heartbeats (default 100 ms).
    pub heartbeat: Duration,
    /// A follower that hears no leader for between this and twice this
    /// starts an election (default 500 ms).
    pub election_timeout: Duration,
    /// A snapshot is taken every this many applied entries (default
    /// 5,000); the log before it is then purged.
    pub snapshot_every: u64,
    /// Entries kept after a snapshot for followers slightly behind
    /// (default 1,000).
    pub keep_after_snapshot: u64,
    /// How long a command or read may take, leader changes included
    /// (default 5 s).
    pub command_timeout: Duration,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            heartbeat: Duration::from_millis(100),
            election_timeout: Duration::from_millis(500),
            snapshot_every: 5_000,
            keep_after_snapshot: 1_000,
            command_timeout: Duration::from_secs(5),
        }
    }
}

/// Why a replica could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The group's file could not be opened or read.
    #[error("raft storage {path}: {reason}")]
    Storage {
        /// The file or directory.
        path: String,
        /// Why.
        reason: String,
    },
    /// This node is not among the members given.
    #[error("node {node} is not a member of the group")]
    NotAMember {
        /// This node.
        node: String,
    },
    /// This node's storage for the group is empty, but the group's leader
    /// has seen this member's log match up to `matched`: its files were
    /// lost. Such a member must not vote until it has caught up, so it is
    /// not started: remove it ([`Raft::remove_member`] from another
    /// member), start it with [`Raft::join`], and add it again
    /// ([`Raft::add_member`]).
    #[error(
        "node {node} has no storage for raft group {group}, but the group's leader has its log up \
         to {matched}: its files were lost; remove it from the group, then join and add it again"
    )]
    Wiped {
        /// This node.
        node: String,
        /// The group.
        group: String,
        /// How far the leader had seen this member's log.
        matched: u64,
    },
    /// The configuration is refused.
    #[error("raft configuration: {0}")]
    Config(String),
    /// The engine did not start.
    #[error("raft: {0}")]
    Engine(String),
}

/// Why a command or read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The handler failed (it panicked, with this text, or the command
    /// could not be decoded); the state is as it was.
    #[error("the command failed: {0}")]
    Failed(String),
    /// No leader committed it within the command timeout (no majority
    /// reachable, or an election that did not end).
    #[error("no answer within {0:?} (is a majority of the group reachable?)")]
    Timeout(Duration),
    /// The group refused it (it is shutting down, or the engine failed).
    #[error("the group is unavailable: {0}")]
    Unavailable(String),
}

/// A member's role in its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Role {
    /// It leads the term.
    Leader,
    /// It is campaigning.
    Candidate,
    /// It follows the leader and votes.
    Follower,
    /// It follows without a vote (catching up).
    Learner,
    /// It has stopped.
    Stopped,
}

/// One replica's view of its group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct GroupStatus {
    /// The group.
    pub group: String,
    /// This replica's role.
    pub role: Role,
    /// The current term.
    pub term: u64,
    /// The leader's node name, if one is known.
    pub leader: Option<String>,
    /// The last index in this replica's log.
    pub last_log_index: Option<u64>,
    /// The last index applied to its state.
    pub applied_index: Option<u64>,
    /// The last index its snapshot holds.
    pub snapshot_index: Option<u64>,
    /// The last index purged from its log.
    pub purged_index: Option<u64>,
    /// The members' node names.
    pub members: Vec<String>,
}

/// The state machine as the engine sees it: bytes in, bytes out.
pub(crate) trait Machine: Send + Sync + 'static {
    /// Applies an encoded command; on an error the state may be changed
    /// (the engine rebuilds it).
    fn apply(&mut self, command: &[u8]) -> Result<Vec<u8>, String>;
    /// The state, encoded.
    fn snapshot(&self) -> Result<Vec<u8>, String>;
    /// Replaces the state with `snapshot`'s, or the initial state.
    fn restore(&mut self, snapshot: Option<&[u8]>) -> Result<(), String>;
    /// Answers an encoded query.
    fn query(&self, query: &[u8]) -> Result<Vec<u8>, String>;
}

/// A [`RaftServer`]'s state behind the [`Machine`] interface.
struct Server<S: RaftServer> {
    state: S::State,
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

impl<S: RaftServer> Machine for Server<S> {
    fn apply(&mut self, command: &[u8]) -> Result<Vec<u8>, String> {
        let command: S::Command =
            postcard::from_bytes(command).map_err(|e| format!("undecodable command: {e}"))?;
        let state = &mut self.state;
        let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            S::handle_command(command, state)
        }))
        .map_err(|p| format!("handle_command panicked: {}", panic_text(p.as_ref())))?;
        postcard::to_allocvec(&reply).map_err(|e| e.to_string())
    }

    fn snapshot(&self) -> Result<Vec<u8>, String> {
        postcard::to_allocvec(&self.state).map_err(|e| e.to_string())
    }

    fn restore(&mut self, snapshot: Option<&[u8]>) -> Result<(), String> {
        self.state = match snapshot {
            Some(bytes) => postcard::from_bytes(bytes).map_err(|e| e.to_string())?,
            None => S::init(),
        };
        Ok(())
    }

    fn query(&self, query: &[u8]) -> Result<Vec<u8>, String> {
        let query: S::Query =
            postcard::from_bytes(query).map_err(|e| format!("undecodable query: {e}"))?;
        let state = &self.state;
        let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            S::handle_query(query, state)
        }))
        .map_err(|p| format!("handle_query panicked: {}", panic_text(p.as_ref())))?;
        postcard::to_allocvec(&answer).map_err(|e| e.to_string())
    }
}

/// This node's replica of a group running `S`.
pub struct Raft<S: RaftServer> {
    replica: engine::Replica,
    _server: PhantomData<fn() -> S>,
}

impl<S: RaftServer> std::fmt::Debug for Raft<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.status();
        f.debug_struct("Raft")
            .field("group", &status.group)
            .field("role", &status.role)
            .field("term", &status.term)
            .finish_non_exhaustive()
    }
}

impl<S: RaftServer> Raft<S> {
    /// Starts this node's replica of `group`, whose members are `members`
    /// (node names, this node's among them), kept in `storage`. A new
    /// group is initialized with `members`; a group found in `storage`
    /// goes on from its log and snapshot. Start it on every member: the
    /// group elects a leader once a majority runs.
    ///
    /// # Errors
    /// [`StartError`]: this node is not a member, the storage cannot be
    /// opened or read (the error names the file), or the configuration is
    /// refused.
    pub async fn start(
        node: &clustertop_runtime::Node,
        group: &str,
        members: &[String],
        storage: Storage,
        config: RaftConfig,
    ) -> Result<Raft<S>, StartError> {
        Self::start_replica(node, group, Some(members), storage, config).await
    }

    /// Starts this node's replica of an existing `group` that this node is
    /// not yet a member of: it takes no part until a member adds it
    /// ([`Raft::add_member`]), then catches up (from a snapshot if the
    /// log has been purged) and votes.
    ///
    /// # Errors
    /// As [`Raft::start`].
    pub async fn join(
        node: &clustertop_runtime::Node,
        group: &str,
        storage: Storage,
        config: RaftConfig,
    ) -> Result<Raft<S>, StartError> {
        Self::start_replica(node, group, None, storage, config).await
    }

    async fn start_replica(
        node: &clustertop_runtime::Node,
        group: &str,
        members: Option<&[String]>,
        storage: Storage,
        config: RaftConfig,
    ) -> Result<Raft<S>, StartError> {
        let machine = Box::new(Server::<S> { state: S::init() });
        let replica =
            engine::Replica::start(node, group, members, &storage, &config, machine).await?;
        Ok(Raft {
            replica,
            _server: PhantomData,
        })
    }

    /// Adds node `name`, whose replica has joined ([`Raft::join`]), to the
    /// group: as a learner until it has caught up with the leader's log,
    /// then as a voter (two membership changes through the log, joint
    /// consensus between them). From any member; waits at most `timeout`
    /// (catching up may take a while).
    ///
    /// # Errors
    /// [`CommandError`]: the change was refused, or no leader finished it
    /// in time.
    pub async fn add_member(&self, name: &str, timeout: Duration) -> Result<(), CommandError> {
        self.replica.add_member(name, timeout).await
    }

    /// Removes node `name` from the group (its replica stops taking part;
    /// stop it there). From any member.
    ///
    /// # Errors
    /// [`CommandError`].
    pub async fn remove_member(&self, name: &str) -> Result<(), CommandError> {
        self.replica.remove_member(name).await
    }

    /// Applies `command` through the group's log and answers its reply
    /// (from any member: forwarded to the leader).
    ///
    /// # Errors
    /// [`CommandError`].
    pub async fn command(&self, command: S::Command) -> Result<S::Reply, CommandError> {
        let bytes =
            postcard::to_allocvec(&command).map_err(|e| CommandError::Failed(e.to_string()))?;
        let reply = self.replica.command(bytes).await?;
        postcard::from_bytes(&reply).map_err(|e| CommandError::Failed(e.to_string()))
    }

    /// Answers `query` linearizably: on the leader, once it has confirmed
    /// its leadership with a majority and applied all it had committed
    /// when the read began (read-index).
    ///
    /// # Errors
    /// [`CommandError`].
    pub async fn read(&self, query: S::Query) -> Result<S::Answer, CommandError> {
        let bytes =
            postcard::to_allocvec(&query).map_err(|e| CommandError::Failed(e.to_string()))?;
        let answer = self.replica.read(bytes).await?;
        postcard::from_bytes(&answer).map_err(|e| CommandError::Failed(e.to_string()))
    }

    /// Answers `query` from this replica's state as it is (possibly
    /// behind the leader's).
    ///
    /// # Errors
    /// [`CommandError::Failed`] if the query handler panicked.
    pub fn dirty_read(&self, query: S::Query) -> Result<S::Answer, CommandError> {
        let bytes =
            postcard::to_allocvec(&query).map_err(|e| CommandError::Failed(e.to_string()))?;
        let answer = self.replica.dirty_read(&bytes)?;
        postcard::from_bytes(&answer).map_err(|e| CommandError::Failed(e.to_string()))
    }

    /// This replica's view of the group.
    pub fn status(&self) -> GroupStatus {
        self.replica.status()
    }

    /// Waits until this replica knows a leader; its node name, or `None`
    /// if `timeout` passed first.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Option<String> {
        self.replica.wait_for_leader(timeout).await
    }

    /// Stops this node's replica (its storage stays).
    pub async fn stop(&self) {
        self.replica.stop().await;
    }
}
