//! GenServer: a process that serves calls (request → reply), casts
//! (fire-and-forget) and info messages (timers, `DOWN`, `EXIT`), one at a
//! time, in arrival order.
//!
//! ```
//! use clustertop_runtime::{CallResult, GenServer, Node, NodeConfig, ServerContext, ExitReason};
//! use std::time::Duration;
//!
//! struct Counter(u64);
//!
//! impl GenServer for Counter {
//!     type Args = u64;
//!     type Call = ();
//!     type Reply = u64;
//!     type Cast = u64;
//!     type Info = ();
//!
//!     async fn init(start: u64, _ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
//!         Ok(Counter(start))
//!     }
//!     async fn handle_call(&mut self, _: (), _ctx: &mut ServerContext<Self>) -> CallResult<u64> {
//!         CallResult::Reply(self.0)
//!     }
//!     async fn handle_cast(&mut self, by: u64, _ctx: &mut ServerContext<Self>) -> clustertop_runtime::Flow {
//!         self.0 += by;
//!         clustertop_runtime::Flow::Continue
//!     }
//! }
//!
//! # #[tokio::main] async fn main() {
//! let node = Node::start(NodeConfig::default()).unwrap();
//! let counter = Counter::start(&node, 40).await.unwrap();
//! counter.cast(2);
//! assert_eq!(counter.call((), Duration::from_secs(1)).await.unwrap(), 42);
//! # }
//! ```
//!
//! # Errors and exits
//! `init` failing fails `start` with [`StartError::Init`] and unlinks the
//! caller first, so a failed `start_link` does not also kill the caller.
//! A handler returning `Stop` runs `terminate` and exits with that reason;
//! so does an `EXIT` from the parent while trapping exits (how supervisors
//! shut children down). A panic in a handler ends the process with
//! [`ExitReason::Panic`] and does not run `terminate`.
//!
//! # Cost
//! A call allocates one oneshot channel; a cast allocates nothing beyond the
//! message. Each handled message gets a `debug`-level span (`handle_call`,
//! `handle_cast`, `handle_info`) whose parent is the sender's trace context;
//! with no subscriber interested in it, the span costs one relaxed load.

use crate::error::ReplyFailure;
use crate::error::{CallError, StartError};
use crate::exit_reason::ExitReason;
use crate::id::short_type_name;
use crate::mailbox::MailboxConfig;
use crate::node::Node;
use crate::pid::{Message, Pid, ProcessId};
use crate::process::{self, Context, MessageHeap, ProcessKind, SpawnOptions};
use crate::signal::{Down, Exit, MonitorRef, Received};
use crate::timer::{self, TimerRef};
use crate::trace;
use crate::transport::RemoteReplySink;
use std::fmt;
use std::future::Future;
use std::time::Duration;
use tokio::sync::oneshot;
use tracing::Instrument;

/// The target of the per-message `call` and `handle_*` spans, whatever
/// file they are written in: trace filters name it
/// (`clustertop_otel::DEFAULT_TRACE_FILTER`).
pub(crate) const SPAN_TARGET: &str = "clustertop_runtime::gen_server";

/// The handle of a running GenServer of type `S`.
pub type ServerPid<S> = Pid<ServerMsg<S>>;

