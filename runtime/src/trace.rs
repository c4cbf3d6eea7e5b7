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
//! stored inline (25 bytes), never boxed.

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

#[inline]
pub(crate) fn current_context() -> Option<TraceContext> {
    PROPAGATOR.get().and_then(|p| p.current())
}

pub(crate) fn set_parent(span: &tracing::Span, parent: Option<&TraceContext>) {
    if let (Some(p), Some(parent)) = (PROPAGATOR.get(), parent) {
        p.set_parent(span, parent);
    }
}
