//! The application layer: PubSub, replicated CRDTs and Presence.
//!
//! Built on the runtime's public API alone (processes, registered names,
//! `send_named_on`, monitors, node events, the trace hooks), as a library
//! a user could have written; `tests/layering.rs` holds these modules to
//! that.

pub mod pubsub;
