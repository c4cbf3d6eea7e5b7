//! Figures a BEAM node has and our runtime does not: reductions, the
//! memory of the VM by type, the current function, heap sizes. Optional
//! fields of the rows and details (`None` for our nodes), so every view
//! shows them where they exist instead of keeping a screen of their own.

use serde::{Deserialize, Serialize};

/// A BEAM node's own figures, beside [`NodeSummary`](crate::NodeSummary)'s.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BeamNode {
    /// `erlang:system_info(otp_release)`, e.g. `25`.
    pub otp_release: String,
    /// The emulator's version (`erts-13.1.5`).
    pub erts_version: String,
    /// Processes allowed at once (`process_limit`).
    pub process_limit: u64,
    /// Processes and ports ready to run, summed over the run queues
    /// (`statistics(total_run_queue_lengths_all)`).
    pub run_queue: u64,
    /// Reductions per second over the last sampling interval (the BEAM's
    /// measure of work done).
    pub reductions_per_s: u64,
    /// Memory by type, bytes (`erlang:memory/0`).
    pub memory: BeamMemory,
    /// Open ports, and the limit.
    pub ports: u64,
    /// At most this many ports.
    pub port_limit: u64,
    /// Scheduler threads online.
    pub schedulers: u32,
    /// Distribution connections whose output queue is above the busy
    /// limit (`dist_buf_busy_limit`) at the sample: sends to those nodes
    /// block their senders.
    pub dist_busy: Vec<String>,
    /// Processes the last read of the table brought: all of them, or on
    /// a large node only those that rank (the top by queue, heap and
    /// reductions), when fewer than `processes`.
    pub rows: u64,
    /// Whether that read had every process.
    pub whole_table: bool,
}

/// `erlang:memory/0`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BeamMemory {
    /// Everything the VM allocated.
    pub total: u64,
    /// Process heaps and stacks.
    pub processes: u64,
    /// Reference-counted binaries.
    pub binary: u64,
    /// ETS tables.
    pub ets: u64,
    /// The atom table.
    pub atom: u64,
    /// Loaded code.
    pub code: u64,
}

/// A BEAM process's own figures, beside [`ProcessRow`](crate::ProcessRow)'s.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BeamProcess {
    /// Reductions per second over the last sampling interval (0 at the
    /// first sample of a process).
    pub reductions_per_s: u64,
    /// Reductions since it started.
    pub reductions_total: u64,
    /// The function it is in (`m:f/a`).
    pub current_function: Option<String>,
}

/// A BEAM process in depth, beside [`ProcessDetail`](crate::ProcessDetail).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BeamProcessDetail {
    /// `<0.123.0>`, as the node prints it.
    pub pid: String,
    /// `running`, `runnable`, `waiting`, `suspended`, `garbage_collecting`
    /// or `exiting`.
    pub status: String,
    /// The function it was spawned with (`initial_call`; for `proc_lib`
    /// processes, the `$initial_call` of its dictionary).
    pub initial_call: Option<String>,
    /// Its `$label` (OTP 27 and later), printed.
    pub label: Option<String>,
    /// Young heap, words times the word size, bytes.
    pub heap_bytes: u64,
    /// All heap fragments and the old heap, bytes.
    pub total_heap_bytes: u64,
    /// Stack, bytes.
    pub stack_bytes: u64,
    /// Its stack, innermost first (`m:f/a (file:line)`).
    pub stacktrace: Vec<String>,
    /// Its group leader.
    pub group_leader: Option<String>,
}
