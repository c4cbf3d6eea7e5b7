//! The application layer: PubSub, replicated CRDTs and Presence.
//!
//! Built on the runtime's public API alone (processes, registered names,
//! `send_named_on`, monitors, node events, the trace hooks), as a library
//! a user could have written; `tests/layering.rs` holds these modules to
//! that.

pub mod presence;
pub mod pubsub;
pub mod replica;

/// The CRDT types replicated by [`replica::Replica`] and used by Presence.
pub use clustertop_crdt as crdt;
