//! The one module that names openraft's types: its type configuration,
//! the log and state-machine storage on redb, the network over the
//! runtime's remote calls, and the replica handle the rest of the crate
//! uses ([`Replica`]). A change of openraft version stays here.
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

const LOG: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");

fn io_err(e: impl std::error::Error + 'static) -> AnyError {
    AnyError::new(&e)
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(v)
}

/// The group's redb file (or in-memory database).
#[derive(Clone)]
pub(crate) struct Db {
    db: Arc<redb::Database>,
    /// The file, for error messages ("in memory" for RAM storage).
    path: Arc<str>,
}

impl Db {
    fn open(storage: &Storage, group: &str) -> Result<Db, StartError> {
        let (db, path) = match storage {
            Storage::Disc(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| StartError::Storage {
                    path: dir.display().to_string(),
                    reason: e.to_string(),
                })?;
                let path = dir.join(format!("{group}.redb"));
                let db = redb::Database::create(&path).map_err(|e| StartError::Storage {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                (db, path.display().to_string())
            }
            Storage::Ram => (
                redb::Database::builder()
                    .create_with_backend(redb::backends::InMemoryBackend::new())
                    .map_err(|e| StartError::Storage {
                        path: "in memory".into(),
                        reason: e.to_string(),
                    })?,
                "in memory".to_owned(),
            ),
        };
        let db = Db {
            db: Arc::new(db),
            path: path.into(),
        };
        // Create the tables, so readers find them.
        db.write(|tx| {
            tx.open_table(LOG)?;
            tx.open_table(META)?;
            Ok(())
        })
        .map_err(|e| StartError::Storage {
            path: db.path.to_string(),
            reason: e.to_string(),
        })?;
        Ok(db)
    }

    fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), redb::Error> {
        let tx = self.db.begin_write()?;
        f(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Runs a write transaction on the blocking pool.
    async fn write_blocking(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error> + Send + 'static,
    ) -> Result<(), AnyError> {
        let db = self.clone();
        match tokio::task::spawn_blocking(move || db.write(f)).await {
            Ok(r) => r.map_err(io_err),
            Err(e) => Err(io_err(e)),
        }
    }

    fn meta<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>, AnyError> {
        let tx = self.db.begin_read().map_err(io_err)?;
        let table = tx.open_table(META).map_err(io_err)?;
        let Some(v) = table.get(key).map_err(io_err)? else {
            return Ok(None);
        };
        let value = postcard::from_bytes(v.value())
            .map_err(|e| AnyError::error(format!("{}: {key} is unreadable: {e}", self.path)))?;
        Ok(Some(value))
    }

    fn entries(&self, range: impl RangeBounds<u64>) -> Result<Vec<Entry<Tc>>, AnyError> {
        let tx = self.db.begin_read().map_err(io_err)?;
        let table = tx.open_table(LOG).map_err(io_err)?;
        let mut out = Vec::new();
        let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
        for row in table.range(bounds).map_err(io_err)? {
            let (index, bytes) = row.map_err(io_err)?;
            let entry: Entry<Tc> = postcard::from_bytes(bytes.value()).map_err(|e| {
                AnyError::error(format!(
                    "{}: log entry {} is unreadable: {e}",
                    self.path,
                    index.value()
                ))
            })?;
            out.push(entry);
        }
        Ok(out)
    }
}

fn put_meta<T: Serialize>(
    tx: &redb::WriteTransaction,
    key: &str,
    value: &T,
) -> Result<(), redb::Error> {
    let bytes = encode(value).map_err(|e| redb::Error::Corrupted(e.to_string()))?;
    tx.open_table(META)?.insert(key, bytes.as_slice())?;
    Ok(())
}

/// The log and the vote.
#[derive(Clone)]
pub(crate) struct LogStore {
    db: Db,
}

impl RaftLogReader<Tc> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + fmt::Debug + Send>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<Tc>>> {
        self.db
            .entries(range)
            .map_err(|e| StorageIOError::read_logs(e).into())
    }
}

impl RaftLogStorage<Tc> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StorageResult<LogState<Tc>> {
        let purged: Option<LogId<Id>> = self
            .db
            .meta("purged")
            .map_err(StorageIOError::read_logs)?
            .flatten();
        let last = {
            let tx = self
                .db
                .db
                .begin_read()
                .map_err(|e| StorageIOError::read_logs(io_err(e)))?;
            let table = tx
                .open_table(LOG)
                .map_err(|e| StorageIOError::read_logs(io_err(e)))?;
            match table
                .last()
                .map_err(|e| StorageIOError::read_logs(io_err(e)))?
            {
                Some((_, bytes)) => {
                    let entry: Entry<Tc> = postcard::from_bytes(bytes.value()).map_err(|e| {
                        StorageIOError::read_logs(AnyError::error(format!(
                            "{}: the last log entry is unreadable: {e}",
                            self.db.path
                        )))
                    })?;
                    Some(entry.log_id)
                }
                None => purged,
            }
        };
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<Id>) -> StorageResult<()> {
        let vote = *vote;
        self.db
            .write_blocking(move |tx| put_meta(tx, "vote", &vote))
            .await
            .map_err(|e| StorageIOError::write_vote(e).into())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<Id>>> {
        self.db
            .meta("vote")
            .map_err(|e| StorageIOError::read_vote(e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId<Id>>) -> StorageResult<()> {
        self.db
            .write_blocking(move |tx| put_meta(tx, "committed", &committed))
            .await
            .map_err(|e| StorageIOError::write(e).into())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<Id>>> {
        Ok(self
            .db
            .meta("committed")
            .map_err(StorageIOError::read)?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<Tc>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<Tc>> + Send,
        I::IntoIter: Send,
    {
        let mut rows = Vec::new();
        for entry in entries {
            let bytes = encode(&entry).map_err(|e| StorageIOError::write_logs(io_err(e)))?;
            rows.push((entry.log_id.index, bytes));
        }
        let result = self
            .db
            .write_blocking(move |tx| {
                let mut log = tx.open_table(LOG)?;
                for (index, bytes) in &rows {
                    log.insert(index, bytes.as_slice())?;
                }
                Ok(())
            })
            .await;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<Id>) -> StorageResult<()> {
        let from = log_id.index;
        self.db
            .write_blocking(move |tx| {
                tx.open_table(LOG)?.retain_in(from.., |_, _| false)?;
                Ok(())
            })
            .await
            .map_err(|e| StorageIOError::write_logs(e).into())
    }

    async fn purge(&mut self, log_id: LogId<Id>) -> StorageResult<()> {
        let upto = log_id.index;
        self.db
            .write_blocking(move |tx| {
                put_meta(tx, "purged", &Some(log_id))?;
                tx.open_table(LOG)?.retain_in(..=upto, |_, _| false)?;
                Ok(())
            })
            .await
            .map_err(|e| StorageIOError::write_logs(e).into())
    }
}

/// The snapshot as stored: its metadata and the state's bytes.
#[derive(Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<Id, BasicNode>,
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
}

/// The state machine: the application's state in memory, what was last
/// applied, and the current snapshot (kept in the group's file).
pub(crate) struct StateMachine {
    machine: Arc<RwLock<Box<dyn Machine>>>,
    applied: Option<LogId<Id>>,
    membership: StoredMembership<Id, BasicNode>,
    snapshot: Option<StoredSnapshot>,
    /// Commands since the snapshot whose handler panicked: skipped when
    /// the state is rebuilt.
    panicked: BTreeSet<u64>,
    db: Db,
    snapshots_built: u64,
    /// For the apply spans.
    group: Arc<str>,
    node: Arc<str>,
}

impl StateMachine {
    fn open(
        db: Db,
        machine: Arc<RwLock<Box<dyn Machine>>>,
        (group, node): (Arc<str>, Arc<str>),
    ) -> Result<Self, StartError> {
        let snapshot: Option<StoredSnapshot> =
            db.meta("snapshot").map_err(|e| StartError::Storage {
                path: db.path.to_string(),
                reason: e.to_string(),
            })?;
        let mut sm = StateMachine {
            machine,
            applied: None,
            membership: StoredMembership::default(),
            snapshot: None,
            panicked: BTreeSet::new(),
            db,
            snapshots_built: 0,
            group,
            node,
        };
        if let Some(snap) = snapshot {
            sm.machine
                .write()
                .restore(Some(&snap.data))
                .map_err(|reason| StartError::Storage {
                    path: sm.db.path.to_string(),
                    reason: format!("the snapshot is unreadable: {reason}"),
                })?;
            sm.applied = snap.meta.last_log_id;
            sm.membership = snap.meta.last_membership.clone();
            sm.snapshot = Some(snap);
        }
        Ok(sm)
    }

    /// Rebuilds the state as of just before `index`: the snapshot, then
    /// the commands after it, skipping those that panicked.
    fn rebuild_before(&mut self, index: u64) -> Result<(), AnyError> {
        let from = self
            .snapshot
            .as_ref()
            .and_then(|s| s.meta.last_log_id)
            .map_or(0, |l| l.index + 1);
        let mut machine = self.machine.write();
        machine
            .restore(self.snapshot.as_ref().map(|s| s.data.as_slice()))
            .map_err(AnyError::error)?;
        for entry in self.db.entries(from..index)? {
            if let EntryPayload::Normal(cmd) = &entry.payload {
                if !self.panicked.contains(&entry.log_id.index) {
                    // Applied before without a panic: the same again.
                    let _ = machine.apply(&cmd.bytes);
                }
            }
        }
        Ok(())
    }
}

/// Builds a snapshot of the state as it is now.
pub(crate) struct Builder {
    data: Result<Vec<u8>, String>,
    applied: Option<LogId<Id>>,
    membership: StoredMembership<Id, BasicNode>,
    db: Db,
    seq: u64,
}

impl RaftSnapshotBuilder<Tc> for Builder {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<Tc>> {
        let data = self
            .data
            .clone()
            .map_err(|e| StorageIOError::read_state_machine(AnyError::error(e)))?;
        let meta = SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!("{}-{}", self.applied.map_or(0, |l| l.index), self.seq),
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        };
        self.db
            .write_blocking(move |tx| put_meta(tx, "snapshot", &stored))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<Tc> for StateMachine {
    type SnapshotBuilder = Builder;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<Id>>, StoredMembership<Id, BasicNode>)> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<Applied>>
    where
        I: IntoIterator<Item = Entry<Tc>> + Send,
        I::IntoIter: Send,
    {
        let mut replies = Vec::new();
        for entry in entries {
            self.applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => replies.push(Applied::Reply(Vec::new())),
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                    replies.push(Applied::Reply(Vec::new()));
                }
                EntryPayload::Normal(cmd) => {
                    // A traced command's apply joins its trace, on every
                    // replica.
                    let span = cmd.trace.filter(TraceContext::is_sampled).map(|parent| {
                        let span = tracing::info_span!(
                            target: SPAN_TARGET,
                            "raft.apply",
                            group = %self.group,
                            node = %self.node,
                            index = entry.log_id.index,
                        );
                        trace::set_parent(&span, Some(&parent));
                        span
                    });
                    let _entered = span.as_ref().map(tracing::Span::enter);
                    let result = self.machine.write().apply(&cmd.bytes);
                    match result {
                        Ok(reply) => replies.push(Applied::Reply(reply)),
                        Err(why) => {
                            // Undo what the handler did before it failed.
                            self.panicked.insert(entry.log_id.index);
                            self.rebuild_before(entry.log_id.index)
                                .map_err(|e| StorageIOError::apply(entry.log_id, e))?;
                            replies.push(Applied::Failed(why));
                        }
                    }
                }
            }
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshots_built += 1;
        Builder {
            data: self.machine.read().snapshot(),
            applied: self.applied,
            membership: self.membership.clone(),
            db: self.db.clone(),
            seq: self.snapshots_built,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<Id, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot.into_inner(),
        };
        self.machine
            .write()
            .restore(Some(&stored.data))
            .map_err(|e| {
                StorageIOError::read_snapshot(Some(meta.signature()), AnyError::error(e))
            })?;
        let keep = stored.clone();
        self.db
            .write_blocking(move |tx| put_meta(tx, "snapshot", &keep))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), e))?;
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.panicked.clear();
        self.snapshot = Some(stored);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<Tc>>> {
        let stored: Option<StoredSnapshot> = match &self.snapshot {
            Some(s) => Some(s.clone()),
            None => self
                .db
                .meta("snapshot")
                .map_err(|e| StorageIOError::read_snapshot(None, e))?,
        };
        Ok(stored.map(|s| {
            // Snapshots built since hold the state at their own index.
            let from = s.meta.last_log_id.map_or(0, |l| l.index);
            self.panicked.retain(|&i| i > from);
            Snapshot {
                meta: s.meta,
                snapshot: Box::new(Cursor::new(s.data)),
            }
        }))
    }
}

/// A call to the group's process on another node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Rpc {
    /// openraft's AppendEntries.
    Append(#[serde(with = "serde_bytes")] Vec<u8>),
    /// openraft's Vote.
    Vote(#[serde(with = "serde_bytes")] Vec<u8>),
    /// One chunk of a snapshot.
    Snapshot(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A command forwarded to the leader.
    Command(Cmd),
    /// A query to answer after a linearizable read barrier (read-index).
    Read(Cmd),
    /// Add this node as a voter: first as a learner, until it has caught
    /// up, then as a voter.
    AddMember(String),
    /// Remove this node from the group.
    RemoveMember(String),
    /// On the leader: how far it has seen this member's log match its
    /// own (`None`: not at all, or this node does not lead).
    Matched(String),
}

/// What a forwarded command or read gave.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Outcome {
    Done(Applied),
    NotLeader(Option<String>),
    Failed(String),
}

/// The group's process on each member: answers Raft's messages and
/// forwarded commands, each in a task of its own so one slow answer
/// (a snapshot being installed) does not hold the others.
pub(crate) struct RpcServer {
    raft: openraft::Raft<Tc>,
    machine: Arc<RwLock<Box<dyn Machine>>>,
}

impl GenServer for RpcServer {
    type Args = (openraft::Raft<Tc>, Arc<RwLock<Box<dyn Machine>>>);
    type Call = Rpc;
    type Reply = Result<Vec<u8>, String>;
    type Cast = ();
    type Info = ();

    async fn init(
        (raft, machine): Self::Args,
        ctx: &mut ServerContext<Self>,
    ) -> Result<Self, ExitReason> {
        ctx.enable_remote();
        Ok(RpcServer { raft, machine })
    }

    async fn handle_call(
        &mut self,
        rpc: Rpc,
        ctx: &mut ServerContext<Self>,
    ) -> CallResult<Result<Vec<u8>, String>> {
        let Some(reply) = ctx.defer_reply() else {
            return CallResult::NoReply;
        };
        let raft = self.raft.clone();
        let machine = self.machine.clone();
        tokio::spawn(
            async move {
                reply.reply(answer(&raft, &machine, rpc).await);
            }
            .instrument(tracing::Span::current()),
        );
        CallResult::NoReply
    }
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| format!("undecodable request: {e}"))
}

fn encoded<T: Serialize>(v: &T) -> Result<Vec<u8>, String> {
    encode(v).map_err(|e| e.to_string())
}

async fn answer(
    raft: &openraft::Raft<Tc>,
    machine: &RwLock<Box<dyn Machine>>,
    rpc: Rpc,
) -> Result<Vec<u8>, String> {
    match rpc {
        Rpc::Append(b) => encoded(&raft.append_entries(decode(&b)?).await),
        Rpc::Vote(b) => encoded(&raft.vote(decode(&b)?).await),
        Rpc::Snapshot(b) => encoded(&raft.install_snapshot(decode(&b)?).await),
        Rpc::Command(cmd) => encoded(&write_local(raft, cmd).await),
        Rpc::AddMember(name) => encoded(&add_member(raft, &name).await),
        Rpc::Matched(name) => {
            let m = raft.metrics().borrow().clone();
            encoded(&match (m.state, m.replication) {
                (openraft::ServerState::Leader, Some(progress)) => {
                    let matched = progress.get(&member_id(&name)).copied().flatten();
                    let reply = encode(&matched.map(|l| l.index)).map_err(|e| e.to_string())?;
                    Outcome::Done(Applied::Reply(reply))
                }
                _ => Outcome::NotLeader(m.current_leader.and_then(|id| {
                    m.membership_config
                        .membership()
                        .get_node(&id)
                        .map(|n| n.addr.clone())
                })),
            })
        }
        Rpc::RemoveMember(name) => {
            let change = ChangeMembers::RemoveVoters([member_id(&name)].into());
            encoded(&membership_outcome(
                raft.change_membership(change, false).await,
            ))
        }
        Rpc::Read(query) => encoded(&match raft.ensure_linearizable().await {
            Ok(_) => match machine.read().query(&query.bytes) {
                Ok(answer) => Outcome::Done(Applied::Reply(answer)),
                Err(e) => Outcome::Done(Applied::Failed(e)),
            },
            Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(f))) => {
                Outcome::NotLeader(f.leader_node.map(|n| n.addr))
            }
            Err(e) => Outcome::Failed(e.to_string()),
        }),
    }
}

