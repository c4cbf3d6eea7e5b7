//! One node's agent, concern by concern, and the sampling round that ties
//! them together.
//!
//! Each field is owned by its module and guarded inside it (short locks,
//! never held across an await): the sampler's latest sample, the latency
//! windows, the warnings, the log subscriptions, membership, sessions.
//! Nothing here is shared by two concerns except through these owners.

use crate::config::AgentConfig;
use crate::histograms::Windows;
use crate::logs;
use crate::membership::Membership;
use crate::sampler::{Sample, Sampler};
use crate::sessions::Sessions;
use crate::subscriptions::{PushLimits, Subscriptions};
use crate::telemetry::Readings;
use crate::warnings::{Inputs, NodeWarnings, SupervisorFigures};
use clustertop_proto::Warning;
use clustertop_proto::time::unix_ms;
use clustertop_runtime::{Node, ProcessId};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The agent's software version.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What an agent holds in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentMemory {
    /// Bytes of the current process-table sample.
    pub sample_bytes: usize,
    /// Bytes charged to the log ring.
    pub log_bytes: usize,
    /// Records in the log ring.
    pub log_records: usize,
    /// Records evicted from the log ring since start.
    pub log_evicted: u64,
}

/// One node's agent.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) node: Node,
    pub(crate) config: AgentConfig,
    pub(crate) sampler: Sampler,
    pub(crate) windows: Mutex<Windows>,
    pub(crate) warnings: Mutex<NodeWarnings>,
    pub(crate) logs: Subscriptions,
    pub(crate) membership: Membership,
    pub(crate) sessions: Sessions,
    /// The user's series and events, over the last window.
    pub(crate) telemetry: Mutex<Readings>,
    /// The agent's processes, to stop them.
    pub(crate) pids: Mutex<Vec<ProcessId>>,
}

impl State {
    pub(crate) fn new(node: Node, config: AgentConfig) -> Arc<Self> {
        let ring = logs::ring_for(node.name(), config.log_capacity_bytes);
        logs::resolve_pids_with(&node);
        Arc::new(State {
            node,
            config,
            sampler: Sampler::default(),
            windows: Mutex::new(Windows::default()),
            warnings: Mutex::new(NodeWarnings::default()),
            logs: Subscriptions::new(ring),
            membership: Membership::default(),
            sessions: Sessions::default(),
            telemetry: Mutex::new(Readings::default()),
            pids: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn memory(&self) -> AgentMemory {
        let sample = self.sampler.latest();
        let (log_bytes, log_records, log_evicted) = self.logs.ring().usage();
        AgentMemory {
            sample_bytes: sample.bytes(),
            log_bytes,
            log_records,
            log_evicted,
        }
    }

    /// The limits of one log push.
    pub(crate) fn push_limits(&self) -> PushLimits {
        PushLimits {
            batch: self.config.log_batch,
            backlog: self.config.log_backlog,
        }
    }

    /// This node's active warnings.
    pub(crate) fn active_warnings(&self) -> Vec<Warning> {
        self.warnings.lock().active().to_vec()
    }

    /// Active warnings per process serial.
    pub(crate) fn warnings_per_process(&self) -> HashMap<u64, u32> {
        self.warnings.lock().per_process().clone()
    }

    /// One round: a sample of the process table, the latency windows and
    /// the warnings. Returns how long the process-table pass took.
    pub(crate) async fn sample(&self) -> Duration {
        let node = &self.node;
        let now = unix_ms();
        let (sample, elapsed, took) = self
            .sampler
            .sample(node, self.config.warnings.long_handler, now)
            .await;
        self.windows.lock().sample(node);
        self.telemetry.lock().sample(now);
        self.evaluate(&sample, elapsed, now);
        took
    }

    fn evaluate(&self, sample: &Sample, elapsed: Duration, now: u64) {
        let node = &self.node;
        let supervisors: Vec<SupervisorFigures> = node
            .introspect()
            .supervisors()
            .iter()
            .map(|s| SupervisorFigures {
                serial: s.id.serial(),
                restarts_total: s.restarts_total(),
                max_restarts: s.max_restarts,
                period: s.period,
            })
            .collect();
        let flaps = self.membership.flaps(self.config.warnings.flap_window, now);
        let inputs = Inputs {
            node: node.name(),
            creation: node.creation(),
            now_ms: now,
            elapsed,
            supervisors: &supervisors,
            dead_letters_total: node.stats().dead_letters,
            flaps: &flaps,
        };
        let mut warnings = self.warnings.lock();
        warnings.evaluate(&self.config.warnings, sample, &inputs);
        let introspect = node.introspect();
        warnings.describe(sample, |serial| {
            introspect
                .process_info(introspect.local_process_id(serial))
                .and_then(|i| i.name)
        });
    }
}
