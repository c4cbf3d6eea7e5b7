//! The opening exchange and protocol errors.

use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks.
///
/// 2: process rows carry only what the sample saw; a process's lifetime
/// totals moved to [`ProcessDetail::totals`](crate::ProcessDetail);
/// [`ProcessFilter::min_growth_per_s`](crate::ProcessFilter).
///
/// 3: the application layer's registries ([`GetRegistry`](crate::GetRegistry),
/// [`GetProcessRegistry`](crate::GetProcessRegistry)), added as new
/// variants at the end of [`Request`](crate::Request) and
/// [`Response`](crate::Response); every version-2 message is unchanged, so
/// a session negotiated at 2 works as before.
///
/// 4: each node's telemetry ([`GetTelemetry`](crate::GetTelemetry)):
/// where it exports, the `metrics` series its code records, its telemetry
/// events; a process's traced handlings
/// ([`GetProcessTraces`](crate::GetProcessTraces)); again new variants at
/// the end, older messages unchanged.
///
/// 5: figures operators sort by: a process row's utilisation (time in
/// handlers, awaits included) beside its poll-time share (what version 4
/// called busy), its polls per second and its memory; the matching sort
/// keys and lifetime totals; the [`Saturated`](crate::WarningKind::Saturated)
/// warning; every warning names its process; the detail of a process
/// that has exited answers [`ProtoError::Exited`] with its reason. Rows
/// and warnings changed shape, so 5 is also the oldest version spoken.
///
/// 6: figures a BEAM node has and ours lack, as optional fields of node
/// summaries, process rows and details ([`BeamNode`](crate::BeamNode),
/// [`BeamProcess`](crate::BeamProcess),
/// [`BeamProcessDetail`](crate::BeamProcessDetail)); the
/// [`ReductionsHog`](crate::WarningKind::ReductionsHog) and
/// [`MemoryHog`](crate::WarningKind::MemoryHog) warnings. Rows changed
/// shape again, so 6 is the oldest version spoken.
///
/// 7: figures that mean what they say: a node summary's figures all come
/// from the agent's last sample and carry its time; a process's figures
/// say whether its rates are known yet
/// ([`ProcessFigures::rates_known`](crate::ProcessFigures)); a process's
/// detail says what it is doing ([`Activity`](crate::Activity)); a log push names its
/// node and says whether it is that node's backlog (sent once, first, even
/// when empty). Pushes changed shape, so 7 is the oldest version spoken.
pub const VERSION: u32 = 7;
/// The oldest version this crate still speaks, as an agent answering a
/// client and as a client falling back to an older agent.
pub const MIN_VERSION: u32 = 7;

/// Opens a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The client's protocol version.
    pub version: u32,
    /// The client's name and version, for the agent's logs (for example
    /// `clustertop 0.1.0`).
    pub client: String,
}

/// The agent's answer to [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloReply {
    /// The protocol version the session uses.
    pub version: u32,
    /// The entry node's name.
    pub node: String,
    /// The agent's software version.
    pub agent_version: String,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ProtoError {
    /// The client speaks a version the agent does not.
    #[error("protocol version {client} is not supported (this agent speaks {min} to {max})")]
    UnsupportedVersion {
        /// The client's version.
        client: u32,
        /// The oldest version the agent speaks.
        min: u32,
        /// The newest version the agent speaks.
        max: u32,
    },
    /// A request came before [`Hello`].
    #[error("the session must begin with Hello")]
    NoHello,
    /// The node is not part of the cluster.
    #[error("no node named {0:?}")]
    NoSuchNode(String),
    /// The process does not exist (any more), and its node no longer
    /// remembers it.
    #[error("no such process")]
    NoSuchProcess,
    /// The process has exited; its node remembers why and when.
    #[error("the process exited: {reason}")]
    Exited {
        /// Its exit reason, as the runtime prints it (`normal`,
        /// `panic: …`, `killed`, …).
        reason: String,
        /// Whether that is a crash (not `normal` or `shutdown`).
        crashed: bool,
        /// When, in milliseconds since the Unix epoch.
        at_unix_ms: u64,
    },
    /// The node did not answer in time.
    #[error("node {0:?} did not answer in time")]
    NodeTimeout(String),
    /// Anything else, as text.
    #[error("{0}")]
    Other(String),
}

/// The version a session with a client speaking `client` uses, for an
/// agent that speaks up to `max` (normally [`VERSION`]).
///
/// # Errors
/// [`ProtoError::UnsupportedVersion`] outside `MIN_VERSION..=max`: a client
/// newer than the agent learns the agent's range from it and may offer an
/// older version it also speaks ([`fallback`]).
pub fn negotiate(client: u32, max: u32) -> Result<u32, ProtoError> {
    if (MIN_VERSION..=max).contains(&client) {
        Ok(client)
    } else {
        Err(ProtoError::UnsupportedVersion {
            client,
            min: MIN_VERSION,
            max,
        })
    }
}

/// The version a client offering `offered` should offer next after an
/// agent refused it with `error`: the agent's newest, when this crate
/// speaks it too; `None` when the two have no version in common.
pub fn fallback(offered: u32, error: &ProtoError) -> Option<u32> {
    match *error {
        ProtoError::UnsupportedVersion { max, .. } if max < offered && max >= MIN_VERSION => {
            Some(max)
        }
        _ => None,
    }
}