async fn add_member(raft: &openraft::Raft<Tc>, name: &str) -> Outcome {
    let id = member_id(name);
    // Blocks until the learner has caught up with the leader's log.
    let learner = raft.add_learner(id, BasicNode::new(name), true).await;
    if learner.is_err() {
        return membership_outcome(learner);
    }
    let change = ChangeMembers::AddVoterIds([id].into());
    membership_outcome(raft.change_membership(change, false).await)
}

fn membership_outcome(
    result: Result<
        openraft::raft::ClientWriteResponse<Tc>,
        RaftError<Id, ClientWriteError<Id, BasicNode>>,
    >,
) -> Outcome {
    match result {
        Ok(_) => Outcome::Done(Applied::Reply(Vec::new())),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            Outcome::NotLeader(f.leader_node.map(|n| n.addr))
        }
        Err(e) => Outcome::Done(Applied::Failed(e.to_string())),
    }
}

async fn write_local(raft: &openraft::Raft<Tc>, cmd: Cmd) -> Outcome {
    match raft.client_write(cmd).await {
        Ok(done) => Outcome::Done(done.data),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            Outcome::NotLeader(f.leader_node.map(|n| n.addr))
        }
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// Refuses to start a member whose storage is empty while the group's
/// leader has seen its log match: its files were lost, and a member that
/// forgot what it acknowledged must not vote (a committed entry might be
/// lost). It must be removed and added again, to catch up as a learner.
async fn refuse_if_wiped(
    node: &Node,
    group: &str,
    members: &[String],
    within: Duration,
) -> Result<(), StartError> {
    let me = node.name();
    let mut next: Vec<String> = members.iter().filter(|m| *m != me).cloned().collect();
    let mut asked = 0;
    while let Some(to) = next.pop() {
        asked += 1;
        if asked > 2 * members.len() {
            break;
        }
        let peer = Peer {
            node: node.clone(),
            group: group.into(),
            to: to.clone(),
            target: member_id(&to),
        };
        let Ok(answer) = peer.call(Rpc::Matched(me.to_owned()), within).await else {
            continue;
        };
        match decode::<Outcome>(&answer) {
            Ok(Outcome::Done(Applied::Reply(bytes))) => {
                if let Ok(Some(index)) = decode::<Option<u64>>(&bytes) {
                    if index > 0 {
                        return Err(StartError::Wiped {
                            node: me.to_owned(),
                            group: group.to_owned(),
                            matched: index,
                        });
                    }
                }
                return Ok(());
            }
            Ok(Outcome::NotLeader(Some(leader))) if leader != me => next.push(leader),
            _ => {}
        }
    }
    Ok(())
}

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

fn process_name(group: &str) -> String {
    format!("raft:{group}")
}

/// Raft's side of the network: a client per peer.
pub(crate) struct Net {
    node: Node,
    group: Arc<str>,
}

/// Calls to one peer's group process.
pub(crate) struct Peer {
    node: Node,
    group: Arc<str>,
    to: String,
    target: Id,
}

impl RaftNetworkFactory<Tc> for Net {
    type Network = Peer;

    async fn new_client(&mut self, target: Id, node: &BasicNode) -> Peer {
        Peer {
            node: self.node.clone(),
            group: self.group.clone(),
            to: node.addr.clone(),
            target,
        }
    }
}

/// Why a call to a peer failed before it answered.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct CallFailed(String);

impl Peer {
    async fn call(&self, rpc: Rpc, timeout: Duration) -> Result<Vec<u8>, CallFailed> {
        let to: ServerPid<RpcServer> = self
            .node
            .dist()
            .named_on::<ServerMsg<RpcServer>>(&self.to, &process_name(&self.group))
            .map_err(|e| CallFailed(e.to_string()))?;
        match to.call(rpc, timeout).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) => Err(CallFailed(e)),
            Err(e) => Err(CallFailed(e.to_string())),
        }
    }

    async fn rpc<Req: Serialize, Resp: for<'de> Deserialize<'de>, E>(
        &self,
        wrap: fn(Vec<u8>) -> Rpc,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<Id, BasicNode, RaftError<Id, E>>>
    where
        E: std::error::Error + for<'de> Deserialize<'de>,
    {
        let bytes = encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let answer = self
            .call(wrap(bytes), option.hard_ttl())
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let result: Result<Resp, RaftError<Id, E>> =
            postcard::from_bytes(&answer).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<Tc> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Tc>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<Id>, RPCError<Id, BasicNode, RaftError<Id>>> {
        self.rpc(Rpc::Append, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<Tc>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<Id>,
        RPCError<Id, BasicNode, RaftError<Id, InstallSnapshotError>>,
    > {
        self.rpc(Rpc::Snapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<Id>,
        option: RPCOption,
    ) -> Result<VoteResponse<Id>, RPCError<Id, BasicNode, RaftError<Id>>> {
        self.rpc(Rpc::Vote, &rpc, &option).await
    }
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