/// The callbacks of a server. Handlers run one at a time, in mailbox order.
pub trait GenServer: Sized + Send + 'static {
    /// What `init` takes.
    type Args: Send + 'static;
    /// Requests served by [`handle_call`](Self::handle_call).
    type Call: Message;
    /// Replies to calls.
    type Reply: Message;
    /// Messages served by [`handle_cast`](Self::handle_cast).
    type Cast: Message;
    /// Messages (timers, plain sends) served by [`handle_info`](Self::handle_info).
    type Info: Message;

    /// Builds the state. An `Err` fails the start with that reason.
    fn init(
        args: Self::Args,
        ctx: &mut ServerContext<Self>,
    ) -> impl Future<Output = Result<Self, ExitReason>> + Send;

    /// Serves a call. Return [`CallResult::NoReply`] after
    /// [`ServerContext::defer_reply`] to answer later. The default stops
    /// the server, as OTP's does on an unexpected call.
    fn handle_call(
        &mut self,
        request: Self::Call,
        ctx: &mut ServerContext<Self>,
    ) -> impl Future<Output = CallResult<Self::Reply>> + Send {
        let _ = (request, ctx);
        async {
            CallResult::Stop {
                reason: ExitReason::custom(format!(
                    "unexpected call to {}",
                    std::any::type_name::<Self>()
                )),
                reply: None,
            }
        }
    }

    /// Serves a cast. The default ignores it.
    fn handle_cast(
        &mut self,
        msg: Self::Cast,
        ctx: &mut ServerContext<Self>,
    ) -> impl Future<Output = Flow> + Send {
        let _ = (msg, ctx);
        async { Flow::Continue }
    }

    /// Serves an info message: a plain message, a timer, `DOWN` or `EXIT`.
    /// The default ignores it.
    fn handle_info(
        &mut self,
        info: Info<Self::Info>,
        ctx: &mut ServerContext<Self>,
    ) -> impl Future<Output = Flow> + Send {
        let _ = (info, ctx);
        async { Flow::Continue }
    }

    /// Runs before the server exits on `Stop` or on a parent's exit signal.
    fn terminate(
        &mut self,
        reason: &ExitReason,
        ctx: &mut ServerContext<Self>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (reason, ctx);
        async {}
    }

    /// Starts the server unlinked.
    ///
    /// # Errors
    /// [`StartError`] if `init` fails or the name is taken.
    fn start(
        node: &Node,
        args: Self::Args,
    ) -> impl Future<Output = Result<ServerPid<Self>, StartError>> + Send {
        start::<Self>(node, args, ServerOptions::new())
    }

    /// Starts the server linked to the calling process.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    fn start_link(
        node: &Node,
        args: Self::Args,
    ) -> impl Future<Output = Result<ServerPid<Self>, StartError>> + Send {
        start::<Self>(node, args, ServerOptions::new().link())
    }
}

/// What a call handler answers.
#[derive(Debug)]
pub enum CallResult<R> {
    /// Reply now.
    Reply(R),
    /// Do not reply now; the handler kept the [`ReplyTo`] from
    /// [`ServerContext::defer_reply`].
    NoReply,
    /// Stop the server, replying first if `reply` is set.
    Stop {
        /// The exit reason.
        reason: ExitReason,
        /// An optional last reply.
        reply: Option<R>,
    },
}

/// Whether the server goes on after a cast or info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// Keep serving.
    Continue,
    /// Run `terminate` and exit with the reason.
    Stop(ExitReason),
}

/// An info message.
#[derive(Debug)]
pub enum Info<I> {
    /// A message of the server's info type (timers, plain sends).
    Msg(I),
    /// A monitored process exited.
    Down(Down),
    /// A linked process exited (the server traps exits).
    Exit(Exit),
    /// A node connected or disconnected (after `monitor_nodes(true)`).
    Node(crate::transport::NodeEvent),
}

/// The pending reply of one call; reply at most once, now or later. The
/// caller may be on another node: `reply` is the same call.
pub struct ReplyTo<R> {
    pub(crate) inner: ReplyInner<R>,
    pub(crate) caller: Option<ProcessId>,
}

pub(crate) type ReplySender<R> = oneshot::Sender<Result<R, ReplyFailure>>;

pub(crate) enum ReplyInner<R> {
    /// Taken out when the handle is encoded for another node.
    Local(parking_lot::Mutex<Option<ReplySender<R>>>),
    /// The caller is on another node (see [`crate::transport`]).
    Remote(Box<dyn RemoteReplySink<R>>),
}

impl<R> ReplyTo<R> {
    /// Sends the reply. Returns `false` if the caller stopped waiting (or,
    /// for a remote caller, its node is not connected).
    pub fn reply(self, reply: R) -> bool {
        match self.inner {
            ReplyInner::Local(slot) => slot
                .into_inner()
                .is_some_and(|tx| tx.send(Ok(reply)).is_ok()),
            ReplyInner::Remote(r) => r.reply(reply),
        }
    }

    /// The calling process, if the call came from one.
    pub fn caller(&self) -> Option<ProcessId> {
        self.caller
    }
}

impl<R> fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.caller {
            Some(c) => write!(f, "ReplyTo({c})"),
            None => f.write_str("ReplyTo(external)"),
        }
    }
}

/// The mailbox message of a GenServer. Built only by [`Pid::call`],
/// [`Pid::cast`], [`Pid::send_info`] and timers.
pub struct ServerMsg<S: GenServer>(pub(crate) Inner<S>);

