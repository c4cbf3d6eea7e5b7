//! Remote spawn and remote tasks: behaviours and task functions registered
//! by name on each node, started from another node.
//!
//! Closures cannot cross nodes, so, as with `:rpc` and named
//! `Task.Supervisor` children, each node registers what it can start:
//! [`Distribution::register_spawnable`](super::Distribution::register_spawnable) for processes, [`Distribution::register_task`](super::Distribution::register_task) for
//! tasks. [`Distribution::spawn_on`](super::Distribution::spawn_on) starts a registered behaviour on another node
//! and returns its pid; [`Distribution::task_on`](super::Distribution::task_on) runs a registered task there, as
//! a process, and awaits its result with a timeout. An unknown name, a
//! message type other than the behaviour's, or arguments that do not
//! decode are typed errors.

use super::PeerCache;
use super::frame::{Frame, ReplyFailure, SpawnKind, WirePid};
use super::mesh::Mesh;
use super::peer::Peer;
use super::remote::{self, RemoteMessage};
use super::replies::Completion;
use crate::exit_reason::ExitReason;
use crate::node::Node;
use crate::pid::Pid;
use crate::process::{Context, SpawnOptions};
use crate::task::{TaskError, TaskSupervisor};
use crate::trace::TraceContext;
use futures_util::future::BoxFuture;
use parking_lot::RwLock;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tracing::Instrument;

/// Starts a registered behaviour from encoded arguments; returns the pid.
type SpawnFn = dyn Fn(&Node, &[u8], u64) -> Result<WirePid, ReplyFailure> + Send + Sync;
/// Runs a registered task from encoded arguments; resolves to the encoded
/// result.
type TaskFn = dyn Fn(&[u8]) -> Result<BoxFuture<'static, Result<Vec<u8>, String>>, ReplyFailure>
    + Send
    + Sync;

/// The name of the task supervisor that runs tasks for other nodes.
pub const TASK_SUPERVISOR: &str = "clustertop.tasks";

/// What a node can start for other nodes, by name, and the supervisor
/// its tasks for them run under.
#[derive(Default)]
pub(crate) struct Spawnables {
    behaviours: RwLock<HashMap<String, Arc<SpawnFn>>>,
    tasks: RwLock<HashMap<String, Arc<TaskFn>>>,
    task_sup: Arc<tokio::sync::OnceCell<TaskSupervisor>>,
}

impl std::fmt::Debug for Spawnables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spawnables")
            .field("behaviours", &self.behaviours.read().len())
            .field("tasks", &self.tasks.read().len())
            .finish()
    }
}

/// Starting something on another node failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteSpawnError {
    /// This node is not distributed.
    #[error("this node is not distributed")]
    NotDistributed,
    /// The node is not connected, or was lost before answering.
    #[error("node {0} is down")]
    NodeDown(String),
    /// Nothing is registered under that name there.
    #[error("nothing registered as {0:?} there")]
    UnknownName(String),
    /// The behaviour takes another message type.
    #[error("type mismatch: {0}")]
    TypeMismatch(String),
    /// Arguments or result did not encode or decode.
    #[error("encoding: {0}")]
    Encoding(String),
    /// The task's process exited without a result (for example a panic).
    #[error("task exited: {0}")]
    Exited(ExitReason),
    /// No answer in time.
    #[error("timed out")]
    Timeout,
}

fn from_failure(f: ReplyFailure, node: &str) -> RemoteSpawnError {
    match f {
        ReplyFailure::NoConnection => RemoteSpawnError::NodeDown(node.to_owned()),
        ReplyFailure::UnknownName(n) => RemoteSpawnError::UnknownName(n),
        ReplyFailure::TypeMismatch(t) => RemoteSpawnError::TypeMismatch(t),
        ReplyFailure::Malformed(e) => RemoteSpawnError::Encoding(e),
        ReplyFailure::Exited(reason) => RemoteSpawnError::Exited(reason),
        ReplyFailure::NoReply => RemoteSpawnError::Timeout,
    }
}

