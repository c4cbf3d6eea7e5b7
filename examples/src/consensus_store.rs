//! The article's `MyApp.ConsensusStore` on `Rafter.Server`: a key-value
//! store replicated by a Raft group, with strong consistency (every
//! command goes through the leader's log) and no availability in a
//! minority partition.
//!
//! ```elixir
//! def init(_), do: %{}
//! def handle_command({:set, key, value}, state), do: {:ok, :ok, Map.put(state, key, value)}
//! def handle_command({:get, key}, state), do: {:ok, Map.get(state, key), state}
//! ```
//!
//! Here [`ConsensusStore`] is a [`RaftServer`]: `set` and `get` are
//! commands through the log as in the article, and a query answers reads
//! (linearizable with [`Raft::read`](clustertop_store::Raft::read), or
//! from the local replica with `dirty_read`).

use clustertop_store::RaftServer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The group's name.
pub const GROUP: &str = "consensus_store";

/// The article's `ConsensusStore`.
#[derive(Debug)]
pub struct ConsensusStore;

/// `{:set, key, value}` and `{:get, key}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Sets `key` to `value`; answers the value before.
    Set(String, String),
    /// Answers the value of `key`, through the log.
    Get(String),
}

impl RaftServer for ConsensusStore {
    type State = BTreeMap<String, String>;
    type Command = Command;
    type Reply = Option<String>;
    type Query = String;
    type Answer = Option<String>;

    fn init() -> Self::State {
        BTreeMap::new()
    }

    fn handle_command(command: Command, state: &mut Self::State) -> Option<String> {
        match command {
            Command::Set(key, value) => state.insert(key, value),
            Command::Get(key) => state.get(&key).cloned(),
        }
    }

    fn handle_query(key: String, state: &Self::State) -> Option<String> {
        state.get(&key).cloned()
    }
}