impl<S: GenServer> ServerMsg<S> {
    /// An info message, for timers and plain sends to a server
    /// (`timer::send_after(&pid, ServerMsg::info(m), d)`).
    pub fn info(msg: S::Info) -> Self {
        ServerMsg(Inner::Info(msg))
    }
    /// The request, if this is a call.
    pub fn as_call(&self) -> Option<&S::Call> {
        match &self.0 {
            Inner::Call(req, _) => Some(req),
            _ => None,
        }
    }
    /// The message, if this is a cast.
    pub fn as_cast(&self) -> Option<&S::Cast> {
        match &self.0 {
            Inner::Cast(msg) => Some(msg),
            _ => None,
        }
    }
    /// The message, if this is an info message.
    pub fn as_info(&self) -> Option<&S::Info> {
        match &self.0 {
            Inner::Info(msg) => Some(msg),
            _ => None,
        }
    }
}

pub(crate) enum Inner<S: GenServer> {
    Call(S::Call, ReplyTo<S::Reply>),
    Cast(S::Cast),
    Info(S::Info),
    Stop(ExitReason),
}

impl<S: GenServer> fmt::Debug for ServerMsg<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Call(req, from) => write!(f, "call {req:?} from {from:?}"),
            Inner::Cast(msg) => write!(f, "cast {msg:?}"),
            Inner::Info(msg) => write!(f, "info {msg:?}"),
            Inner::Stop(reason) => write!(f, "stop {reason}"),
        }
    }
}

/// Options for [`start`].
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    name: Option<String>,
    global: Option<String>,
    link: bool,
    mailbox: MailboxConfig,
    system: bool,
    kind: ProcessKind,
    behaviour: Option<&'static str>,
    init_timeout: Option<Duration>,
    heap: Option<MessageHeap>,
}

impl ServerOptions {
    /// Unlinked, unnamed, unbounded mailbox, no init timeout.
    pub fn new() -> Self {
        Self::default()
    }
    /// Register the server under `name` before `init` runs.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Register the server under `name` in the cluster-wide registry
    /// (Elixir's `name: {:global, name}`), once `init` has returned: `init`
    /// must make the server take messages from other nodes
    /// (`ctx.enable_remote()`). If a process of any node holds the name,
    /// the server stops (without `terminate`) and `start` fails with
    /// [`StartError::Global`] and [`GlobalNameError::Taken`].
    ///
    /// [`GlobalNameError::Taken`]: crate::GlobalNameError::Taken
    pub fn global_name(mut self, name: impl Into<String>) -> Self {
        self.global = Some(name.into());
        self
    }
    /// Link the server to the calling process.
    pub fn link(mut self) -> Self {
        self.link = true;
        self
    }
    /// The mailbox size policy.
    pub fn mailbox(mut self, mailbox: MailboxConfig) -> Self {
        self.mailbox = mailbox;
        self
    }
    /// Mark the server as a system process.
    pub fn system(mut self, system: bool) -> Self {
        self.system = system;
        self
    }
    /// Count the heap each queued message owns in the server's memory, as
    /// [`SpawnOptions::message_heap`] does; `size` sees the message as
    /// the server's mailbox holds it (see [`ServerMsg::as_cast`] and its
    /// siblings). `S` must be the server started with these options.
    pub fn message_heap<S: GenServer>(mut self, size: fn(&ServerMsg<S>) -> usize) -> Self {
        self.heap = Some(MessageHeap::new(size));
        self
    }
    /// Give up (and kill the server) if `init` takes longer than `timeout`.
    pub fn init_timeout(mut self, timeout: Duration) -> Self {
        self.init_timeout = Some(timeout);
        self
    }
    pub(crate) fn kind(mut self, kind: ProcessKind) -> Self {
        self.kind = kind;
        self
    }
    pub(crate) fn behaviour(mut self, name: &'static str) -> Self {
        self.behaviour = Some(name);
        self
    }
}

/// A server's view of itself inside its callbacks.
pub struct ServerContext<S: GenServer> {
    pub(crate) ctx: Context<ServerMsg<S>>,
    reply: Option<ReplyTo<S::Reply>>,
}

impl<S: GenServer> fmt::Debug for ServerContext<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerContext")
            .field("id", &self.ctx.id())
            .finish_non_exhaustive()
    }
}

