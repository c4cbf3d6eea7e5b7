//! The warning rules: what each subject looks like in one round, from one
//! sample and the node's counters. Each rule is a function of its inputs
//! alone, tested here; [`super::Warnings`] adds the hysteresis.
//!
//! - **Mailbox growing**: a non-system process at or above `mailbox_on`
//!   queued messages whose mailbox grew since the last sample; clears
//!   below `mailbox_off` or when it drains. Held for `hold` both ways.
//! - **Saturated**: a non-system process at or above
//!   `saturated_util_permille` utilisation whose mailbox grew in each of
//!   the last `saturated_samples` samples: raised on the last of them,
//!   however short the queue still is. Clears once the mailbox shrinks or
//!   empties, or utilisation drops below two thirds of the threshold, for
//!   `hold`. It catches the consumer that cannot keep up seconds before
//!   its queue passes `mailbox_on`; the mailbox rule still catches the
//!   slow build-up of a process that is not busy.
//! - **Long handler**: a handler running past `long_handler` (the limit is
//!   the hold); clears when it returns.
//! - **Restart storm**: a supervisor that used two thirds of its restart
//!   intensity within its period; clears at one third.
//! - **Dead letters**: at least `dead_letters_on_per_s` per second; clears
//!   below `dead_letters_off_per_s`. Held for `hold`.
//! - **Flapping link**: `flaps` link downs to one peer within
//!   `flap_window`; clears below half of that.

use super::{Observation, Subject, WarningConfig};
use crate::sampler::{Row, Sample};
use clustertop_proto::warnings::mailbox_observation;
use clustertop_proto::{PidRef, WarningKind};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// What every rule of a round shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Round<'a> {
    pub(crate) cfg: &'a WarningConfig,
    /// This node's name and creation, for the warnings' pids.
    pub(crate) node: &'a str,
    pub(crate) creation: u32,
    /// The subjects the engine tracks (raised, or about to be): each is
    /// observed again so that it can clear.
    pub(crate) tracked: &'a [Subject],
    /// Now, ms since the Unix epoch.
    pub(crate) now_ms: u64,
}

impl Round<'_> {
    fn pid(&self, serial: u64) -> Option<PidRef> {
        Some(PidRef {
            node: self.node.to_owned(),
            serial,
            creation: self.creation,
        })
    }
}

/// Mailboxes: every row at or above the clear threshold, and every one
/// tracked, so a warning clears after its hold time.
pub(crate) fn mailboxes(r: &Round<'_>, sample: &Sample) -> Vec<Observation> {
    let cfg = r.cfg;
    let observe = |row: &Row| {
        mailbox_observation(
            cfg,
            Subject::Mailbox(row.serial()),
            r.pid(row.serial()),
            u64::from(row.mailbox),
            i64::from(row.growth),
        )
    };
    let mut out: Vec<Observation> = sample
        .rows
        .iter()
        .filter(|row| !row.system() && u64::from(row.mailbox) >= cfg.mailbox_off)
        .map(observe)
        .collect();
    for s in r.tracked {
        if let Subject::Mailbox(serial) = s {
            if let Some(row) = sample.row(*serial) {
                if u64::from(row.mailbox) < cfg.mailbox_off {
                    out.push(observe(row));
                }
            }
        }
    }
    out
}

/// Consecutive samples in which each process was busy and growing (only
/// those that were, in the last sample).
#[derive(Debug, Default)]
pub(crate) struct SaturationStreaks(HashMap<u64, u32>);

/// Saturated processes: busy at or above the threshold while the mailbox
/// grows, `saturated_samples` samples in a row (the streaks are the
/// hold). Tracked ones are observed until they clear.
pub(crate) fn saturated(
    r: &Round<'_>,
    streaks: &mut SaturationStreaks,
    sample: &Sample,
) -> Vec<Observation> {
    let cfg = r.cfg;
    let busy = |row: &Row| row.util_permille() >= cfg.saturated_util_permille;
    let mut next = HashMap::new();
    for row in &sample.rows {
        if !row.system() && row.growth > 0 && busy(row) {
            let streak = streaks.0.get(&row.serial()).copied().unwrap_or(0);
            next.insert(row.serial(), streak.saturating_add(1));
        }
    }
    streaks.0 = next;
    let observe = |row: &Row, streak: u32| Observation {
        subject: Subject::Saturated(row.serial()),
        pid: r.pid(row.serial()),
        on: streak >= cfg.saturated_samples.max(1),
        off: row.growth < 0
            || row.mailbox == 0
            || u32::from(row.util_permille()) * 3 < u32::from(cfg.saturated_util_permille) * 2,
        kind: WarningKind::Saturated {
            util_permille: row.util_permille(),
            len: u64::from(row.mailbox),
            growth_per_s: i64::from(row.growth),
        },
        hold: Duration::ZERO,
        clear_hold: cfg.hold,
    };
    let mut out: Vec<Observation> = streaks
        .0
        .iter()
        .filter_map(|(serial, streak)| sample.row(*serial).map(|row| observe(row, *streak)))
        .collect();
    for s in r.tracked {
        if let Subject::Saturated(serial) = s {
            if !streaks.0.contains_key(serial) {
                if let Some(row) = sample.row(*serial) {
                    out.push(observe(row, 0));
                }
            }
        }
    }
    out
}

