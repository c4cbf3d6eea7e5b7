//! W3C trace context carried in every envelope, and the hook that fills it.
//!
//! The runtime depends on no exporter. An integration (the `clustertop-otel`
//! crate) installs a [`TracePropagator`] once per process; at every send the
//! runtime asks it for the sender's current context and stores it in the
//! envelope, and when a GenServer handles the message it asks the propagator
//! to make that context the parent of the handling span.
//!
//! # Cost
//! With no propagator installed a send pays one atomic load. The context is
//! boxed in the envelope only when there is one.
//!
//! # Head sampling
//! With a propagator installed, a GenServer call or handler creates its
//! span only when its trace is sampled, or, outside any trace, when
//! [`TracePropagator::trace_root`] says so: work the exporter would drop
//! costs no span.

use std::collections::VecDeque;
use std::sync::OnceLock;

/// A W3C trace context: trace id, parent span id and trace flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TraceContext {
    /// The 16-byte trace id.
    pub trace_id: [u8; 16],
    /// The 8-byte id of the sending span.
    pub span_id: [u8; 8],
    /// Trace flags; bit 0 is "sampled".
    pub flags: u8,
}

impl TraceContext {
    /// Whether the sampled flag is set.
    pub fn is_sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

/// Moves trace context between the sender's current span and envelopes.
pub trait TracePropagator: Send + Sync + 'static {
    /// The context of the caller's current span, if any; called at each send.
    fn current(&self) -> Option<TraceContext>;
    /// Makes `parent` the parent of `span`, the span that handles a message.
    fn set_parent(&self, span: &tracing::Span, parent: &TraceContext);
    /// Whether work that arrives outside any trace (a call made, or a
    /// message handled, with no trace context) starts one. Asked once per
    /// such call or message. An integration that keeps a fraction of
    /// traces answers here (head sampling), so work it would drop creates
    /// no spans at all; the default starts every one.
    fn trace_root(&self) -> bool {
        true
    }
}

static PROPAGATOR: OnceLock<Box<dyn TracePropagator>> = OnceLock::new();

/// Installs the process-wide propagator.
///
/// # Errors
/// Returns the propagator back if one is installed already.
pub fn set_trace_propagator(
    propagator: Box<dyn TracePropagator>,
) -> Result<(), Box<dyn TracePropagator>> {
    PROPAGATOR.set(propagator)
}

/// The trace context a send made here would carry: the current span's,
/// through the installed propagator (`None` with no propagator or outside
/// any span).
#[inline]
pub fn current_context() -> Option<TraceContext> {
    PROPAGATOR.get().and_then(|p| p.current())
}

/// Whether a call or a handler with trace context `context` gets a span:
/// inside a trace, when the trace is sampled; outside any, when the
/// propagator starts a trace (always, with no propagator). For code that
/// handles messages outside a GenServer and follows the same sampling.
#[inline]
pub fn wants_span(context: Option<&TraceContext>) -> bool {
    match context {
        Some(c) => c.is_sampled(),
        None => PROPAGATOR.get().is_none_or(|p| p.trace_root()),
    }
}

/// Makes `parent` (a context taken from an envelope) the parent of `span`,
/// through the installed propagator; nothing without one. Sends made while
/// `span` is entered then carry its context, so a relay (a PubSub server
/// fanning a broadcast out) keeps the sender's trace.
pub fn set_parent(span: &tracing::Span, parent: Option<&TraceContext>) {
    if let (Some(p), Some(parent)) = (PROPAGATOR.get(), parent) {
        p.set_parent(span, parent);
    }
}

/// One message a process handled inside a sampled trace: what links a
/// process to its traces ("who fills this mailbox, and through which
/// request").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TracedHandling {
    /// The process that handled it.
    pub pid: crate::ProcessId,
    /// The handler span's context (its trace id, and its own span id).
    pub context: TraceContext,
    /// The process that sent the message, when sent from inside one.
    pub from: Option<crate::ProcessId>,
    /// Time in the handler, awaits included, ns.
    pub handling_ns: u64,
    /// When it finished, ms since the Unix epoch.
    pub at_unix_ms: u64,
}

/// The most recent [`TracedHandling`]s a node keeps, for all its
/// processes together.
pub const TRACED_KEEP: usize = 4_096;

/// A node's recent traced handlings: a ring of [`TRACED_KEEP`] (about
/// 80 bytes each; nothing is allocated until a traced message is handled).
/// Recording takes one uncontended lock, and only for messages handled
/// inside a sampled trace.
#[derive(Debug, Default)]
pub(crate) struct TracedLog {
    ring: parking_lot::Mutex<VecDeque<TracedHandling>>,
}

impl TracedLog {
    pub(crate) fn record(&self, h: TracedHandling) {
        let mut ring = self.ring.lock();
        if ring.len() >= TRACED_KEEP {
            ring.pop_front();
        }
        ring.push_back(h);
    }

    /// The last `n` of `pid`'s, newest first.
    pub(crate) fn of(&self, pid: crate::ProcessId, n: usize) -> Vec<TracedHandling> {
        self.ring
            .lock()
            .iter()
            .rev()
            .filter(|h| h.pid == pid)
            .take(n)
            .copied()
            .collect()
    }
}