impl<S: GenServer> ServerContext<S> {
    /// This server's id.
    pub fn id(&self) -> ProcessId {
        self.ctx.id()
    }
    /// This server's handle.
    pub fn pid(&self) -> ServerPid<S> {
        self.ctx.pid()
    }
    /// The node it runs on.
    pub fn node(&self) -> &Node {
        self.ctx.node()
    }
    /// The process that started it.
    pub fn parent(&self) -> Option<ProcessId> {
        self.ctx.parent()
    }
    /// Takes the pending reply of the call being handled, to reply later.
    /// `None` outside `handle_call` or if already taken.
    pub fn defer_reply(&mut self) -> Option<ReplyTo<S::Reply>> {
        self.reply.take()
    }
    /// See [`Context::trap_exit`].
    pub fn trap_exit(&self, trap: bool) {
        self.ctx.trap_exit(trap)
    }
    /// See [`Context::link`].
    ///
    /// # Errors
    /// [`crate::NoProcess`] if `pid` is not alive.
    pub fn link(&self, pid: ProcessId) -> Result<(), crate::NoProcess> {
        self.ctx.link(pid)
    }
    /// See [`Context::unlink`].
    pub fn unlink(&self, pid: ProcessId) {
        self.ctx.unlink(pid)
    }
    /// See [`Context::monitor`].
    pub fn monitor(&self, pid: ProcessId) -> MonitorRef {
        self.ctx.monitor(pid)
    }
    /// See [`Context::demonitor`].
    pub fn demonitor(&self, monitor: MonitorRef) -> bool {
        self.ctx.demonitor(monitor)
    }
    /// See [`Context::monitor_nodes`].
    pub fn monitor_nodes(&self, on: bool) {
        self.ctx.monitor_nodes(on)
    }
    /// Delivers `info` to this server's `handle_info` after `after`.
    pub fn send_after(&self, info: S::Info, after: Duration) -> TimerRef {
        timer::send_after(&self.pid(), ServerMsg(Inner::Info(info)), after)
    }
    /// Delivers a clone of `info` to `handle_info` every `period`.
    pub fn send_interval(&self, info: S::Info, period: Duration) -> TimerRef
    where
        S::Info: Clone,
    {
        timer::send_interval_with(&self.pid(), period, move || {
            ServerMsg(Inner::Info(info.clone()))
        })
    }
}

impl<S: GenServer> Pid<ServerMsg<S>> {
    /// Calls the server and waits up to `timeout` for the reply.
    ///
    /// # Errors
    /// [`CallError::NoProcess`] if the server is not alive,
    /// [`CallError::Exited`] if it exits before replying,
    /// [`CallError::Timeout`] if no reply arrives in time (a late reply is
    /// dropped).
    pub async fn call(&self, request: S::Call, timeout: Duration) -> Result<S::Reply, CallError> {
        // The client side of the call: sent inside this span, so the
        // server's handling span is its child, locally and across nodes.
        let span = if trace::wants_span(trace::current_context().as_ref()) {
            tracing::debug_span!(
                target: SPAN_TARGET,
                "call",
                to = %self.id(),
                node = self.node_name(),
                behaviour = short_type_name::<S>()
            )
        } else {
            tracing::Span::none()
        };
        self.call_in_span(request, timeout).instrument(span).await
    }

    async fn call_in_span(
        &self,
        request: S::Call,
        timeout: Duration,
    ) -> Result<S::Reply, CallError> {
        let node = self.node();
        let clock = *node.clock();
        let deadlines = node.deadlines();
        let started = clock.now_ns();
        let deadline = started.saturating_add(crate::deadline::saturating_ns(timeout));
        let (tx, rx) = oneshot::channel();
        let msg = ServerMsg(Inner::Call(
            request,
            ReplyTo {
                inner: ReplyInner::Local(parking_lot::Mutex::new(Some(tx))),
                caller: process::current_id(),
            },
        ));
        let node_down = || CallError::NodeDown(self.node_name().to_owned());
        // A reply parked with the distribution layer is forgotten however
        // this call ends: answered, timed out, or dropped by its caller.
        let _parked = match deadlines.until(deadline, self.send_tracked(msg)).await {
            Ok(Ok(parked)) => parked,
            Ok(Err(_)) if self.is_local() => return Err(CallError::NoProcess),
            Ok(Err(_)) => return Err(node_down()),
            Err(_) => return Err(CallError::Timeout),
        };
        let result = match deadlines.until(deadline, rx).await {
            Ok(Ok(Ok(reply))) => Ok(reply),
            Ok(Ok(Err(failure))) => match failure {
                ReplyFailure::Exited(ExitReason::NoProc) => Err(CallError::NoProcess),
                ReplyFailure::Exited(reason) => Err(CallError::Exited(reason)),
                ReplyFailure::NoConnection => Err(node_down()),
                ReplyFailure::Malformed(e)
                | ReplyFailure::UnknownName(e)
                | ReplyFailure::TypeMismatch(e) => Err(CallError::BadReply(e)),
                ReplyFailure::NoReply => {
                    deadlines.sleep_until(deadline).await;
                    Err(CallError::Timeout)
                }
            },
            Ok(Err(_)) if self.is_local() => match deadlines.until(deadline, self.exited()).await {
                Ok(reason) => Err(CallError::Exited(reason)),
                Err(_) => Err(CallError::Timeout),
            },
            Ok(Err(_)) => Err(node_down()),
            Err(_) => Err(CallError::Timeout),
        };
        let elapsed = Duration::from_nanos(clock.now_ns().saturating_sub(started));
        node.behaviours().record_call::<S>(node.name(), elapsed);
        result
    }