impl super::Distribution<'_> {
    /// Lets other nodes start processes running `body` under `name`
    /// ([`Distribution::spawn_on`](super::Distribution::spawn_on)). The body gets its context and the decoded
    /// arguments; the process accepts remote messages.
    pub fn register_spawnable<A, M, F, Fut>(&self, name: &str, body: F)
    where
        A: DeserializeOwned + Send + 'static,
        M: RemoteMessage,
        F: Fn(Context<M>, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Some(dist) = self.node.dist_layer() else {
            return;
        };
        let body = Arc::new(body);
        let f: Arc<SpawnFn> = Arc::new(move |node: &Node, args: &[u8], tag: u64| {
            if tag != remote::type_tag::<M>() {
                return Err(ReplyFailure::TypeMismatch(format!(
                    "the behaviour takes {}",
                    std::any::type_name::<M>()
                )));
            }
            let args: A = postcard::from_bytes(args)
                .map_err(|e| ReplyFailure::Malformed(format!("arguments: {e}")))?;
            let body = body.clone();
            let pid = node.spawn_opts::<M, _, _>(SpawnOptions::new(), move |ctx| body(ctx, args));
            pid.enable_remote();
            Ok(WirePid {
                node: node.name().to_owned(),
                creation: node.creation(),
                serial: pid.id().serial(),
            })
        });
        dist.spawns.behaviours.write().insert(name.to_owned(), f);
    }

    /// Lets other nodes run `task` under `name` ([`Distribution::task_on`](super::Distribution::task_on)).
    pub fn register_task<A, R, F, Fut>(&self, name: &str, task: F)
    where
        A: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
    {
        let Some(dist) = self.node.dist_layer() else {
            return;
        };
        let task = Arc::new(task);
        let f: Arc<TaskFn> = Arc::new(move |args: &[u8]| {
            let args: A = postcard::from_bytes(args)
                .map_err(|e| ReplyFailure::Malformed(format!("arguments: {e}")))?;
            let fut = task(args);
            Ok(Box::pin(async move {
                let out = fut.await;
                postcard::to_allocvec(&out).map_err(|e| e.to_string())
            }) as BoxFuture<'static, _>)
        });
        dist.spawns.tasks.write().insert(name.to_owned(), f);
    }

    /// Starts the behaviour registered as `name` on `node` with `args`;
    /// returns its pid.
    ///
    /// # Errors
    /// [`RemoteSpawnError`]: unknown name, message type mismatch, node
    /// down, encoding, or no answer within `timeout`.
    pub async fn spawn_on<A: Serialize, M: RemoteMessage>(
        &self,
        node: &str,
        name: &str,
        args: &A,
        timeout: Duration,
    ) -> Result<Pid<M>, RemoteSpawnError> {
        let kind = SpawnKind::Process {
            tag: remote::type_tag::<M>(),
        };
        let bytes = self.start_remote(node, name, kind, args, timeout).await?;
        let wire: WirePid =
            postcard::from_bytes(&bytes).map_err(|e| RemoteSpawnError::Encoding(e.to_string()))?;
        let dist = self
            .node
            .dist_layer()
            .ok_or(RemoteSpawnError::NotDistributed)?;
        Ok(self.node.pid_from_wire(dist, wire))
    }

    /// Runs the task registered as `name` on `node` with `args` and waits
    /// up to `timeout` for its result (Elixir's
    /// `Task.Supervisor.async({sup, node}, ...)` + `Task.await`).
    ///
    /// # Errors
    /// [`RemoteSpawnError`]: unknown name, node down, the task's exit
    /// reason, encoding, or timeout.
    pub async fn task_on<A: Serialize, R: DeserializeOwned>(
        &self,
        node: &str,
        name: &str,
        args: &A,
        timeout: Duration,
    ) -> Result<R, RemoteSpawnError> {
        // The caller's side, in a span (when traced) whose context the
        // request carries, so the task's span on `node` is its child.
        let span = if crate::trace::wants_span(crate::trace::current_context().as_ref()) {
            tracing::debug_span!("task_on", task = name, on = node, node = self.node.name())
        } else {
            tracing::Span::none()
        };
        let bytes = self
            .start_remote(node, name, SpawnKind::Task, args, timeout)
            .instrument(span)
            .await?;
        postcard::from_bytes(&bytes).map_err(|e| RemoteSpawnError::Encoding(e.to_string()))
    }

    async fn start_remote<A: Serialize>(
        &self,
        node: &str,
        name: &str,
        what: SpawnKind,
        args: &A,
        timeout: Duration,
    ) -> Result<Vec<u8>, RemoteSpawnError> {
        let dist = self
            .node
            .dist_layer()
            .ok_or(RemoteSpawnError::NotDistributed)?;
        let args =
            postcard::to_allocvec(args).map_err(|e| RemoteSpawnError::Encoding(e.to_string()))?;
        let trace = crate::trace::current_context();
        if node == self.node.name() {
            // This node itself: the same path, without the wire.
            let (tx, rx) = oneshot::channel();
            dist.spawns
                .start_local(self.node, name.to_owned(), what, (&args, trace), move |r| {
                    let _ = tx.send(r);
                });
            return match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(Ok(bytes))) => Ok(bytes),
                Ok(Ok(Err(failure))) => Err(from_failure(failure, node)),
                Ok(Err(_)) => Err(RemoteSpawnError::Timeout),
                Err(_) => Err(RemoteSpawnError::Timeout),
            };
        }
        let (tx, rx) = oneshot::channel();
        let completion: Completion = Box::new(move |result| {
            let _ = tx.send(result.map(<[u8]>::to_vec));
        });
        let id = dist.mesh.replies().register(node.to_owned(), completion);
        let frame = Frame::Spawn {
            name: name.to_owned(),
            what,
            args,
            reply: id,
            trace,
        };
        if !dist.mesh.send_frame(&PeerCache::default(), node, frame) {
            dist.mesh.replies().cancel(id);
            return Err(RemoteSpawnError::NodeDown(node.to_owned()));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(bytes))) => Ok(bytes),
            Ok(Ok(Err(failure))) => Err(from_failure(failure, node)),
            Ok(Err(_)) => Err(RemoteSpawnError::NodeDown(node.to_owned())),
            Err(_) => {
                dist.mesh.replies().cancel(id);
                Err(RemoteSpawnError::Timeout)
            }
        }
    }
}

