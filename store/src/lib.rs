//! Consistent state for clustertop: Raft groups ([`raft`]) over the
//! runtime's authenticated mesh, with their log, vote and snapshots on
//! redb.
//!
//! openraft and redb stay inside this crate (and openraft's types inside
//! `raft/engine/`), so builds that do not use consistent state do not
//! compile them.

pub mod raft;

pub use raft::{
    CommandError, GroupStatus, Raft, RaftConfig, RaftServer, Role, StartError, Storage,
};
