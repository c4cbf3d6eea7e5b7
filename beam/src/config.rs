//! [`BeamConfig`]: where and how to attach to a BEAM cluster, and how
//! often to read it.

use crate::sample::TableMode;
use clustertop_client::ClientConfig;
use clustertop_proto::WarningConfig;
use std::time::Duration;

/// A node's process table is read again only after this many times what
/// its last read took (and at most once a round): reading it keeps a
/// node busy under a tenth of the time, however large the node. The node
/// figures are read every round.
pub const PACE: u32 = 10;

/// Where and how to attach to a BEAM cluster.
#[derive(Debug, Clone)]
pub struct BeamConfig {
    /// Where to attach and as whom, as for a clustertop cluster: the entry
    /// node (`name@host`); the cookie (`None` finds it as `erl` does,
    /// [`crate::resolve_cookie`]); this side's hidden node name (by
    /// default `clustertop_<os pid>_<n>@<the entry node's host>`, so it is
    /// short or fully qualified as the cluster's names are); the limit for
    /// connecting and for each call (default 5 s).
    pub attach: ClientConfig,
    /// Time between two samples of every node (default 1 s).
    pub interval: Duration,
    /// The warnings' thresholds.
    pub warnings: WarningConfig,
    /// How each node's process table is read (default: whole up to
    /// 20,000 processes, the top ones above).
    pub table: TableMode,
    /// A node's table is read again after this many times what its last
    /// read took ([`PACE`], 10, by default; 0 reads it every round).
    pub pace: u32,
}

impl BeamConfig {
    /// Attach as `attach` says (`ClientConfig::new("app@host")`), with the
    /// default pace, interval and thresholds.
    pub fn new(attach: ClientConfig) -> Self {
        BeamConfig {
            attach,
            interval: Duration::from_secs(1),
            warnings: WarningConfig::default(),
            table: TableMode::Auto,
            pace: PACE,
        }
    }

    /// Sets the sampling interval.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The entry node, `name@host`.
    pub fn node(&self) -> &str {
        &self.attach.entry
    }
}
