//! Supervisors: start children in order, restart them by strategy when they
//! exit, give up when restarts come too fast, stop them in reverse order.
//!
//! A supervisor is a GenServer that traps exits. Its children are linked to
//! it, so a child's exit arrives as an `EXIT` message and the supervisor's
//! own exit (or `kill`) takes its children down.
//!
//! - `OneForOne`: restart only the child that exited.
//! - `OneForAll`: stop all other children (reverse order), restart all.
//! - `RestForOne`: stop the children started after it (reverse order),
//!   restart it and them.
//!
//! Restart intensity: more than `max_restarts` restarts within `period`
//! makes the supervisor stop its children and exit with `shutdown`.
//! [`Supervisor::dynamic`] starts children on demand, one-for-one.

mod spec;
pub(crate) mod stats;

pub use spec::{ChildSpec, Restart, Shutdown};
use stats::Supervisors;
pub use stats::{ChildExit, ChildSlot, Strategy, SupervisorStats};

use crate::error::{CallError, StartError};
use crate::exit_reason::{ChildStartFailure, ExitReason};
use crate::gen_server::{
    self, CallResult, Flow, GenServer, Info, ServerContext, ServerOptions, ServerPid,
};
use crate::node::Node;
use crate::pid::ProcessId;
use crate::process::{self, ProcessKind};
use std::sync::Arc;
use std::time::Duration;

/// A supervisor's configuration: strategy, intensity and children.
#[derive(Debug, Clone)]
pub struct Supervisor {
    strategy: Strategy,
    max_restarts: u32,
    period: Duration,
    children: Vec<ChildSpec>,
    name: Option<String>,
    dynamic: bool,
}

/// The handle of a running supervisor.
pub type SupervisorPid = ServerPid<SupervisorServer>;

/// A child as reported by [`which_children`](SupervisorPid::which_children).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildInfo {
    /// The child's id in its spec.
    pub id: String,
    /// Its current process, `None` while it is not running.
    pub pid: Option<ProcessId>,
    /// Worker or supervisor.
    pub kind: ProcessKind,
    /// Its restart policy.
    pub restart: Restart,
}

impl Supervisor {
    /// A supervisor with `strategy`, no children, and OTP's default
    /// intensity of 3 restarts in 5 seconds.
    pub fn new(strategy: Strategy) -> Self {
        Supervisor {
            strategy,
            max_restarts: 3,
            period: Duration::from_secs(5),
            children: Vec::new(),
            name: None,
            dynamic: false,
        }
    }

    /// A dynamic supervisor (Elixir's `DynamicSupervisor`): no children at
    /// start, children added with
    /// [`start_child`](SupervisorPid::start_child), one-for-one, and a
    /// child that is not restarted is forgotten.
    pub fn dynamic() -> Self {
        let mut sup = Supervisor::new(Strategy::OneForOne);
        sup.dynamic = true;
        sup
    }

    /// Allows at most `max_restarts` restarts within `period`.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.period = period;
        self
    }

    /// Adds a child; children start in the order added.
    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.children.push(spec);
        self
    }

    /// Registers the supervisor under `name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Starts the supervisor and its children, unlinked.
    ///
    /// # Errors
    /// [`StartError::Init`] with [`ExitReason::FailedToStartChild`] naming
    /// the first child that failed (children already started are stopped).
    pub async fn start(self, node: &Node) -> Result<SupervisorPid, StartError> {
        self.start_with(node, false).await
    }

    /// Starts the supervisor linked to the calling process.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn start_link(self, node: &Node) -> Result<SupervisorPid, StartError> {
        self.start_with(node, true).await
    }

    async fn start_with(self, node: &Node, link: bool) -> Result<SupervisorPid, StartError> {
        let behaviour = if self.dynamic {
            "DynamicSupervisor"
        } else {
            "Supervisor"
        };
        let mut opts = ServerOptions::new()
            .kind(ProcessKind::Supervisor)
            .behaviour(behaviour);
        if let Some(name) = &self.name {
            opts = opts.name(name.clone());
        }
        if link {
            opts = opts.link();
        }
        gen_server::start::<SupervisorServer>(node, self, opts).await
    }
}

struct Child {
    spec: ChildSpec,
    pid: Option<ProcessId>,
    /// How its previous incarnation ended.
    last_exit: Option<ChildExit>,
}

/// The supervisor's server state. Use [`Supervisor`] to start one.
pub struct SupervisorServer {
    config: Supervisor,
    children: Vec<Child>,
    stats: Published,
}

/// A supervisor's entry in its node's table of supervisors, removed when
/// the supervisor's state is dropped (however it exits).
struct Published {
    node: Node,
    stats: Arc<SupervisorStats>,
}

impl Drop for Published {
    fn drop(&mut self) {
        self.node.extension::<Supervisors>().remove(self.stats.id);
    }
}

impl std::fmt::Debug for SupervisorServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorServer")
            .field("strategy", &self.config.strategy)
            .field("children", &self.children.len())
            .finish()
    }
}

