//! What `clustertop` attaches to: a clustertop cluster through one node's
//! agent (`--node ADDR`), or a BEAM cluster through one node's name
//! (`--beam NAME@HOST`). Both give a [`Client`]; everything above sees only
//! the attach protocol.

use crate::error::CliError;
use clustertop_beam::{BeamConfig, BeamSource};
use clustertop_client::{Client, ClientConfig};
use clustertop_proto::{ClusterOverview, NodeStatus};

/// How long one attach attempt may take while failing over: a live node
/// answers in milliseconds, a dead one refuses at once, only an address
/// that drops packets takes this long.
pub(crate) const ATTACH_TRY: std::time::Duration = std::time::Duration::from_secs(1);

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

    /// Attaches at the entry or, when it does not answer, at the first of
    /// `more` that does (each given [`ATTACH_TRY`]); says on standard
    /// error where it attached instead. Returns the client and the target
    /// at the address that answered.
    ///
    /// # Errors
    /// The entry's error, when none answers.
    pub(crate) async fn connect_first(
        &self,
        more: &[String],
    ) -> Result<(Client, Target), CliError> {
        if more.is_empty() {
            return Ok((self.connect().await?, self.clone()));
        }
        let mut first_error = None;
        for addr in std::iter::once(self.label()).chain(more.iter().map(String::as_str)) {
            let t = self.at(addr);
            let error = match tokio::time::timeout(ATTACH_TRY, t.connect()).await {
                Ok(Ok(client)) => {
                    if let Some(e) = &first_error {
                        eprintln!(
                            "clustertop: {} does not answer ({e}); attached at {addr}",
                            self.label()
                        );
                    }
                    return Ok((client, t));
                }
                Ok(Err(e)) => e,
                Err(_) => CliError::Usage(format!("{addr} did not answer within {ATTACH_TRY:?}")),
            };
            first_error.get_or_insert(error);
        }
        Err(first_error.expect("the entry was tried"))
    }

    /// Attaches (as [`Target::connect_first`]) and, for a BEAM cluster
    /// (which keeps no history of its own), samples until rates are known
    /// and a warning can have held: what a one-shot command (`snapshot`)
    /// answers from.
    ///
    /// # Errors
    /// As [`Target::connect_first`].
    pub(crate) async fn connect_settled(&self, more: &[String]) -> Result<Client, CliError> {
        match self {
            Target::Agent(_) => Ok(self.connect_first(more).await?.0),
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
