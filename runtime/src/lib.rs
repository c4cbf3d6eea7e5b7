#![doc = include_str!("../README.md")]

pub mod app;
pub mod clock;
mod counters;
mod deadline;
pub mod dist;
mod error;
mod exit_log;
mod exit_reason;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod gen_server;
mod id;
mod introspect;
pub mod latency;
mod mailbox;
mod node;
mod panic;
mod pid;
mod process;
mod registry;
mod sched;
mod signal;
mod start;
pub mod supervisor;
mod table;
pub mod task;
pub mod timer;
pub mod trace;
mod transport;

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
