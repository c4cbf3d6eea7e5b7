#![doc = include_str!("../README.md")]

pub mod app;
mod core;
pub mod dist;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod start;

// The process core's modules keep their paths at the crate root: the
// public ones (`clustertop_runtime::gen_server`, …) and, for the crate,
// the rest (`crate::pid`, …).
pub use self::core::{clock, gen_server, latency, supervisor, task, timer, trace};
pub(crate) use self::core::{
    counters, deadline, error, exit_log, exit_reason, id, introspect, mailbox, node, panic, pid,
    process, registry, sched, signal, table, transport,
};
pub use clock::ClockSource;
pub use counters::ProcessCounters;
pub use dist::payload::Payload;
pub use error::{
    CallError, GlobalNameError, LookupError, NoProcess, RegistryError, SendError, StartError,
};
pub use exit_log::{EXITS_KEEP, ProcessExit};
#[doc(hidden)]
pub use exit_reason::never;
pub use exit_reason::{ChildStartFailure, ExitReason, IntoExitReason};
pub use gen_server::{
    CallResult, Flow, GenServer, Info, ReplyTo, ServerContext, ServerOptions, ServerPid,
};
pub use introspect::{Introspect, ProcessDetail, ProcessInfo, ProcessRef, SupervisionNode};
pub use mailbox::MailboxConfig;
pub use node::{Node, NodeStats};
pub use panic::install_panic_hook;
pub use pid::{Message, Pid, ProcessId};
pub use process::{
    Context, CurrentProcess, ProcessKind, ProcessStatus, SpawnOptions, current_process,
};
pub use registry::Groups;
pub use signal::{Down, Exit, MonitorRef, Received};
pub use start::{NodeConfig, NodeError};
