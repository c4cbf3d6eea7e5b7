//! [`BeamSource`]: the attach protocol answered for a BEAM cluster.
//!
//! A sampler task takes one round every [`BeamConfig::interval`]: it asks
//! the entry node for `nodes()`, connects to every node it has not (a
//! node that is down is tried again at most every 5 s), samples each node
//! at once (see [`crate::sample`] for the calls), turns counters into
//! rates against the previous round, and runs the warnings engine over
//! the figures. A node's process table is read again only once ten times
//! what its last read took has passed (a 100,000-process node read whole
//! in 0.45 s is read every 4.5 s), so attaching keeps a node's process
//! reading under a tenth of its time; the node's own figures are read
//! every round. Requests read the last round; the detail of one process
//! and the supervision tree are read when asked.
//!
//! # Status of a node
//! `up` when its last sample answered; `slow` when the connection is up
//! but the sample did not answer within the timeout; `down` when the
//! connection is gone (a node that was killed is `down` at the next
//! round: its socket closes) or cannot be made.
//!
//! # Cost on this side
//! The last round's rows of every node, and per process the figures of
//! the round before (for rates) and its names: a few hundred bytes per
//! process of the cluster.

use crate::cluster::Cluster;
use crate::config::BeamConfig;
use crate::{BeamError, detail};
use clustertop_client::ClientError;
use clustertop_client::source::{Answer, LogSink, Source};
use clustertop_proto::time::unix_ms;
use clustertop_proto::{MetricsSnapshot, ProtoError, Request, Response};
use std::sync::Arc;

/// The attach protocol answered for a BEAM cluster. Open a
/// [`clustertop_client::Client`] over it with [`BeamSource::client`].
#[derive(Debug)]
pub struct BeamSource {
    cluster: Arc<Cluster>,
}

impl BeamSource {
    /// Connects to the entry node and starts sampling. Must be called
    /// inside a tokio runtime.
    ///
    /// # Errors
    /// [`BeamError::NoCookie`], and the connection's errors
    /// ([`crate::Conn::connect`]).
    pub async fn connect(cfg: BeamConfig) -> Result<BeamSource, BeamError> {
        let cluster = Cluster::connect(cfg).await?;
        tokio::spawn(sampler(Arc::downgrade(&cluster)));
        Ok(BeamSource { cluster })
    }

    /// Opens a client over this source, offering the protocol version
    /// and naming the client as [`BeamConfig::attach`] says.
    ///
    /// # Errors
    /// As [`clustertop_client::Client::open`].
    pub async fn client(self) -> Result<clustertop_client::Client, ClientError> {
        let attach = self.cluster.cfg.attach.clone();
        clustertop_client::Client::open(Arc::new(self), &attach.client, attach.version).await
    }

    /// Waits until `n` rounds have been sampled since the connect: rates
    /// need two, and a warning holds for [`clustertop_proto::WarningConfig::hold`]
    /// before it is raised, so a one-shot reader (`clustertop snapshot`)
    /// waits for enough rounds to cover the hold.
    pub async fn wait_rounds(&self, n: u64) {
        let mut rx = self.cluster.rounds();
        let _ = rx.wait_for(|r| *r >= n).await;
    }

    /// Rounds sampled since the connect.
    pub fn rounds(&self) -> u64 {
        *self.cluster.rounds().borrow()
    }

    /// How long the last read of the entry node's process table took, in
    /// milliseconds (the calls, the transfer and this side's decoding).
    pub fn last_table_read_ms(&self) -> f64 {
        self.cluster
            .table_took(self.cluster.cfg.node())
            .as_secs_f64()
            * 1000.0
    }

    /// Bytes received and sent over every node's connection so far,
    /// framing included (what attaching costs the network).
    pub fn traffic(&self) -> (u64, u64) {
        self.cluster.traffic()
    }

    /// Rounds a one-shot reader waits for so that rates are known and a
    /// warning can have held: the first round has no rates, the second
    /// starts the hold, which must then have passed (one more round for
    /// the rounds' jitter).
    pub fn settle_rounds(&self) -> u64 {
        let cfg = &self.cluster.cfg;
        let interval = cfg.interval.as_millis().max(1);
        3 + (cfg.warnings.hold.as_millis().div_ceil(interval)) as u64
    }
}