impl Spawnables {
    /// Handles a `Spawn` frame from `peer`: starts what is asked and
    /// replies through `mesh`.
    pub(crate) fn on_frame(&self, node: &Node, mesh: &Arc<Mesh>, peer: &Peer, frame: Frame) {
        let Frame::Spawn {
            name,
            what,
            args,
            reply,
            trace,
        } = frame
        else {
            return;
        };
        let (mesh, peer) = (mesh.clone(), peer.info.name.clone());
        self.start_local(node, name, what, (&args, trace), move |result| {
            mesh.send_frame(
                &PeerCache::default(),
                &peer,
                Frame::Reply {
                    id: reply,
                    result: result.map(serde_bytes::ByteBuf::from),
                },
            );
        });
    }

    /// Starts a registered behaviour or task here; `done` gets the encoded
    /// pid or result, or the failure. A task runs in a `task` span, the
    /// child of the caller's when the caller's trace is sampled.
    fn start_local(
        &self,
        node: &Node,
        name: String,
        what: SpawnKind,
        (args, trace): (&[u8], Option<TraceContext>),
        done: impl FnOnce(Result<Vec<u8>, ReplyFailure>) + Send + 'static,
    ) {
        match what {
            SpawnKind::Process { tag } => {
                let f = self.behaviours.read().get(&name).cloned();
                let result = match f {
                    None => Err(ReplyFailure::UnknownName(name)),
                    Some(f) => f(node, args, tag).and_then(|wire| {
                        postcard::to_allocvec(&wire)
                            .map_err(|e| ReplyFailure::Malformed(e.to_string()))
                    }),
                };
                done(result);
            }
            SpawnKind::Task => {
                let f = self.tasks.read().get(&name).cloned();
                let fut = match f {
                    None => return done(Err(ReplyFailure::UnknownName(name))),
                    Some(f) => match f(args) {
                        Ok(fut) => fut,
                        Err(e) => return done(Err(e)),
                    },
                };
                // The task runs under this node's task supervisor (started
                // on first use and registered as `clustertop.tasks`), so it
                // shows in the supervision tree; its exit reason answers if
                // it ends without a result. The caller's timeout bounds the
                // wait on its side.
                let fut = match trace.filter(TraceContext::is_sampled) {
                    Some(parent) => {
                        let span = tracing::debug_span!("task", task = %name, node = node.name());
                        crate::trace::set_parent(&span, Some(&parent));
                        Box::pin(fut.instrument(span)) as BoxFuture<'static, _>
                    }
                    None => fut,
                };
                let node = node.clone();
                let sup = self.task_sup.clone();
                node.handle().clone().spawn(async move {
                    let sup = sup
                        .get_or_try_init(|| async {
                            TaskSupervisor::start_named(&node, TASK_SUPERVISOR).await
                        })
                        .await;
                    let result = match sup {
                        Err(e) => Err(ReplyFailure::Exited(e.clone().into_exit_reason())),
                        Ok(sup) => match sup.async_nolink(fut).await {
                            Err(e) => Err(ReplyFailure::Exited(e.into_exit_reason())),
                            Ok(task) => match task.join().await {
                                Ok(Ok(bytes)) => Ok(bytes),
                                Ok(Err(e)) => Err(ReplyFailure::Malformed(e)),
                                Err(TaskError::Exited(reason)) => Err(ReplyFailure::Exited(reason)),
                                Err(TaskError::Timeout) => Err(ReplyFailure::NoReply),
                            },
                        },
                    };
                    done(result);
                });
            }
        }
    }
}