/// Requests a supervisor serves.
#[derive(Debug)]
#[doc(hidden)]
pub enum SupervisorCall {
    WhichChildren,
    StartChild(ChildSpec),
    TerminateChild(String),
}

/// Replies of a supervisor.
#[derive(Debug)]
#[doc(hidden)]
pub enum SupervisorReply {
    Children(Vec<ChildInfo>),
    Started(Result<ProcessId, StartError>),
    Terminated(bool),
}

impl GenServer for SupervisorServer {
    type Args = Supervisor;
    type Call = SupervisorCall;
    type Reply = SupervisorReply;
    type Cast = ();
    type Info = ();

    async fn init(config: Supervisor, ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        ctx.trap_exit(true);
        let stats = Arc::new(SupervisorStats::new(
            ctx.id(),
            config.max_restarts,
            config.period,
            config.strategy,
        ));
        ctx.node().extension::<Supervisors>().insert(stats.clone());
        let mut sup = SupervisorServer {
            children: Vec::with_capacity(config.children.len()),
            config,
            stats: Published {
                node: ctx.node().clone(),
                stats,
            },
        };
        let specs = std::mem::take(&mut sup.config.children);
        for spec in specs {
            match start_child(ctx.node(), &spec).await {
                Ok(pid) => {
                    let child = Child {
                        spec,
                        pid: Some(pid),
                        last_exit: None,
                    };
                    sup.stats
                        .stats
                        .publish(pid, &child.spec.id, child.last_exit.clone());
                    sup.children.push(child);
                }
                Err(e) => {
                    sup.stop_children(ctx.node(), 0).await;
                    return Err(ExitReason::FailedToStartChild(Box::new(
                        ChildStartFailure {
                            child: spec.id.to_string(),
                            reason: e.into_exit_reason(),
                        },
                    )));
                }
            }
        }
        Ok(sup)
    }

    async fn handle_call(
        &mut self,
        request: SupervisorCall,
        ctx: &mut ServerContext<Self>,
    ) -> CallResult<SupervisorReply> {
        let reply = match request {
            SupervisorCall::WhichChildren => SupervisorReply::Children(
                self.children
                    .iter()
                    .map(|c| ChildInfo {
                        id: c.spec.id.to_string(),
                        pid: c.pid,
                        kind: c.spec.kind,
                        restart: c.spec.restart,
                    })
                    .collect(),
            ),
            SupervisorCall::StartChild(spec) => {
                if !self.config.dynamic && self.children.iter().any(|c| c.spec.id == spec.id) {
                    SupervisorReply::Started(Err(StartError::Init(ExitReason::custom(format!(
                        "child {:?} already present",
                        spec.id
                    )))))
                } else {
                    let started = start_child(ctx.node(), &spec).await;
                    if let Ok(pid) = started {
                        let child = Child {
                            spec,
                            pid: Some(pid),
                            last_exit: None,
                        };
                        self.stats
                            .stats
                            .publish(pid, &child.spec.id, child.last_exit.clone());
                        self.children.push(child);
                    }
                    SupervisorReply::Started(started)
                }
            }
            SupervisorCall::TerminateChild(id) => {
                let found = self
                    .children
                    .iter()
                    .position(|c| *c.spec.id == *id || c.pid.is_some_and(|p| p.to_string() == id));
                if let Some(i) = found {
                    if let Some(pid) = self.children[i].pid.take() {
                        self.stats.stats.unpublish(pid);
                        shutdown_child(ctx.node(), pid, self.children[i].spec.shutdown).await;
                        self.children[i].last_exit = exit_of(ctx.node(), pid);
                    }
                    if self.config.dynamic || self.children[i].spec.restart == Restart::Temporary {
                        self.children.remove(i);
                    }
                }
                SupervisorReply::Terminated(found.is_some())
            }
        };
        CallResult::Reply(reply)
    }