/// One round every interval while the source is held; ends when it is
/// dropped or the entry node is gone (every node then marked down).
async fn sampler(cluster: std::sync::Weak<Cluster>) {
    let interval = match cluster.upgrade() {
        Some(c) => c.cfg.interval,
        None => return,
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        if !cluster.step().await {
            return;
        }
    }
}

async fn answer(cluster: &Arc<Cluster>, request: Request) -> Result<Response, ProtoError> {
    // Requests other than Hello read the first round: wait for it.
    if !matches!(request, Request::Hello(_)) {
        let mut rx = cluster.rounds();
        let waited = tokio::time::timeout(cluster.cfg.attach.timeout * 2, rx.wait_for(|r| *r >= 1));
        if waited.await.is_err() {
            return Err(ProtoError::NodeTimeout(cluster.cfg.node().to_owned()));
        }
    }
    Ok(match request {
        Request::Hello(h) => {
            let version = clustertop_proto::negotiate(h.version, clustertop_proto::VERSION)?;
            let release = cluster.release(cluster.cfg.node());
            Response::Hello(clustertop_proto::HelloReply {
                version,
                node: cluster.cfg.node().to_owned(),
                agent_version: match release {
                    Some((otp, erts)) => format!(
                        "BEAM (OTP {otp}, {erts}) read by clustertop-beam {}",
                        env!("CARGO_PKG_VERSION")
                    ),
                    None => format!(
                        "BEAM, read by clustertop-beam {}",
                        env!("CARGO_PKG_VERSION")
                    ),
                },
            })
        }
        Request::ClusterOverview(_) => Response::Overview(cluster.overview()),
        Request::NodeDetail(g) => Response::Node(cluster.node_detail(&g.node)?),
        Request::ProcessList(q) => Response::Processes(cluster.query(&q)),
        Request::ProcessInfo(g) => Response::Process(detail::process(cluster, &g.pid).await?),
        Request::SupervisionTree(g) => Response::Tree(detail::tree(cluster, &g.node).await?),
        Request::Metrics(_) => Response::Metrics(MetricsSnapshot {
            sampled_at_unix_ms: unix_ms(),
            histograms: Vec::new(),
        }),
        Request::Warnings(_) => Response::Warnings(cluster.warnings()),
        Request::SubscribeLogs(_) | Request::Unsubscribe(_) => {
            return Err(ProtoError::Other(NO_LOGS.into()));
        }
        Request::Registry(_) => Response::Registry(detail::registry(cluster).await),
        Request::ProcessRegistry(g) => {
            Response::ProcessRegistry(detail::process_registry(cluster, &g.pid).await?)
        }
        Request::Telemetry(_) => Response::Telemetry(clustertop_proto::Telemetry {
            nodes: Vec::new(),
            missing: Vec::new(),
        }),
        Request::PeekMailbox(p) => Response::Mailbox(detail::peek_mailbox(cluster, &p).await?),
        Request::ProcessTraces(_) => {
            return Err(ProtoError::Other(
                "a BEAM node keeps no traces of its handlings for clustertop (tracing would \
                 need code loaded into it)"
                    .into(),
            ));
        }
    })
}

/// Why a BEAM cluster has no log tail here.
pub const NO_LOGS: &str = "logs are not available from a BEAM node: reading them needs a \
     logger handler loaded into the node, and clustertop loads no code into a BEAM cluster";

impl Source for BeamSource {
    fn entry(&self) -> &str {
        self.cluster.cfg.node()
    }

    fn is_connected(&self) -> bool {
        self.cluster.entry.is_up()
    }

    fn request(&self, request: Request) -> Answer<'_> {
        Box::pin(async move {
            // The entry node gone, nothing is answered from what it left:
            // the caller attaches elsewhere, as for an agent.
            if !self.cluster.entry.is_up() {
                return Err(ClientError::Disconnected(
                    self.cluster.cfg.node().to_owned(),
                ));
            }
            match answer(&self.cluster, request).await {
                Ok(r) => Ok(r),
                Err(e) => Ok(Response::Error(e)),
            }
        })
    }

    fn logs(&self) -> &LogSink {
        self.cluster.logs()
    }

    fn close(&self) {
        self.cluster.close();
    }
}

impl Drop for BeamSource {
    fn drop(&mut self) {
        self.close();
    }
}
