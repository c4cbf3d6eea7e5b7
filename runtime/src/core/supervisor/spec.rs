//! Child specifications: how to start a child and what to do when it exits.

use crate::error::StartError;
use crate::gen_server::GenServer;
use crate::node::Node;
use crate::pid::ProcessId;
use crate::process::ProcessKind;
use futures_util::future::BoxFuture;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// When a child is restarted after it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restart {
    /// Always.
    #[default]
    Permanent,
    /// Only after an abnormal exit (not `normal` or `shutdown`).
    Transient,
    /// Never; the child is forgotten once it exits.
    Temporary,
}

/// How a child is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Kill it at once with the untrappable `kill`.
    BrutalKill,
    /// Send `shutdown`, wait this long for it to exit, then kill it.
    Timeout(Duration),
    /// Send `shutdown` and wait for as long as it takes (for supervisors).
    Infinity,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::Timeout(Duration::from_secs(5))
    }
}

type StartFn = dyn Fn(Node) -> BoxFuture<'static, Result<ProcessId, StartError>> + Send + Sync;

/// How to start one child, and its restart and shutdown policy.
///
/// The start function runs inside the supervisor process and must link the
/// child to its caller (every `start_link` does).
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) id: Arc<str>,
    pub(crate) start: Arc<StartFn>,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Shutdown,
    pub(crate) kind: ProcessKind,
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("kind", &self.kind)
            .finish()
    }
}

impl ChildSpec {
    /// A child started by `start`, which must return the id of a process
    /// linked to the caller (the supervisor).
    pub fn new<F, Fut>(id: impl Into<Arc<str>>, start: F) -> Self
    where
        F: Fn(Node) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ProcessId, StartError>> + Send + 'static,
    {
        ChildSpec {
            id: id.into(),
            start: Arc::new(move |node| Box::pin(start(node))),
            restart: Restart::Permanent,
            shutdown: Shutdown::default(),
            kind: ProcessKind::Worker,
        }
    }

    /// A GenServer child, started with a clone of `args` each time.
    pub fn worker<S>(id: impl Into<Arc<str>>, args: S::Args) -> Self
    where
        S: GenServer,
        S::Args: Clone + Sync,
    {
        ChildSpec::new(id, move |node| {
            let args = args.clone();
            async move { S::start_link(&node, args).await.map(|pid| pid.id()) }
        })
    }

    /// A nested supervisor child (shutdown `Infinity`, as OTP's default for
    /// supervisors).
    pub fn supervisor(id: impl Into<Arc<str>>, supervisor: super::Supervisor) -> Self {
        let mut spec = ChildSpec::new(id, move |node| {
            let sup = supervisor.clone();
            async move { sup.start_link(&node).await.map(|pid| pid.id()) }
        });
        spec.shutdown = Shutdown::Infinity;
        spec.kind = ProcessKind::Supervisor;
        spec
    }

    /// Sets the restart policy.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets the shutdown policy.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// The child's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}
