//! Requests that name their replies.
//!
//! On the wire a request is one variant of the versioned [`Request`] enum
//! and its answer one variant of [`Response`]. In code each request is a
//! type of its own whose [`Call::Reply`] says what comes back: a client
//! asks `client.ask(GetNode { node })` and gets a
//! [`NodeDetail`](crate::NodeDetail); an agent answers a `GetNode` with a
//! `NodeDetail` and [`Call::respond`] puts it on the wire. The one place a
//! response of the wrong kind can show up is [`Call::reply`].

use crate::{
    ClusterOverview, GetProcessRegistry, GetProcessTraces, GetRegistry, GetTelemetry, Hello,
    HelloReply, LogFilter, MailboxPeek, MetricsSnapshot, NodeDetail, PeekMailbox, PidRef,
    ProcessDetail, ProcessPage, ProcessQuery, ProcessRegistry, ProcessTraces, Registry, Request,
    Response, SupervisionTree, Telemetry, Warning,
};
use serde::{Deserialize, Serialize};

/// A request whose answer has a known type.
pub trait Call: Into<Request> {
    /// What the agent answers.
    type Reply;

    /// The first protocol version with this request. A client does not
    /// send it in a session of an older version (an agent of that version
    /// would not know it).
    const SINCE: u32 = 2;

    /// The request's name, for messages.
    const NAME: &'static str;

    /// The answer as it goes on the wire (the agent's side).
    fn respond(reply: Self::Reply) -> Response;

    /// The answer taken out of `response` (the client's side).
    ///
    /// # Errors
    /// The response itself when it is not this request's answer: the
    /// agent's [`Response::Error`], or a response of another kind.
    // The error is the response itself, handed back whole (an answer is
    // as large as the error).
    #[allow(clippy::result_large_err)]
    fn reply(response: Response) -> Result<Self::Reply, Response>;
}

/// Every node of the cluster, gathered by the entry node's agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GetOverview;

/// One node in depth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetNode {
    /// The node's name, `name@host`.
    pub node: String,
}

/// One process in depth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetProcess {
    /// The process.
    pub pid: PidRef,
}

/// The supervision trees of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetTree {
    /// The node's name.
    pub node: String,
}

/// Latency histograms, for one node or all.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GetMetrics {
    /// The node's name; `None` for the whole cluster.
    pub node: Option<String>,
}

/// Active warnings across the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GetWarnings;

/// Pushes log records matching `filter` from every node until
/// unsubscribed: first up to `backlog` recent matching records of each
/// node, then new ones as they are logged. Answered with the
/// subscription's id; the records come as [`Response::Logs`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeLogs {
    /// Which records.
    pub filter: LogFilter,
    /// Recent records per node to send first (0: only new ones).
    pub backlog: u32,
}

/// Ends a log subscription (also ended when the client's connection
/// closes). Answered with the subscription's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unsubscribe {
    /// The id [`SubscribeLogs`] answered.
    pub subscription: u64,
}

/// `impl Call` for requests answered by a newtype variant of [`Response`].
macro_rules! calls {
    ($($request:ty => Request::$req:ident, Response::$resp:ident($reply:ty) $(, since $since:literal)?;)*) => {$(
        impl From<$request> for Request {
            fn from(r: $request) -> Request {
                Request::$req(r)
            }
        }

        impl Call for $request {
            type Reply = $reply;
            $(const SINCE: u32 = $since;)?
            const NAME: &'static str = stringify!($req);

            fn respond(reply: $reply) -> Response {
                Response::$resp(reply)
            }

            fn reply(response: Response) -> Result<$reply, Response> {
                match response {
                    Response::$resp(r) => Ok(r),
                    other => Err(other),
                }
            }
        }
    )*};
}

calls! {
    Hello => Request::Hello, Response::Hello(HelloReply);
    GetOverview => Request::ClusterOverview, Response::Overview(ClusterOverview);
    GetNode => Request::NodeDetail, Response::Node(NodeDetail);
    ProcessQuery => Request::ProcessList, Response::Processes(ProcessPage);
    GetProcess => Request::ProcessInfo, Response::Process(ProcessDetail);
    GetTree => Request::SupervisionTree, Response::Tree(SupervisionTree);
    GetMetrics => Request::Metrics, Response::Metrics(MetricsSnapshot);
    GetWarnings => Request::Warnings, Response::Warnings(Vec<Warning>);
    GetRegistry => Request::Registry, Response::Registry(Registry), since 3;
    GetProcessRegistry => Request::ProcessRegistry, Response::ProcessRegistry(ProcessRegistry), since 3;
    GetTelemetry => Request::Telemetry, Response::Telemetry(Telemetry), since 4;
    GetProcessTraces => Request::ProcessTraces, Response::ProcessTraces(ProcessTraces), since 4;
    PeekMailbox => Request::PeekMailbox, Response::Mailbox(MailboxPeek), since 6;
}

/// `impl Call` for requests answered with a subscription's id, in a
/// struct variant of [`Response`].
macro_rules! subscription_calls {
    ($($request:ty => Request::$req:ident, Response::$resp:ident;)*) => {$(
        impl From<$request> for Request {
            fn from(r: $request) -> Request {
                Request::$req(r)
            }
        }

        impl Call for $request {
            /// The subscription's id.
            type Reply = u64;
            const NAME: &'static str = stringify!($req);

            fn respond(subscription: u64) -> Response {
                Response::$resp { subscription }
            }

            fn reply(response: Response) -> Result<u64, Response> {
                match response {
                    Response::$resp { subscription } => Ok(subscription),
                    other => Err(other),
                }
            }
        }
    )*};
}

subscription_calls! {
    SubscribeLogs => Request::SubscribeLogs, Response::Subscribed;
    Unsubscribe => Request::Unsubscribe, Response::Unsubscribed;
}
