//! Warnings with hysteresis: the engine is the protocol crate's
//! ([`clustertop_proto::warnings`]), shared with the BEAM source, so a
//! warning means the same for every cluster; the rules that observe each subject
//! are in [`rules`]; [`NodeWarnings`] runs one round of every rule on a
//! fresh sample and keeps the history the rules need.
//!
//! # Cost
//! One round per sample: a pass over the sample's rows (only those at or
//! above the mailbox clear threshold, or busy and growing, are observed)
//! plus one observation per supervisor, long handler and flapping peer.

mod rules;

pub(crate) use rules::SupervisorFigures;

use crate::sampler::Sample;
use clustertop_proto::Warning;
pub use clustertop_proto::WarningConfig;
use clustertop_proto::warnings::Hysteresis;
use rules::{RestartHistory, Round, SaturationStreaks};
use std::collections::HashMap;
use std::time::Duration;

/// What a warning is about, so each subject has one state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Subject {
    Mailbox(u64),
    Saturated(u64),
    Handler(u64),
    Supervisor(u64),
    DeadLetters,
    Link(String),
}

/// The engine, keyed by this agent's subjects.
pub(crate) type Warnings = Hysteresis<Subject>;

/// One observation of a subject in a round.
pub(crate) type Observation = clustertop_proto::warnings::Observation<Subject>;

/// Active warnings per process serial.
fn per_process(engine: &Warnings) -> HashMap<u64, u32> {
    let mut out = HashMap::new();
    for subject in engine.active_subjects() {
        if let Subject::Mailbox(serial)
        | Subject::Saturated(serial)
        | Subject::Handler(serial)
        | Subject::Supervisor(serial) = subject
        {
            *out.entry(*serial).or_default() += 1;
        }
    }
    out
}

/// What one round reads besides the sample.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inputs<'a> {
    /// This node's name and creation.
    pub(crate) node: &'a str,
    pub(crate) creation: u32,
    /// Now, ms since the Unix epoch.
    pub(crate) now_ms: u64,
    /// Time since the last round.
    pub(crate) elapsed: Duration,
    /// Every live supervisor's restart figures.
    pub(crate) supervisors: &'a [SupervisorFigures],
    /// The node's dead-letter counter.
    pub(crate) dead_letters_total: u64,
    /// Link downs per peer within the flap window.
    pub(crate) flaps: &'a [(String, u32)],
}

/// The warnings of one node: the engine, the history its rules keep, and
/// the outcome of the last round.
#[derive(Debug, Default)]
pub(crate) struct NodeWarnings {
    engine: Warnings,
    restarts: RestartHistory,
    saturation: SaturationStreaks,
    dead_letters: Option<u64>,
    active: Vec<Warning>,
    per_process: HashMap<u64, u32>,
}

impl NodeWarnings {
    /// One round of every rule.
    pub(crate) fn evaluate(&mut self, cfg: &WarningConfig, sample: &Sample, inputs: &Inputs<'_>) {
        let tracked = self.engine.subjects();
        let round = Round {
            cfg,
            node: inputs.node,
            creation: inputs.creation,
            tracked: &tracked,
            now_ms: inputs.now_ms,
        };
        let mut obs = rules::mailboxes(&round, sample);
        obs.extend(rules::saturated(&round, &mut self.saturation, sample));
        obs.extend(rules::long_handlers(&round, sample));
        obs.extend(rules::restart_storms(
            &round,
            &mut self.restarts,
            inputs.supervisors,
        ));
        obs.extend(rules::dead_letters(
            &round,
            &mut self.dead_letters,
            inputs.dead_letters_total,
            inputs.elapsed,
        ));
        obs.extend(rules::flapping_links(&round, inputs.flaps));
        self.engine.round(obs, inputs.now_ms);
        self.active = self.engine.active(inputs.node);
        self.per_process = per_process(&self.engine);
    }

    /// Names the process of each active warning: its behaviour from
    /// `sample`, its registered name from `name_of` (asked once per
    /// warning, so a lookup per process is fine).
    pub(crate) fn describe(&mut self, sample: &Sample, name_of: impl Fn(u64) -> Option<String>) {
        for w in &mut self.active {
            let Some(serial) = w.pid.as_ref().map(|p| p.serial) else {
                continue;
            };
            w.behaviour = sample
                .row(serial)
                .map(|row| sample.behaviour(row).to_owned());
            w.name = name_of(serial);
        }
    }

    /// The warnings active after the last round.
    pub(crate) fn active(&self) -> &[Warning] {
        &self.active
    }

    /// Active warnings per process serial after the last round.
    pub(crate) fn per_process(&self) -> &HashMap<u64, u32> {
        &self.per_process
    }
}
