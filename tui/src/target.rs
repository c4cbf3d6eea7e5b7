//! What `clustertop` attaches to: a clustertop cluster through one node's
//! agent (`--node ADDR`), or a BEAM cluster through one node's name
//! (`--beam NAME@HOST`). Both give a [`Client`]; everything above sees only
//! the attach protocol.

use crate::error::CliError;
use clustertop_beam::{BeamConfig, BeamSource};
use clustertop_client::{Client, ClientConfig};
use clustertop_proto::{ClusterOverview, NodeStatus};

/// Where to attach.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A clustertop node's agent, at `host:port`.
    Agent(ClientConfig),
    /// A BEAM node, `name@host`.
    Beam(BeamConfig),
}

impl Target {
    /// What the view calls the entry: an address, or a node name.
    pub(crate) fn label(&self) -> &str {
        match self {
            Target::Agent(c) => &c.entry,
            Target::Beam(c) => c.node(),
        }
    }

    /// The same target entered at `entry` instead.
    pub(crate) fn at(&self, entry: &str) -> Target {
        let mut target = self.clone();
        match &mut target {
            Target::Agent(c) => c.entry = entry.to_owned(),
            Target::Beam(c) => c.attach.entry = entry.to_owned(),
        }
        target
    }

    /// Attaches.
    ///
    /// # Errors
    /// The client's or the BEAM connection's error, as one line.
    pub(crate) async fn connect(&self) -> Result<Client, CliError> {
        match self {
            Target::Agent(c) => Ok(Client::connect(c.clone()).await?),
            Target::Beam(c) => Ok(BeamSource::connect(c.clone()).await?.client().await?),
        }
    }

    /// Attaches and, for a BEAM cluster (which keeps no history of its
    /// own), samples until rates are known and a warning can have held:
    /// what a one-shot command (`snapshot`) answers from.
    ///
    /// # Errors
    /// As [`Target::connect`].
    pub(crate) async fn connect_settled(&self) -> Result<Client, CliError> {
        match self {
            Target::Agent(_) => self.connect().await,
            Target::Beam(c) => {
                let source = BeamSource::connect(c.clone()).await?;
                source.wait_rounds(source.settle_rounds()).await;
                Ok(source.client().await?)
            }
        }
    }

    /// Where the cluster's other live nodes can be attached at, from an
    /// overview: each agent's listen address (an unspecified host
    /// replaced by the one `current` names), or each BEAM node's name.
    pub(crate) fn others(&self, o: &ClusterOverview, entry: &str, current: &str) -> Vec<String> {
        let live = o
            .nodes
            .iter()
            .filter(|n| n.name != entry && n.status == NodeStatus::Up);
        match self {
            Target::Beam(_) => live.map(|n| n.name.clone()).collect(),
            Target::Agent(_) => {
                let host = current.rsplit_once(':').map_or(current, |(h, _)| h);
                live.filter_map(|n| {
                    let a: std::net::SocketAddr = n.addr.as_deref()?.parse().ok()?;
                    Some(if a.ip().is_unspecified() {
                        format!("{host}:{}", a.port())
                    } else {
                        a.to_string()
                    })
                })
                .collect()
            }
        }
    }
}