    /// Casts `msg` to the server; never blocks.
    pub fn cast(&self, msg: S::Cast) {
        self.send(ServerMsg(Inner::Cast(msg)));
    }

    /// Sends `msg` to the server's `handle_info`; never blocks.
    pub fn send_info(&self, msg: S::Info) {
        self.send(ServerMsg(Inner::Info(msg)));
    }

    /// Asks the server to run `terminate` and exit with `reason`, and waits
    /// up to `timeout` for it to exit.
    ///
    /// # Errors
    /// [`CallError::NoProcess`] if it is not alive, [`CallError::Timeout`]
    /// if it has not exited in time.
    pub async fn stop(&self, reason: ExitReason, timeout: Duration) -> Result<(), CallError> {
        let exited = self.exited();
        if self.try_send(ServerMsg(Inner::Stop(reason))).is_err() {
            return Err(CallError::NoProcess);
        }
        match tokio::time::timeout(timeout, exited).await {
            Ok(_) => Ok(()),
            Err(_) => Err(CallError::Timeout),
        }
    }
}

/// Starts a server of type `S` with `opts`.
///
/// # Errors
/// [`StartError::Init`] if `init` fails or the process dies while starting,
/// [`StartError::Registry`] if the name is taken, [`StartError::Timeout`]
/// if `init` outlasts the init timeout.
pub async fn start<S: GenServer>(
    node: &Node,
    args: S::Args,
    opts: ServerOptions,
) -> Result<ServerPid<S>, StartError> {
    let (tx, rx) = oneshot::channel();
    let mut spawn = SpawnOptions::new()
        .mailbox(opts.mailbox)
        .behaviour(opts.behaviour.unwrap_or_else(short_type_name::<S>))
        .system(opts.system)
        .kind(opts.kind);
    if opts.link {
        spawn = spawn.link();
    }
    spawn.heap = opts.heap;
    let names = (opts.name, opts.global);
    let pid: ServerPid<S> = node.spawn_opts(spawn, move |ctx| run::<S>(ctx, args, names, tx));
    let answer = match opts.init_timeout {
        Some(t) => match tokio::time::timeout(t, rx).await {
            Ok(answer) => answer,
            Err(_) => {
                node.exit(pid.id(), ExitReason::Kill);
                return Err(StartError::Timeout);
            }
        },
        None => rx.await,
    };
    match answer {
        Ok(Ok(())) => Ok(pid),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            let reason = pid.exited().await;
            Err(StartError::Init(reason))
        }
    }
}

