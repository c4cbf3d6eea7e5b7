//! Raft's network over the runtime: the group's process on each member
//! ([`RpcServer`]), the calls to it ([`Peer`]), and the answers to
//! forwarded commands, reads and membership changes.

use super::*;

/// A call to the group's process on another node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum Rpc {
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
pub(super) enum Outcome {
    Done(Applied),
    NotLeader(Option<String>),
    Failed(String),
}

/// The group's process on each member: answers Raft's messages and
/// forwarded commands, each in a task of its own so one slow answer
/// (a snapshot being installed) does not hold the others.
pub(super) struct RpcServer {
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

pub(super) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| format!("undecodable request: {e}"))
}

pub(super) fn encoded<T: Serialize>(v: &T) -> Result<Vec<u8>, String> {
    encode(v).map_err(|e| e.to_string())
}

pub(super) async fn answer(
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

pub(super) async fn add_member(raft: &openraft::Raft<Tc>, name: &str) -> Outcome {
    let id = member_id(name);
    // Blocks until the learner has caught up with the leader's log.
    let learner = raft.add_learner(id, BasicNode::new(name), true).await;
    if learner.is_err() {
        return membership_outcome(learner);
    }
    let change = ChangeMembers::AddVoterIds([id].into());
    membership_outcome(raft.change_membership(change, false).await)
}

pub(super) fn membership_outcome(
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

pub(super) async fn write_local(raft: &openraft::Raft<Tc>, cmd: Cmd) -> Outcome {
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
pub(super) async fn refuse_if_wiped(
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

pub(super) fn process_name(group: &str) -> String {
    format!("raft:{group}")
}

/// Raft's side of the network: a client per peer.
pub(super) struct Net {
    pub(super) node: Node,
    pub(super) group: Arc<str>,
}

/// Calls to one peer's group process.
pub(super) struct Peer {
    pub(super) node: Node,
    pub(super) group: Arc<str>,
    pub(super) to: String,
    pub(super) target: Id,
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
pub(super) struct CallFailed(pub(super) String);

impl Peer {
    pub(super) async fn call(&self, rpc: Rpc, timeout: Duration) -> Result<Vec<u8>, CallFailed> {
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
