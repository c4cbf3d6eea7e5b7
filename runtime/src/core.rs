//! The process core: ids, mailboxes, processes and their signals, the
//! scheduler, the registry and groups, the node, introspection, GenServer,
//! supervisors, tasks and timers, the per-node counter slab, and the seam
//! the distribution layer plugs into (`transport`).
//!
//! It never names the distribution layer (`crate::dist`) nor the
//! application layer (`crate::app`): `runtime/tests/layering.rs` holds
//! both, reading this folder.

pub mod clock;
pub(crate) mod counters;
pub(crate) mod deadline;
pub(crate) mod error;
pub(crate) mod exit_log;
pub(crate) mod exit_reason;
pub mod gen_server;
pub(crate) mod id;
pub(crate) mod introspect;
pub mod latency;
pub(crate) mod mailbox;
pub(crate) mod node;
pub(crate) mod panic;
pub(crate) mod pid;
pub(crate) mod process;
pub(crate) mod registry;
pub(crate) mod sched;
pub(crate) mod signal;
pub mod supervisor;
pub(crate) mod table;
pub mod task;
pub mod timer;
pub mod trace;
pub(crate) mod transport;
