//! Warnings with hysteresis: each has an "on" and an "off" condition and a
//! hold time. A warning is raised once its on-condition has held for the
//! hold time, and cleared once its off-condition has held as long, so a
//! value hovering at a threshold does not make it flicker.
//!
//! One engine for every source: our nodes' agents observe their samples
//! with it, and a BEAM cluster's source observes the BEAM's figures with
//! the same thresholds and holds. The shared conditions of a rule (a
//! growing mailbox) live here too ([`mailbox_observation`]).
//!
//! # Cost
//! One hash-map entry per subject raised or about to flip; a round is one
//! pass over its observations and the states.

use crate::{PidRef, Warning, WarningKind};
use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

/// Thresholds of the warnings, for our nodes' agents and for a BEAM
/// cluster's source alike.
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
    /// A BEAM process doing at least this many reductions per second, for
    /// `hold`, is a hog (default 20 M: most of one scheduler); cleared
    /// below half of it.
    pub reductions_hog_per_s: u64,
    /// A BEAM process holding at least this many bytes, for `hold`, is a
    /// memory hog (default 256 MiB); cleared below three quarters of it.
    pub memory_hog_bytes: u64,
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
            reductions_hog_per_s: 20_000_000,
            memory_hog_bytes: 256 << 20,
        }
    }
}

#[derive(Debug, Clone)]
struct State {
    active: bool,
    /// When the condition that would flip `active` began to hold, ms.
    flipping_since: Option<u64>,
    raised_at: u64,
    kind: WarningKind,
    pid: Option<PidRef>,
    seen: bool,
}

/// The warnings of one node: one state per subject (a process's mailbox,
/// a link, ...), flipped by the observations of each round.
#[derive(Debug)]
pub struct Hysteresis<S> {
    states: HashMap<S, State>,
}

/// One observation of a subject in a round.
#[derive(Debug)]
pub struct Observation<S> {
    /// What it is about: one state per subject.
    pub subject: S,
    /// The process it concerns, if any.
    pub pid: Option<PidRef>,
    /// The raise condition holds.
    pub on: bool,
    /// The clear condition holds.
    pub off: bool,
    /// The warning, with this round's figures.
    pub kind: WarningKind,
    /// How long the raise condition must hold to raise the warning...
    pub hold: Duration,
    /// ...and the clear condition to clear it.
    pub clear_hold: Duration,
}

impl<S> Default for Hysteresis<S> {
    fn default() -> Self {
        Hysteresis {
            states: HashMap::new(),
        }
    }
}

impl<S: Eq + Hash + Clone> Hysteresis<S> {
    /// The subjects being tracked (active or about to flip).
    pub fn subjects(&self) -> Vec<S> {
        self.states.keys().cloned().collect()
    }

    /// Applies one round of observations at `now_ms`. A subject not
    /// observed this round (a process that exited) is cleared at once.
    pub fn round(&mut self, observations: Vec<Observation<S>>, now_ms: u64) {
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
    pub fn active(&self, node: &str) -> Vec<Warning> {
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

    /// The subjects whose warning is active.
    pub fn active_subjects(&self) -> impl Iterator<Item = &S> {
        self.states.iter().filter(|(_, s)| s.active).map(|(k, _)| k)
    }
}

/// The mailbox rule's observation of one process: raised at or above
/// `mailbox_on` queued messages while growing, cleared below
/// `mailbox_off` or when it drains; held for `hold` both ways.
pub fn mailbox_observation<S>(
    cfg: &WarningConfig,
    subject: S,
    pid: Option<PidRef>,
    len: u64,
    growth_per_s: i64,
) -> Observation<S> {
    Observation {
        subject,
        pid,
        on: len >= cfg.mailbox_on && growth_per_s > 0,
        off: len < cfg.mailbox_off || growth_per_s < 0,
        kind: WarningKind::MailboxGrowing { len, growth_per_s },
        hold: cfg.hold,
        clear_hold: cfg.hold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(len: u64, cfg: &WarningConfig) -> Observation<u64> {
        Observation {
            subject: 7u64,
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
        let mut w = Hysteresis::default();
        let mut t = 0;
        let mut step = |w: &mut Hysteresis<u64>, len| {
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
        assert_eq!(w.active_subjects().count(), 0);
    }

    #[test]
    fn a_subject_that_disappears_is_cleared() {
        let cfg = WarningConfig::default();
        let mut w = Hysteresis::default();
        let mut first = obs(5_000, &cfg);
        first.hold = Duration::ZERO;
        first.clear_hold = Duration::ZERO;
        w.round(vec![first], 0);
        assert_eq!(w.active_subjects().collect::<Vec<_>>(), [&7]);
        w.round(vec![], 1_000);
        assert!(w.active("n").is_empty());
    }
}