    async fn handle_info(&mut self, info: Info<()>, ctx: &mut ServerContext<Self>) -> Flow {
        let Info::Exit(exit) = info else {
            return Flow::Continue;
        };
        let Some(idx) = self.children.iter().position(|c| c.pid == Some(exit.from)) else {
            return Flow::Continue;
        };
        self.children[idx].pid = None;
        self.stats.stats.unpublish(exit.from);
        self.children[idx].last_exit = Some(ChildExit {
            reason: exit.reason.clone(),
            at: Duration::from_nanos(ctx.node().clock().now_ns()),
        });
        let spec = &self.children[idx].spec;
        let restart = match spec.restart {
            Restart::Permanent => true,
            Restart::Transient => !exit.reason.is_normal(),
            Restart::Temporary => false,
        };
        if !restart {
            if self.config.dynamic || spec.restart == Restart::Temporary {
                self.children.remove(idx);
            }
            return Flow::Continue;
        }
        tracing::warn!(
            supervisor = %ctx.id(),
            child = %spec.id,
            pid = %exit.from,
            reason = %exit.reason,
            "child exited; restarting"
        );
        let node = ctx.node().clone();
        let first = match self.config.strategy {
            Strategy::OneForOne => idx,
            Strategy::OneForAll => {
                self.stop_children(&node, 0).await;
                0
            }
            Strategy::RestForOne => {
                self.stop_children(&node, idx + 1).await;
                idx
            }
        };
        let last = if self.config.strategy == Strategy::OneForOne {
            idx + 1
        } else {
            self.children.len()
        };
        let mut i = first;
        while i < last.min(self.children.len()) {
            if self.children[i].pid.is_some() {
                i += 1;
                continue;
            }
            if !self.note_restart() {
                tracing::error!(
                    supervisor = %ctx.id(),
                    max_restarts = self.config.max_restarts,
                    period_s = self.config.period.as_secs_f64(),
                    "restart intensity exceeded; shutting down"
                );
                return Flow::Stop(ExitReason::Shutdown);
            }
            match start_child(&node, &self.children[i].spec).await {
                Ok(pid) => {
                    self.children[i].pid = Some(pid);
                    self.stats.stats.publish(
                        pid,
                        &self.children[i].spec.id,
                        self.children[i].last_exit.clone(),
                    );
                    i += 1;
                }
                Err(e) => tracing::warn!(
                    supervisor = %ctx.id(),
                    child = %self.children[i].spec.id,
                    error = %e,
                    "child failed to restart"
                ),
            }
        }
        Flow::Continue
    }

    async fn terminate(&mut self, _reason: &ExitReason, ctx: &mut ServerContext<Self>) {
        let node = ctx.node().clone();
        self.stop_children(&node, 0).await;
    }
}

impl SupervisorServer {
    /// Records a restart; `false` if that exceeds the intensity.
    fn note_restart(&mut self) -> bool {
        self.stats.stats.note_restart()
    }

    /// Stops running children from the last down to index `from`.
    async fn stop_children(&mut self, node: &Node, from: usize) {
        for child in self.children[from..].iter_mut().rev() {
            if let Some(pid) = child.pid.take() {
                self.stats.stats.unpublish(pid);
                shutdown_child(node, pid, child.spec.shutdown).await;
                child.last_exit = exit_of(node, pid);
            }
        }
    }
}

/// How `pid` exited, from the node's recent exits.
fn exit_of(node: &Node, pid: ProcessId) -> Option<ChildExit> {
    node.exit_of(pid).map(|e| ChildExit {
        reason: e.reason,
        at: e.at,
    })
}

async fn start_child(node: &Node, spec: &ChildSpec) -> Result<ProcessId, StartError> {
    (spec.start)(node.clone()).await
}

/// Stops one child by its shutdown policy and waits until it has exited.
async fn shutdown_child(node: &Node, pid: ProcessId, shutdown: Shutdown) {
    let Some(p) = node.lookup(pid) else {
        return;
    };
    let mut exited = process::exit_waiter(p.core());
    drop(p);
    match shutdown {
        Shutdown::BrutalKill => node.exit(pid, ExitReason::Kill),
        Shutdown::Infinity => node.exit(pid, ExitReason::Shutdown),
        Shutdown::Timeout(limit) => {
            node.exit(pid, ExitReason::Shutdown);
            if tokio::time::timeout(limit, &mut exited).await.is_ok() {
                return;
            }
            tracing::warn!(%pid, "child did not shut down in time; killing it");
            node.exit(pid, ExitReason::Kill);
        }
    }
    let _ = exited.await;
}

impl SupervisorPid {
    /// The children, in start order.
    ///
    /// # Errors
    /// As [`Pid::call`](crate::Pid::call).
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, CallError> {
        match self
            .call(SupervisorCall::WhichChildren, CALL_TIMEOUT)
            .await?
        {
            SupervisorReply::Children(c) => Ok(c),
            _ => unreachable!("WhichChildren answers Children"),
        }
    }

    /// Starts a child under this supervisor.
    ///
    /// # Errors
    /// The call's error, or the child's [`StartError`] (wrapped in
    /// [`StartError::Init`] when the call itself failed).
    pub async fn start_child(&self, spec: ChildSpec) -> Result<ProcessId, StartError> {
        match self
            .call(SupervisorCall::StartChild(spec), CALL_TIMEOUT)
            .await
        {
            Ok(SupervisorReply::Started(r)) => r,
            Ok(_) => unreachable!("StartChild answers Started"),
            Err(e) => Err(StartError::Init(ExitReason::custom(e))),
        }
    }

    /// Stops the child with this id (or pid, as displayed) by its shutdown
    /// policy. Returns whether such a child existed.
    ///
    /// # Errors
    /// As [`Pid::call`](crate::Pid::call).
    pub async fn terminate_child(&self, id: impl Into<String>) -> Result<bool, CallError> {
        match self
            .call(
                SupervisorCall::TerminateChild(id.into()),
                Duration::from_secs(3600),
            )
            .await?
        {
            SupervisorReply::Terminated(found) => Ok(found),
            _ => unreachable!("TerminateChild answers Terminated"),
        }
    }
}

const CALL_TIMEOUT: Duration = Duration::from_secs(30);
