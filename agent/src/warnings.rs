//! Warnings with hysteresis: each has an "on" and an "off" condition and a
//! hold time. A warning is raised once its on-condition has held for the
//! hold time, and cleared once its off-condition has held as long, so a
//! value hovering at a threshold does not make it flicker.
//!
//! The engine ([`Warnings`]) is here; the rules that observe each subject
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
use clustertop_proto::{PidRef, Warning, WarningKind};
use rules::{RestartHistory, Round, SaturationStreaks};
use std::collections::HashMap;
use std::time::Duration;

/// Thresholds of the agent's warnings.
#[derive(Debug, Clone)]
pub struct WarningConfig {
    /// A mailbox at or above this many messages, and growing, raises a
    /// warning (default 1,000).
    pub mailbox_on: u64,
    /// ...cleared when it drops below this or drains (default 500).
    pub mailbox_off: u64,
    /// A process at or above this utilisation (per mille of the sampling
    /// interval spent in handlers, awaits included) whose mailbox grew...
    /// (default 900: 90 %)
    pub saturated_util_permille: u16,
    /// ...in this many samples in a row is saturated: warned at once on
    /// the last of them (default 3). The warning clears once the mailbox
    /// shrinks or empties, or utilisation falls below two thirds of the
    /// threshold, for `hold`.
    pub saturated_samples: u32,
    /// A handler running longer than this raises a warning (default 5 s).
    pub long_handler: Duration,
    /// Dead letters per second that raise a warning (default 100)...
    pub dead_letters_on_per_s: u64,
    /// ...and the rate below which it clears (default 10).
    pub dead_letters_off_per_s: u64,
    /// Link downs within `flap_window` that mark a link as flapping
    /// (default 3)...
    pub flaps: u32,
    /// ...within this window (default 60 s).
    pub flap_window: Duration,
    /// How long a condition must hold before a warning is raised or
    /// cleared (default 3 s).
    pub hold: Duration,
}

impl Default for WarningConfig {
    fn default() -> Self {
        WarningConfig {
            mailbox_on: 1_000,
            mailbox_off: 500,
            saturated_util_permille: 900,
            saturated_samples: 3,
            long_handler: Duration::from_secs(5),
            dead_letters_on_per_s: 100,
            dead_letters_off_per_s: 10,
            flaps: 3,
            flap_window: Duration::from_secs(60),
            hold: Duration::from_secs(3),
        }
    }
}

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

#[derive(Debug)]
struct State {
    active: bool,
    /// When the condition that would flip `active` began to hold, ms.
    flipping_since: Option<u64>,
    raised_at: u64,
    kind: WarningKind,
    pid: Option<PidRef>,
    seen: bool,
}

/// The warnings of one node.
#[derive(Debug, Default)]
pub(crate) struct Warnings {
    states: HashMap<Subject, State>,
}

/// One observation of a subject in a round.
#[derive(Debug)]
pub(crate) struct Observation {
    pub(crate) subject: Subject,
    pub(crate) pid: Option<PidRef>,
    /// The raise condition holds.
    pub(crate) on: bool,
    /// The clear condition holds.
    pub(crate) off: bool,
    pub(crate) kind: WarningKind,
    /// How long the raise condition must hold to raise the warning...
    pub(crate) hold: Duration,
    /// ...and the clear condition to clear it.
    pub(crate) clear_hold: Duration,
}

impl Warnings {
    /// The subjects being tracked (active or about to flip).
    pub(crate) fn subjects(&self) -> Vec<Subject> {
        self.states.keys().cloned().collect()
    }

    /// Applies one round of observations at `now_ms`. A subject not
    /// observed this round (a process that exited) is cleared at once.
    pub(crate) fn round(&mut self, observations: Vec<Observation>, now_ms: u64) {
        for s in self.states.values_mut() {
            s.seen = false;
        }
        for o in observations {
            let s = self.states.entry(o.subject).or_insert(State {
                active: false,
                flipping_since: None,
                raised_at: 0,
                kind: o.kind.clone(),
                pid: o.pid.clone(),
                seen: true,
            });
            s.seen = true;
            s.kind = o.kind;
            let hold = if s.active { o.clear_hold } else { o.hold }.as_millis() as u64;
            let flipping = if s.active { o.off } else { o.on };
            if !flipping {
                s.flipping_since = None;
                continue;
            }
            let since = *s.flipping_since.get_or_insert(now_ms);
            if now_ms.saturating_sub(since) >= hold {
                s.active = !s.active;
                s.flipping_since = None;
                if s.active {
                    s.raised_at = now_ms;
                }
            }
        }
        self.states
            .retain(|_, s| s.seen && (s.active || s.flipping_since.is_some()));
    }

    /// Active warnings of `node`.
    pub(crate) fn active(&self, node: &str) -> Vec<Warning> {
        let mut out: Vec<Warning> = self
            .states
            .values()
            .filter(|s| s.active)
            .map(|s| Warning {
                node: node.to_owned(),
                pid: s.pid.clone(),
                name: None,
                behaviour: None,
                kind: s.kind.clone(),
                since_unix_ms: s.raised_at,
            })
            .collect();
        out.sort_by_key(|w| (w.since_unix_ms, w.pid.as_ref().map(|p| p.serial)));
        out
    }

    /// Active warnings per process serial.
    pub(crate) fn per_process(&self) -> HashMap<u64, u32> {
        let mut out = HashMap::new();
        for (subject, s) in &self.states {
            if !s.active {
                continue;
            }
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
        self.per_process = self.engine.per_process();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(len: u64, cfg: &WarningConfig) -> Observation {
        Observation {
            subject: Subject::Mailbox(7),
            pid: None,
            on: len >= cfg.mailbox_on,
            off: len < cfg.mailbox_off,
            kind: WarningKind::MailboxGrowing {
                len,
                growth_per_s: 1,
            },
            hold: Duration::from_secs(3),
            clear_hold: Duration::from_secs(3),
        }
    }

    #[test]
    fn raises_after_the_hold_and_does_not_flicker_at_the_threshold() {
        let cfg = WarningConfig::default();
        let mut w = Warnings::default();
        let mut t = 0;
        let mut step = |w: &mut Warnings, len| {
            t += 1_000;
            w.round(vec![obs(len, &cfg)], t);
            w.active("n").len()
        };
        assert_eq!(step(&mut w, 2_000), 0);
        assert_eq!(step(&mut w, 2_000), 0);
        assert_eq!(step(&mut w, 2_000), 0);
        assert_eq!(step(&mut w, 2_000), 1, "raised after 3 s");
        // Hovering around the raise threshold does not clear it.
        for len in [900, 1_100, 800, 1_200, 600] {
            assert_eq!(step(&mut w, len), 1);
        }
        // Below the clear threshold for the hold time clears it.
        assert_eq!(step(&mut w, 100), 1);
        assert_eq!(step(&mut w, 100), 1);
        assert_eq!(step(&mut w, 100), 1);
        assert_eq!(step(&mut w, 100), 0);
        assert!(w.per_process().is_empty());
    }

    #[test]
    fn a_subject_that_disappears_is_cleared() {
        let cfg = WarningConfig::default();
        let mut w = Warnings::default();
        let mut first = obs(5_000, &cfg);
        first.hold = Duration::ZERO;
        first.clear_hold = Duration::ZERO;
        w.round(vec![first], 0);
        assert_eq!(w.per_process().get(&7), Some(&1));
        w.round(vec![], 1_000);
        assert!(w.active("n").is_empty());
    }
}