/// Handlers running past the limit: raised at once (the limit is the
/// hold), cleared when the handler returns.
pub(crate) fn long_handlers(r: &Round<'_>, sample: &Sample) -> Vec<Observation> {
    let mut out: Vec<Observation> = sample
        .long_handlers
        .iter()
        .map(|h| Observation {
            subject: Subject::Handler(h.serial),
            pid: r.pid(h.serial),
            on: true,
            off: false,
            kind: WarningKind::LongHandler {
                running_ms: h.running.as_millis() as u64,
            },
            hold: Duration::ZERO,
            clear_hold: Duration::ZERO,
        })
        .collect();
    for s in r.tracked {
        let Subject::Handler(serial) = *s else {
            continue;
        };
        let running = sample.long_handlers.iter().any(|h| h.serial == serial);
        if !running && sample.row(serial).is_some() {
            out.push(Observation {
                subject: Subject::Handler(serial),
                pid: r.pid(serial),
                on: false,
                off: true,
                kind: WarningKind::LongHandler { running_ms: 0 },
                hold: Duration::ZERO,
                clear_hold: Duration::ZERO,
            });
        }
    }
    out
}

/// A supervisor's restart figures at one sample.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SupervisorFigures {
    pub(crate) serial: u64,
    /// Restarts since it started (counter).
    pub(crate) restarts_total: u64,
    /// Its restart intensity: at most this many...
    pub(crate) max_restarts: u32,
    /// ...within this period.
    pub(crate) period: Duration,
}

/// Each supervisor's restart counter over its period: (ms, counter).
#[derive(Debug, Default)]
pub(crate) struct RestartHistory(HashMap<u64, VecDeque<(u64, u64)>>);

/// Restart storms: restarts within each supervisor's period, from the
/// history of its restart counter.
pub(crate) fn restart_storms(
    r: &Round<'_>,
    history: &mut RestartHistory,
    supervisors: &[SupervisorFigures],
) -> Vec<Observation> {
    let now = r.now_ms;
    history
        .0
        .retain(|serial, _| supervisors.iter().any(|s| s.serial == *serial));
    supervisors
        .iter()
        .map(|sup| {
            let period = sup.period.as_millis() as u64;
            let h = history.0.entry(sup.serial).or_default();
            h.push_back((now, sup.restarts_total));
            while h.len() > 1 && h.get(1).is_some_and(|(t, _)| now - t >= period) {
                h.pop_front();
            }
            let recent = sup.restarts_total - h.front().map_or(0, |(_, n)| *n);
            let max = u64::from(sup.max_restarts.max(1));
            Observation {
                subject: Subject::Supervisor(sup.serial),
                pid: r.pid(sup.serial),
                on: recent > 0 && recent * 3 >= max * 2,
                off: recent * 3 <= max,
                kind: WarningKind::RestartStorm {
                    restarts: recent as u32,
                    max_restarts: sup.max_restarts,
                },
                hold: Duration::ZERO,
                clear_hold: Duration::ZERO,
            }
        })
        .collect()
}

/// Dead letters per second since the last round (`last`: the node's
/// counter then). The first round only records the counter.
pub(crate) fn dead_letters(
    r: &Round<'_>,
    last: &mut Option<u64>,
    dead_letters_total: u64,
    elapsed: Duration,
) -> Option<Observation> {
    let before = last.replace(dead_letters_total)?;
    let per_s =
        (dead_letters_total.saturating_sub(before) as f64 / elapsed.as_secs_f64().max(1e-3)) as u64;
    Some(Observation {
        subject: Subject::DeadLetters,
        pid: None,
        on: per_s >= r.cfg.dead_letters_on_per_s,
        off: per_s < r.cfg.dead_letters_off_per_s,
        kind: WarningKind::DeadLetters { per_s },
        hold: r.cfg.hold,
        clear_hold: r.cfg.hold,
    })
}

/// Flapping links: `flaps` holds the link downs per peer within the
/// window; tracked peers with none are observed so they clear.
pub(crate) fn flapping_links(r: &Round<'_>, flaps: &[(String, u32)]) -> Vec<Observation> {
    let limit = r.cfg.flaps;
    let observe = |peer: &str, flaps: u32| Observation {
        subject: Subject::Link(peer.to_owned()),
        pid: None,
        on: flaps >= limit,
        off: flaps < limit.div_ceil(2),
        kind: WarningKind::FlappingLink {
            peer: peer.to_owned(),
            flaps,
        },
        hold: Duration::ZERO,
        clear_hold: Duration::ZERO,
    };
    let mut out: Vec<Observation> = flaps.iter().map(|(p, n)| observe(p, *n)).collect();
    for s in r.tracked {
        if let Subject::Link(peer) = s {
            if !flaps.iter().any(|(p, _)| p == peer) {
                out.push(observe(peer, 0));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
