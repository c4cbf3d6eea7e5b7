//! The one module that names openraft's types: its type configuration,
//! the log and state-machine storage on redb, the network over the
//! runtime's remote calls, and the replica handle the rest of the crate
//! uses ([`Replica`]). A change of openraft version stays here.
//!
//! Here: the type configuration and the replica. In `storage`: the redb
//! file, the log and the state machine. In `rpc`: the group's process and
//! the calls to it.
//!
//! # Storage
//! One redb file per group and node (`DIR/GROUP.redb`, or redb's
//! in-memory backend for [`Storage::Ram`]). Tables: the log (index →
//! entry), the vote, the committed and purged log ids, and the current
//! snapshot (its metadata and bytes). Every write is one redb transaction
//! committed with redb's default durability (an fsync per commit), run on
//! the blocking pool so a replica's fsync never stalls a scheduler thread.
//! The state machine itself is in memory: on start it is rebuilt from the
//! snapshot and the log entries after it.
//!
//! # Network
//! Raft's messages are calls to the group's process on the other node
//! (`raft:GROUP`, a GenServer registered on each member), over the
//! authenticated mesh: no port or frame type of its own. Requests and
//! answers are openraft's types encoded with postcard.
//!
//! # A command that panics
//! A panic in the application's command handler fails that command with
//! the panic's text. The state is then rebuilt as if the command had never
//! been applied: restored from the current snapshot and the entries since
//! replayed, each command that panicked skipped. Every replica does the
//! same, so they stay alike; replay costs the entries since the snapshot,
//! and happens only on a panic.

use super::{Machine, RaftConfig, Storage};
use crate::raft::{CommandError, GroupStatus, Role, StartError};
use clustertop_runtime::gen_server::{self, ServerMsg};
use clustertop_runtime::trace::{self, TraceContext};
use clustertop_runtime::{
    CallResult, ExitReason, GenServer, Node, ServerContext, ServerOptions, ServerPid,
};
use openraft::error::{
    ClientWriteError, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, ChangeMembers, Entry, EntryPayload, LogId, RaftLogReader, RaftNetwork,
    RaftNetworkFactory, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership, Vote,
};
use parking_lot::RwLock;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// An application command or query, encoded by the caller, with the
/// trace context of the command's span (so each replica's apply span
/// joins the caller's trace).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Cmd {
    #[serde(with = "serde_bytes")]
    pub(crate) bytes: Vec<u8>,
    pub(crate) trace: Option<TraceContext>,
}

impl Cmd {
    fn untraced(bytes: Vec<u8>) -> Self {
        Cmd { bytes, trace: None }
    }
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cmd({} bytes)", self.bytes.len())
    }
}

/// The target of the store's spans.
const SPAN_TARGET: &str = "clustertop_store::raft";

/// What applying a command gave: the encoded reply, or why it failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Applied {
    Reply(#[serde(with = "serde_bytes")] Vec<u8>),
    Failed(String),
}

openraft::declare_raft_types!(
    /// The group's openraft types: commands and replies are bytes.
    pub(crate) Tc:
        D = Cmd,
        R = Applied,
);

type Id = u64;
type StorageResult<T> = Result<T, StorageError<Id>>;

/// A member's id: the first 8 bytes of the SHA-256 of its node name.
pub(crate) fn member_id(name: &str) -> Id {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) | 1
}

mod rpc;
mod storage;

use rpc::*;
use storage::*;

/// Keeps the replica's gauges (labels `group`, `node`) up to date with
/// openraft's metrics, until the replica stops: `clustertop_raft_term`,
/// `clustertop_raft_leader` (1 on the leader), `…_last_log_index`,
/// `…_applied_index`, `…_snapshot_index`, `…_purged_index`,
/// `…_members`.
fn watch_metrics(raft: &openraft::Raft<Tc>, group: &str, node: &str) {
    let mut rx = raft.metrics();
    let labels = [("group", group.to_owned()), ("node", node.to_owned())];
    tokio::spawn(async move {
        loop {
            {
                let m = rx.borrow_and_update();
                let index = |l: Option<LogId<Id>>| l.map_or(0.0, |l| l.index as f64);
                let leader = matches!(m.state, openraft::ServerState::Leader);
                metrics::gauge!("clustertop_raft_term", &labels).set(m.current_term as f64);
                metrics::gauge!("clustertop_raft_leader", &labels).set(if leader {
                    1.0
                } else {
                    0.0
                });
                metrics::gauge!("clustertop_raft_last_log_index", &labels)
                    .set(m.last_log_index.map_or(0.0, |i| i as f64));
                metrics::gauge!("clustertop_raft_applied_index", &labels)
                    .set(index(m.last_applied));
                metrics::gauge!("clustertop_raft_snapshot_index", &labels).set(index(m.snapshot));
                metrics::gauge!("clustertop_raft_purged_index", &labels).set(index(m.purged));
                metrics::gauge!("clustertop_raft_members", &labels)
                    .set(m.membership_config.membership().nodes().count() as f64);
            }
            if rx.changed().await.is_err() {
                break;
            }
        }
    });
}

