//! Tasks: one-off computations run as supervised processes, awaited with a
//! timeout (Elixir's `Task.Supervisor`).
//!
//! Each task is a temporary child of a [`TaskSupervisor`], visible in the
//! process table like any process. [`TaskSupervisor::async_task`] also links
//! the task to the calling process (if called from one), so a crash of
//! either takes the other down unless it traps exits;
//! [`TaskSupervisor::async_nolink`] does not link.

use crate::error::StartError;
use crate::exit_reason::ExitReason;
use crate::node::Node;
use crate::pid::{Pid, ProcessId};
use crate::process::{self, SpawnOptions};
use crate::supervisor::{ChildSpec, Restart, Shutdown, Supervisor, SupervisorPid};
use parking_lot::Mutex;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Awaiting a task failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// No result within the timeout; the task was killed.
    #[error("task timed out")]
    Timeout,
    /// The task exited without a result (it panicked or was killed).
    #[error("task exited: {0}")]
    Exited(ExitReason),
}

/// A supervisor for tasks. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TaskSupervisor {
    sup: SupervisorPid,
}

/// A running task whose result can be awaited.
pub struct Task<T> {
    process: Pid<()>,
    rx: oneshot::Receiver<T>,
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task").field("pid", &self.process).finish()
    }
}

impl TaskSupervisor {
    /// Starts a task supervisor (unlinked).
    ///
    /// # Errors
    /// As [`Supervisor::start`](crate::supervisor::Supervisor::start).
    pub async fn start(node: &Node) -> Result<Self, StartError> {
        Ok(TaskSupervisor {
            sup: Supervisor::dynamic().start(node).await?,
        })
    }

    /// Starts a task supervisor registered as `name` (unlinked).
    ///
    /// # Errors
    /// As [`Supervisor::start`](crate::supervisor::Supervisor::start).
    pub async fn start_named(node: &Node, name: &str) -> Result<Self, StartError> {
        Ok(TaskSupervisor {
            sup: Supervisor::dynamic().name(name).start(node).await?,
        })
    }

    /// Starts a task supervisor registered as `name`, linked to the caller.
    ///
    /// # Errors
    /// As [`Supervisor::start_link`](crate::supervisor::Supervisor::start_link).
    pub async fn start_link_named(node: &Node, name: &str) -> Result<Self, StartError> {
        Ok(TaskSupervisor {
            sup: Supervisor::dynamic().name(name).start_link(node).await?,
        })
    }

    /// The supervisor process.
    pub fn pid(&self) -> &SupervisorPid {
        &self.sup
    }

    /// Runs `fut` as a task linked to the calling process.
    ///
    /// # Errors
    /// [`StartError`] if the supervisor is gone.
    pub async fn async_task<T, F>(&self, fut: F) -> Result<Task<T>, StartError>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        self.spawn_task(fut, process::current_id()).await
    }

    /// Runs `fut` as a task not linked to the caller.
    ///
    /// # Errors
    /// [`StartError`] if the supervisor is gone.
    pub async fn async_nolink<T, F>(&self, fut: F) -> Result<Task<T>, StartError>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        self.spawn_task(fut, None).await
    }

    /// Runs `fut` as a fire-and-forget task.
    ///
    /// # Errors
    /// [`StartError`] if the supervisor is gone.
    pub async fn start_child<F>(&self, fut: F) -> Result<ProcessId, StartError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        Ok(self.spawn_task(fut, None).await?.pid())
    }

    async fn spawn_task<T, F>(
        &self,
        fut: F,
        owner: Option<ProcessId>,
    ) -> Result<Task<T>, StartError>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let once = Arc::new(Mutex::new(Some((fut, tx))));
        let slot: Arc<Mutex<Option<Pid<()>>>> = Arc::default();
        let slot_in = slot.clone();
        let spec = ChildSpec::new("task", move |node: Node| {
            let once = once.lock().take();
            let slot = slot_in.clone();
            async move {
                let (fut, tx) =
                    once.ok_or(StartError::Init(ExitReason::custom("task already started")))?;
                let mut opts = SpawnOptions::new().link().behaviour("Task");
                if let Some(owner) = owner {
                    opts = opts.link_to(owner);
                }
                let pid = node.spawn_opts::<(), _, _>(opts, move |_ctx| async move {
                    let _ = tx.send(fut.await);
                });
                let id = pid.id();
                *slot.lock() = Some(pid);
                Ok(id)
            }
        })
        .restart(Restart::Temporary)
        .shutdown(Shutdown::BrutalKill);
        self.sup.start_child(spec).await?;
        let process = slot
            .lock()
            .take()
            .ok_or(StartError::Init(ExitReason::NoProc))?;
        Ok(Task { process, rx })
    }
}

impl<T> Task<T> {
    /// The task's process.
    pub fn pid(&self) -> ProcessId {
        self.process.id()
    }

    /// Waits for the result, however long it takes.
    ///
    /// # Errors
    /// [`TaskError::Exited`] if the task ended without a result.
    pub async fn join(self) -> Result<T, TaskError> {
        match self.rx.await {
            Ok(v) => Ok(v),
            Err(_) => Err(TaskError::Exited(self.process.exited().await)),
        }
    }

    /// Waits up to `timeout` for the result. On timeout the task is killed.
    ///
    /// # Errors
    /// [`TaskError::Timeout`], or [`TaskError::Exited`] if the task ended
    /// without a result.
    pub async fn await_timeout(self, timeout: Duration) -> Result<T, TaskError> {
        let deadlines = self.process.node().deadlines().clone();
        let deadline = deadlines.deadline_in(timeout);
        match deadlines.until(deadline, self.rx).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => {
                let reason = self.process.exited();
                match deadlines.until(deadline, reason).await {
                    Ok(reason) => Err(TaskError::Exited(reason)),
                    Err(_) => Err(TaskError::Timeout),
                }
            }
            Err(_) => {
                self.process
                    .node()
                    .exit(self.process.id(), ExitReason::Kill);
                Err(TaskError::Timeout)
            }
        }
    }
}
