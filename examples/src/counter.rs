//! The article's global counter: a GenServer registered in the
//! cluster-wide registry, so any node calls the one instance.
//!
//! ```elixir
//! def start_link(_), do: GenServer.start_link(__MODULE__, 0, name: {:global, __MODULE__})
//! def increment, do: GenServer.call({:global, __MODULE__}, :increment)
//! def get, do: GenServer.call({:global, __MODULE__}, :get)
//! ```
//!
//! The article's limits hold here too: the state lives on one node and
//! goes with it, and every operation goes through one process.

use clustertop_runtime::gen_server::{self, ServerMsg};
use clustertop_runtime::{
    CallError, CallResult, ExitReason, GenServer, Node, ServerContext, ServerOptions, ServerPid,
    StartError,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The counter's global name (the article's `{:global, Counter}`).
pub const NAME: &str = "Counter";

/// How long a call waits for the counter (GenServer's default 5 s).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The counter's state.
#[derive(Debug)]
pub struct Counter {
    count: u64,
}

/// What the counter answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Adds one; answers the new count.
    Increment,
    /// Answers the count.
    Get,
}

impl GenServer for Counter {
    type Args = u64;
    type Call = Request;
    type Reply = u64;
    type Cast = ();
    type Info = ();

    async fn init(count: u64, ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        ctx.enable_remote();
        Ok(Counter { count })
    }

    async fn handle_call(
        &mut self,
        request: Request,
        _: &mut ServerContext<Self>,
    ) -> CallResult<u64> {
        match request {
            Request::Increment => {
                self.count += 1;
                CallResult::Reply(self.count)
            }
            Request::Get => CallResult::Reply(self.count),
        }
    }
}

/// Starts the counter under its global name, from 0. On a node of a
/// cluster where another node holds the name, this fails with
/// [`StartError::Global`] (`Taken`), as `start_link` answers
/// `{:error, {:already_started, pid}}`.
///
/// # Errors
/// As [`gen_server::start`] with a global name.
pub async fn start_link(node: &Node) -> Result<ServerPid<Counter>, StartError> {
    gen_server::start::<Counter>(node, 0, ServerOptions::new().global_name(NAME)).await
}

/// Why a counter call failed.
#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    /// No node holds the name (not started, or its node went down).
    #[error("no process holds the global name {NAME}")]
    NotRunning,
    /// The call failed.
    #[error(transparent)]
    Call(#[from] CallError),
}

fn server(node: &Node) -> Result<ServerPid<Counter>, CounterError> {
    node.global()
        .whereis::<ServerMsg<Counter>>(NAME)
        .ok_or(CounterError::NotRunning)
}

/// Adds one, from any node; answers the new count.
///
/// # Errors
/// [`CounterError`].
pub async fn increment(node: &Node) -> Result<u64, CounterError> {
    Ok(server(node)?.call(Request::Increment, CALL_TIMEOUT).await?)
}

/// The count, from any node.
///
/// # Errors
/// [`CounterError`].
pub async fn get(node: &Node) -> Result<u64, CounterError> {
    Ok(server(node)?.call(Request::Get, CALL_TIMEOUT).await?)
}
