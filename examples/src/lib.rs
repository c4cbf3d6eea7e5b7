//! The programs of the article *Building Distributed Systems with Elixir*,
//! ported to clustertop's runtime. Each is a library module and a binary
//! that runs one node of a multi-node cluster; every node runs the agent
//! (so `clustertop` can attach), serves Prometheus metrics and exports
//! traces over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set ([`node`]).
//!
//! - [`counter`]: the global GenServer counter.
//! - [`crdt_counter`]: the per-node map counter with max-merge, then the
//!   same on the library's replicated CRDTs.
//! - [`work_distributor`]: round-robin tasks over the nodes.
//! - [`chat`]: the distributed chat system: rooms, a message store,
//!   PubSub, Presence, and a WebSocket endpoint with a browser page.
//! - [`consensus_store`]: the key-value store replicated by a Raft group.
//! - [`demo`]: the demo cluster's node, running all of them together (what
//!   `clustertop demo` starts).

pub mod chat;
pub mod consensus_store;
pub mod counter;
pub mod crdt_counter;
pub mod demo;
pub mod node;
pub mod work_distributor;