/// One node's replica of a group.
pub(crate) struct Replica {
    raft: openraft::Raft<Tc>,
    node: Node,
    group: Arc<str>,
    machine: Arc<RwLock<Box<dyn Machine>>>,
    server: ServerPid<RpcServer>,
    timeout: Duration,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.node.exit(self.server.id(), ExitReason::Shutdown);
    }
}

impl Replica {
    /// Starts this node's replica of `group`. With `members` (node names,
    /// this node's among them) it initializes the group if it is new;
    /// without, it waits to be added by a member.
    pub(crate) async fn start(
        node: &Node,
        group: &str,
        members: Option<&[String]>,
        storage: &Storage,
        config: &RaftConfig,
        machine: Box<dyn Machine>,
    ) -> Result<Replica, StartError> {
        let me = node.name().to_owned();
        if members.is_some_and(|m| !m.contains(&me)) {
            return Err(StartError::NotAMember { node: me });
        }
        let db = Db::open(storage, group)?;
        let machine = Arc::new(RwLock::new(machine));
        let names: (Arc<str>, Arc<str>) = (group.into(), node.name().into());
        let sm = StateMachine::open(db.clone(), machine.clone(), names)?;
        let mut log = LogStore { db };
        if let Some(members) = members {
            let fresh = log
                .get_log_state()
                .await
                .map_err(|e| StartError::Engine(e.to_string()))?
                .last_log_id
                .is_none();
            if fresh {
                refuse_if_wiped(node, group, members, config.election_timeout * 4).await?;
            }
        }
        let raft_config = openraft::Config {
            cluster_name: group.to_owned(),
            heartbeat_interval: config.heartbeat.as_millis() as u64,
            election_timeout_min: config.election_timeout.as_millis() as u64,
            election_timeout_max: config.election_timeout.as_millis() as u64 * 2,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: config.keep_after_snapshot,
            ..Default::default()
        }
        .validate()
        .map_err(|e| StartError::Config(e.to_string()))?;
        let group: Arc<str> = group.into();
        let net = Net {
            node: node.clone(),
            group: group.clone(),
        };
        let raft = openraft::Raft::new(member_id(&me), Arc::new(raft_config), net, log, sm)
            .await
            .map_err(|e| StartError::Engine(e.to_string()))?;
        watch_metrics(&raft, &group, node.name());
        let server = gen_server::start::<RpcServer>(
            node,
            (raft.clone(), machine.clone()),
            ServerOptions::new().name(process_name(&group)),
        )
        .await
        .map_err(|e| StartError::Engine(e.to_string()))?;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| StartError::Engine(e.to_string()))?;
        if let (false, Some(members)) = (initialized, members) {
            let nodes: BTreeMap<Id, BasicNode> = members
                .iter()
                .map(|m| (member_id(m), BasicNode::new(m)))
                .collect();
            // Every member proposes the same first membership; the ones
            // that find the log begun already are told so, harmlessly.
            if let Err(e) = raft.initialize(nodes).await {
                tracing::debug!(error = %e, group = %group, "initialize");
            }
        }
        Ok(Replica {
            raft,
            node: node.clone(),
            group,
            machine,
            server,
            timeout: config.command_timeout,
        })
    }

    /// Runs `cmd` through the log (on the leader, wherever it is) and
    /// answers the handler's reply once it is applied there.
    pub(crate) async fn command(&self, cmd: Vec<u8>) -> Result<Vec<u8>, CommandError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let span = trace::wants_span(trace::current_context().as_ref()).then(|| {
            tracing::info_span!(
                target: SPAN_TARGET,
                "raft.command",
                group = %self.group,
                node = %self.node.name(),
            )
        });
        let started = std::time::Instant::now();
        let run = async {
            let cmd = Cmd {
                bytes: cmd,
                trace: trace::current_context(),
            };
            tokio::time::timeout_at(deadline, self.route(Rpc::Command(cmd)))
                .await
                .map_err(|_| CommandError::Timeout(self.timeout))?
        };
        let result = match span {
            Some(span) => run.instrument(span).await,
            None => run.await,
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(CommandError::Failed(_)) => "failed",
            Err(CommandError::Timeout(_)) => "timeout",
            Err(CommandError::Unavailable(_)) => "unavailable",
        };
        let (group, node) = (self.group.to_string(), self.node.name().to_owned());
        metrics::counter!("clustertop_raft_commands_total", "group" => group.clone(), "node" => node.clone(), "result" => outcome)
            .increment(1);
        metrics::histogram!("clustertop_raft_command_seconds", "group" => group, "node" => node)
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// Answers `query` on the leader after a read-index barrier: the
    /// answer reflects every command committed before the read began.
    pub(crate) async fn read(&self, query: Vec<u8>) -> Result<Vec<u8>, CommandError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        tokio::time::timeout_at(deadline, self.route(Rpc::Read(Cmd::untraced(query))))
            .await
            .map_err(|_| CommandError::Timeout(self.timeout))?
    }

    /// Adds `name` (whose replica has joined) as a voter, once it has
    /// caught up; within `timeout`.
    pub(crate) async fn add_member(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<(), CommandError> {
        tokio::time::timeout(timeout, self.route(Rpc::AddMember(name.to_owned())))
            .await
            .map_err(|_| CommandError::Timeout(timeout))?
            .map(drop)
    }

    /// Removes `name` from the group.
    pub(crate) async fn remove_member(&self, name: &str) -> Result<(), CommandError> {
        tokio::time::timeout(self.timeout, self.route(Rpc::RemoveMember(name.to_owned())))
            .await
            .map_err(|_| CommandError::Timeout(self.timeout))?
            .map(drop)
    }

    /// Answers `query` from this replica's state as it is.
    pub(crate) fn dirty_read(&self, query: &[u8]) -> Result<Vec<u8>, CommandError> {
        self.machine
            .read()
            .query(query)
            .map_err(CommandError::Failed)
    }

    /// Sends `rpc` to this node's own process first, then to the leader
    /// each answer names, until one applies it.
    async fn route(&self, rpc: Rpc) -> Result<Vec<u8>, CommandError> {
        let mut to = self.node.name().to_owned();
        let mut backoff = Duration::from_millis(20);
        loop {
            let outcome: Outcome = if to == self.node.name() {
                let answer = answer(&self.raft, &self.machine, rpc.clone())
                    .await
                    .map_err(CommandError::Failed)?;
                decode(&answer).map_err(CommandError::Failed)?
            } else {
                let peer = Peer {
                    node: self.node.clone(),
                    group: self.group.clone(),
                    to: to.clone(),
                    target: member_id(&to),
                };
                match peer.call(rpc.clone(), self.timeout).await {
                    // A replica that has stopped, or failed, on that node:
                    // not applied there; ask again.
                    Ok(answer) => match decode(&answer).map_err(CommandError::Failed)? {
                        Outcome::Failed(_) => Outcome::NotLeader(None),
                        outcome => outcome,
                    },
                    // No answer in time: it may have been applied, so it
                    // is not sent again.
                    Err(CallFailed(why)) if why.contains("timed out") => {
                        return Err(CommandError::Timeout(self.timeout));
                    }
                    Err(_) => Outcome::NotLeader(None),
                }
            };
            match outcome {
                Outcome::Done(Applied::Reply(reply)) => return Ok(reply),
                Outcome::Done(Applied::Failed(why)) => return Err(CommandError::Failed(why)),
                Outcome::Failed(why) => return Err(CommandError::Unavailable(why)),
                Outcome::NotLeader(Some(leader)) if leader != to => to = leader,
                Outcome::NotLeader(_) => {
                    // No leader known yet (an election): wait, then ask
                    // this node again.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                    to = self.node.name().to_owned();
                }
            }
        }
    }

    /// The replica's figures now.
    pub(crate) fn status(&self) -> GroupStatus {
        let m = self.raft.metrics().borrow().clone();
        GroupStatus {
            group: self.group.to_string(),
            role: match m.state {
                openraft::ServerState::Leader => Role::Leader,
                openraft::ServerState::Candidate => Role::Candidate,
                openraft::ServerState::Learner => Role::Learner,
                openraft::ServerState::Follower => Role::Follower,
                openraft::ServerState::Shutdown => Role::Stopped,
            },
            term: m.current_term,
            leader: m.current_leader.and_then(|id| {
                m.membership_config
                    .membership()
                    .get_node(&id)
                    .map(|n| n.addr.clone())
            }),
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            members: m
                .membership_config
                .membership()
                .nodes()
                .map(|(_, n)| n.addr.clone())
                .collect(),
        }
    }

    /// Waits until this replica knows a leader (or `timeout` passes).
    pub(crate) async fn wait_for_leader(&self, timeout: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut metrics = self.raft.metrics();
        loop {
            if let Some(leader) = self.status().leader {
                return Some(leader);
            }
            if tokio::time::timeout_at(deadline, metrics.changed())
                .await
                .is_err()
            {
                return None;
            }
        }
    }

    /// Stops the replica on this node. Its process stays, answering that
    /// it has stopped, so a member that forwards to it learns so at once.
    pub(crate) async fn stop(&self) {
        let _ = self.raft.shutdown().await;
    }
}
