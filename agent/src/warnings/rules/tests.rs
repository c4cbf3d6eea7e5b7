//! Each rule on its own, then through the engine where the hysteresis
//! matters.

use super::super::Warnings;
use super::*;
use crate::sampler::{LongHandler, test_row};

fn round<'a>(cfg: &'a WarningConfig, tracked: &'a [Subject], now_ms: u64) -> Round<'a> {
    Round {
        cfg,
        node: "a@host",
        creation: 7,
        tracked,
        now_ms,
    }
}

fn sample(rows: Vec<Row>) -> Sample {
    Sample {
        rows,
        behaviours: vec!["Worker"],
        ..Sample::default()
    }
}

fn on_off(o: &Observation) -> (bool, bool) {
    (o.on, o.off)
}

#[test]
fn a_growing_mailbox_past_the_threshold_is_observed_on() {
    let cfg = WarningConfig::default();
    let s = sample(vec![
        test_row(1, 2_000, 50, 0),
        test_row(2, 2_000, -50, 0),
        test_row(3, 600, 10, 0),
        test_row(4, 10, 0, 0),
    ]);
    let obs = mailboxes(&round(&cfg, &[], 0), &s);
    let by: HashMap<u64, (bool, bool)> = obs
        .iter()
        .map(|o| match o.subject {
            Subject::Mailbox(serial) => (serial, on_off(o)),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(by[&1], (true, false), "large and growing");
    assert_eq!(by[&2], (false, true), "large but draining");
    assert_eq!(by[&3], (false, false), "between the thresholds");
    assert!(!by.contains_key(&4), "small mailboxes are not observed");
    assert_eq!(
        obs[0].pid,
        Some(PidRef {
            node: "a@host".into(),
            serial: 1,
            creation: 7
        })
    );
}

#[test]
fn a_tracked_mailbox_below_the_clear_threshold_is_observed_off() {
    let cfg = WarningConfig::default();
    let s = sample(vec![test_row(1, 3, 0, 0)]);
    let tracked = [Subject::Mailbox(1), Subject::Mailbox(99)];
    let obs = mailboxes(&round(&cfg, &tracked, 0), &s);
    assert_eq!(obs.len(), 1, "the exited process 99 is not observed");
    assert_eq!(on_off(&obs[0]), (false, true));
}

#[test]
fn a_long_handler_is_on_while_it_runs_and_off_once_it_returns() {
    let cfg = WarningConfig::default();
    let mut s = sample(vec![test_row(5, 0, 0, 0)]);
    s.long_handlers = vec![LongHandler {
        serial: 5,
        running: Duration::from_secs(9),
    }];
    let obs = long_handlers(&round(&cfg, &[], 0), &s);
    assert_eq!(obs.len(), 1);
    assert_eq!(on_off(&obs[0]), (true, false));
    assert_eq!(obs[0].kind, WarningKind::LongHandler { running_ms: 9_000 });
    s.long_handlers.clear();
    let tracked = [Subject::Handler(5)];
    let obs = long_handlers(&round(&cfg, &tracked, 0), &s);
    assert_eq!(obs.len(), 1);
    assert_eq!(on_off(&obs[0]), (false, true));
}

#[test]
fn a_restart_storm_counts_restarts_within_the_period() {
    let cfg = WarningConfig::default();
    let mut history = RestartHistory::default();
    let sup = |restarts_total| SupervisorFigures {
        serial: 3,
        restarts_total,
        max_restarts: 3,
        period: Duration::from_secs(5),
    };
    let mut at = |now_ms, total| {
        let obs = restart_storms(&round(&cfg, &[], now_ms), &mut history, &[sup(total)]);
        assert_eq!(obs.len(), 1);
        match obs[0].kind {
            WarningKind::RestartStorm { restarts, .. } => (restarts, on_off(&obs[0])),
            _ => unreachable!(),
        }
    };
    assert_eq!(at(0, 10), (0, (false, true)), "old restarts do not count");
    assert_eq!(at(1_000, 11), (1, (false, true)));
    assert_eq!(at(2_000, 12), (2, (true, false)), "two thirds of 3");
    // Past the period the early restarts fall out of the window.
    assert_eq!(at(6_500, 12), (1, (false, true)));
    assert_eq!(at(20_000, 12), (0, (false, true)));
}

#[test]
fn a_supervisor_that_exits_is_forgotten() {
    let cfg = WarningConfig::default();
    let mut history = RestartHistory::default();
    let sup = SupervisorFigures {
        serial: 3,
        restarts_total: 5,
        max_restarts: 3,
        period: Duration::from_secs(5),
    };
    restart_storms(&round(&cfg, &[], 0), &mut history, &[sup]);
    assert!(restart_storms(&round(&cfg, &[], 1_000), &mut history, &[]).is_empty());
    assert!(history.0.is_empty());
}

#[test]
fn dead_letters_are_a_rate_over_the_elapsed_time() {
    let cfg = WarningConfig::default();
    let r = round(&cfg, &[], 0);
    let mut last = None;
    let second = Duration::from_secs(1);
    assert!(
        dead_letters(&r, &mut last, 1_000, second).is_none(),
        "the first round only records the counter"
    );
    let o = dead_letters(&r, &mut last, 1_500, second).unwrap();
    assert_eq!(o.kind, WarningKind::DeadLetters { per_s: 500 });
    assert_eq!(on_off(&o), (true, false));
    let o = dead_letters(&r, &mut last, 1_520, Duration::from_secs(4)).unwrap();
    assert_eq!(o.kind, WarningKind::DeadLetters { per_s: 5 });
    assert_eq!(on_off(&o), (false, true));
    let o = dead_letters(&r, &mut last, 1_570, second).unwrap();
    assert_eq!(on_off(&o), (false, false), "between the thresholds");
}

#[test]
fn dead_letters_raise_a_warning_after_the_hold_and_clear_after_it() {
    let cfg = WarningConfig::default();
    let mut engine = Warnings::default();
    let mut last = None;
    let mut total = 0;
    let mut t = 0;
    let mut step = |per_s: u64| {
        t += 1_000;
        total += per_s;
        let tracked = engine.subjects();
        let r = round(&cfg, &tracked, t);
        let obs = dead_letters(&r, &mut last, total, Duration::from_secs(1));
        engine.round(obs.into_iter().collect(), t);
        engine.active("a@host").len()
    };
    assert_eq!(step(0), 0);
    for _ in 0..3 {
        assert_eq!(step(1_000), 0);
    }
    assert_eq!(step(1_000), 1, "raised after the 3 s hold");
    assert_eq!(step(50), 1, "50/s is above the clear threshold");
    for _ in 0..3 {
        assert_eq!(step(0), 1);
    }
    assert_eq!(step(0), 0, "cleared after the hold");
}

#[test]
fn a_link_flapping_past_the_limit_is_on_and_clears_below_half() {
    let cfg = WarningConfig::default();
    let flaps = [("b@host".to_owned(), 3), ("c@host".to_owned(), 1)];
    let obs = flapping_links(&round(&cfg, &[], 0), &flaps);
    assert_eq!(obs.len(), 2);
    assert_eq!(on_off(&obs[0]), (true, false));
    assert_eq!(
        obs[0].kind,
        WarningKind::FlappingLink {
            peer: "b@host".into(),
            flaps: 3
        }
    );
    assert_eq!(on_off(&obs[1]), (false, true), "1 is below half of 3");
    // A tracked peer with no downs left in the window is observed, so it
    // clears.
    let tracked = [Subject::Link("b@host".into())];
    let obs = flapping_links(&round(&cfg, &tracked, 0), &[]);
    assert_eq!(obs.len(), 1);
    assert_eq!(on_off(&obs[0]), (false, true));
}

#[test]
fn a_flapping_link_warning_rises_at_once_and_clears_when_the_downs_age_out() {
    let cfg = WarningConfig::default();
    let mut engine = Warnings::default();
    let mut step = |t: u64, flaps: &[(String, u32)]| {
        let tracked = engine.subjects();
        let obs = flapping_links(&round(&cfg, &tracked, t), flaps);
        engine.round(obs, t);
        engine.active("a@host")
    };
    assert!(step(0, &[("b@host".into(), 2)]).is_empty());
    let active = step(1_000, &[("b@host".into(), 3)]);
    assert_eq!(active.len(), 1, "no hold for flapping links");
    assert_eq!(active[0].pid, None);
    assert_eq!(
        step(2_000, &[("b@host".into(), 2)]).len(),
        1,
        "2 is not below half"
    );
    assert!(step(60_000, &[]).is_empty());
}

#[test]
fn a_busy_process_whose_mailbox_grows_three_samples_in_a_row_is_saturated() {
    use crate::sampler::test_row_util;
    let cfg = WarningConfig::default();
    let mut streaks = SaturationStreaks::default();
    let mut engine = Warnings::default();
    let mut t = 0;
    let mut step = |engine: &mut Warnings, rows: Vec<Row>| {
        t += 1_000;
        let tracked = engine.subjects();
        let obs = saturated(&round(&cfg, &tracked, t), &mut streaks, &sample(rows));
        engine.round(obs, t);
        engine.active("a@host")
    };
    // 1: saturated and growing; 2: busy but its mailbox is not growing;
    // 3: growing but not busy enough.
    let rows = |n: u32| {
        vec![
            test_row_util(1, 10 * n, 10, 992),
            test_row_util(2, 30, 0, 1000),
            test_row_util(3, 10 * n, 10, 800),
        ]
    };
    assert!(
        step(&mut engine, rows(1)).is_empty(),
        "first growing sample"
    );
    assert!(step(&mut engine, rows(2)).is_empty(), "second");
    let third = step(&mut engine, rows(3));
    assert_eq!(third.len(), 1, "raised on the third growing sample");
    assert_eq!(third[0].pid.as_ref().map(|p| p.serial), Some(1));
    assert_eq!(
        third[0].kind,
        WarningKind::Saturated {
            util_permille: 992,
            len: 30,
            growth_per_s: 10
        }
    );
    assert_eq!(super::super::per_process(&engine).get(&1), Some(&1));
    // A sample where it drains a little does not clear it at once...
    let draining = || vec![test_row_util(1, 25, -5, 992)];
    assert_eq!(step(&mut engine, draining()).len(), 1);
    assert_eq!(step(&mut engine, draining()).len(), 1);
    assert_eq!(step(&mut engine, draining()).len(), 1);
    // ...but draining for the hold time (3 s) does.
    assert!(step(&mut engine, draining()).is_empty());
}

#[test]
fn a_growth_streak_broken_by_one_sample_starts_again() {
    use crate::sampler::test_row_util;
    let cfg = WarningConfig::default();
    let mut streaks = SaturationStreaks::default();
    let on = |streaks: &mut SaturationStreaks, growth: i32| {
        let obs = saturated(
            &round(&cfg, &[], 0),
            streaks,
            &sample(vec![test_row_util(1, 100, growth, 952)]),
        );
        obs.first().map(|o| o.on)
    };
    assert_eq!(on(&mut streaks, 5), Some(false));
    assert_eq!(on(&mut streaks, 5), Some(false));
    assert_eq!(on(&mut streaks, 0), None, "not growing: not observed");
    assert_eq!(on(&mut streaks, 5), Some(false));
    assert_eq!(on(&mut streaks, 5), Some(false));
    assert_eq!(on(&mut streaks, 5), Some(true));
}