async fn run<S: GenServer>(
    ctx: Context<ServerMsg<S>>,
    args: S::Args,
    (name, global): (Option<String>, Option<String>),
    started: oneshot::Sender<Result<(), StartError>>,
) -> ExitReason {
    let mut sctx = ServerContext { ctx, reply: None };
    let parent = sctx.ctx.parent();
    let fail = |sctx: &ServerContext<S>, started: oneshot::Sender<_>, err: StartError| {
        // The caller learns of the failure from the start result; unlink so
        // it does not also get the exit signal.
        if let Some(p) = parent {
            sctx.ctx.unlink(p);
        }
        let reason = err.clone().into_exit_reason();
        let _ = started.send(Err(err));
        reason
    };
    if let Some(name) = name {
        if let Err(e) = sctx.node().register(&name, sctx.id()) {
            return fail(&sctx, started, e.into());
        }
    }
    let mut state = match S::init(args, &mut sctx).await {
        Ok(state) => state,
        Err(reason) => return fail(&sctx, started, StartError::Init(reason)),
    };
    if let Some(global) = global {
        let registered = match sctx.node().transport() {
            Some(t) => t.register_global(global.clone(), sctx.id()).await,
            None => Err(crate::GlobalNameError::NotDistributed),
        };
        if let Err(reason) = registered {
            let err = StartError::Global {
                name: global,
                reason,
            };
            return fail(&sctx, started, err);
        }
    }
    let _ = started.send(Ok(()));
    let behaviour = sctx.ctx.behaviour();
    let id = sctx.id();
    let node_name = sctx.node().name().to_owned();
    let node_name = node_name.as_str();
    let latency = sctx.node().behaviours().latency_for(behaviour);
    let clock = *sctx.node().clock();
    let mut last_end = 0;
    loop {
        let received = sctx.ctx.recv().await;
        // The handler starts when the previous one ended, or when the poll
        // that took this message began if that is later: no clock read.
        let t0 = sctx.ctx.poll_started_ns().max(last_end);
        latency
            .queue_wait
            .record(t0.saturating_sub(sctx.ctx.last_enqueued_at()));
        sctx.ctx.set_handling_since(t0.max(1));
        let parent_ctx = sctx.ctx.trace_context();
        let traced = trace::wants_span(parent_ctx.as_ref());
        // The handler span's own context, when the message is traced.
        let mut handled_in = None;
        let flow = match received {
            Received::Msg(ServerMsg(Inner::Call(request, reply))) => {
                let span = if traced {
                    tracing::debug_span!(target: SPAN_TARGET, "handle_call", pid = %id, node = node_name, behaviour)
                } else {
                    tracing::Span::none()
                };
                link_span(&span, parent_ctx.as_ref());
                handled_in = handler_context(traced, &span);
                sctx.reply = Some(reply);
                let result = state.handle_call(request, &mut sctx).instrument(span).await;
                let pending = sctx.reply.take();
                match result {
                    CallResult::Reply(r) => {
                        if let Some(p) = pending {
                            p.reply(r);
                        }
                        Flow::Continue
                    }
                    CallResult::NoReply => Flow::Continue,
                    CallResult::Stop { reason, reply } => {
                        if let (Some(p), Some(r)) = (pending, reply) {
                            p.reply(r);
                        }
                        Flow::Stop(reason)
                    }
                }
            }
            Received::Msg(ServerMsg(Inner::Cast(msg))) => {
                let span = if traced {
                    tracing::debug_span!(target: SPAN_TARGET, "handle_cast", pid = %id, node = node_name, behaviour)
                } else {
                    tracing::Span::none()
                };
                link_span(&span, parent_ctx.as_ref());
                handled_in = handler_context(traced, &span);
                state.handle_cast(msg, &mut sctx).instrument(span).await
            }
            Received::Msg(ServerMsg(Inner::Stop(reason))) => Flow::Stop(reason),
            Received::Exit(exit) if Some(exit.from) == parent => Flow::Stop(exit.reason),
            other => {
                let info = match other {
                    Received::Msg(ServerMsg(Inner::Info(msg))) => Info::Msg(msg),
                    Received::Down(d) => Info::Down(d),
                    Received::Exit(e) => Info::Exit(e),
                    Received::Node(n) => Info::Node(n),
                    Received::Msg(_) => unreachable!("calls, casts and stops are matched above"),
                };
                let span = if traced {
                    tracing::debug_span!(target: SPAN_TARGET, "handle_info", pid = %id, node = node_name, behaviour)
                } else {
                    tracing::Span::none()
                };
                link_span(&span, parent_ctx.as_ref());
                handled_in = handler_context(traced, &span);
                state.handle_info(info, &mut sctx).instrument(span).await
            }
        };
        sctx.ctx.set_handling_since(0);
        last_end = clock.now_ns();
        latency.handling.record(last_end.saturating_sub(t0));
        if let Some(context) = handled_in {
            sctx.node().record_traced(trace::TracedHandling {
                pid: id,
                context,
                from: sctx.ctx.last_sender(),
                handling_ns: last_end.saturating_sub(t0),
                at_unix_ms: crate::clock::unix_ms(),
            });
        }
        if let Flow::Stop(reason) = flow {
            state.terminate(&reason, &mut sctx).await;
            return reason;
        }
    }
}

/// The context of a handler's span, when the handling is traced.
fn handler_context(traced: bool, span: &tracing::Span) -> Option<crate::trace::TraceContext> {
    if traced {
        span.in_scope(trace::current_context)
    } else {
        None
    }
}

fn link_span(span: &tracing::Span, parent: Option<&crate::trace::TraceContext>) {
    if !span.is_disabled() {
        trace::set_parent(span, parent);
    }
}
