//! Result lines: JSON objects or aligned text, with the median of repeated
//! runs.

use serde_json::{Map, Value};

/// One measured result: a scenario, its parameters and its figures.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) scenario: &'static str,
    /// Parameters that identify the result (sizes); equal across runs.
    pub(crate) params: Vec<(&'static str, Value)>,
    /// Figures; the first one is the headline used to pick the median run.
    pub(crate) figures: Vec<(&'static str, f64)>,
}

pub(crate) struct Out {
    pub(crate) json: bool,
    /// The runtime measured, as result lines name it.
    pub(crate) runtime: &'static str,
}

impl Out {
    /// Prints the median run of each result (by its headline figure), with
    /// the headline of every run.
    pub(crate) fn report(&self, runs: &[Vec<Sample>]) {
        let Some(first) = runs.first() else { return };
        for i in 0..first.len() {
            let mut these: Vec<&Sample> = runs.iter().map(|r| &r[i]).collect();
            these.sort_by(|a, b| a.figures[0].1.total_cmp(&b.figures[0].1));
            let median = these[these.len() / 2];
            let all: Vec<f64> = runs.iter().map(|r| r[i].figures[0].1).collect();
            self.print(median, &all);
        }
    }

    fn print(&self, s: &Sample, all: &[f64]) {
        if self.json {
            let mut m = Map::new();
            m.insert("scenario".into(), s.scenario.into());
            m.insert("runtime".into(), self.runtime.into());
            for (k, v) in &s.params {
                m.insert((*k).into(), v.clone());
            }
            for (k, v) in &s.figures {
                m.insert((*k).into(), round(*v).into());
            }
            m.insert("runs".into(), all.len().into());
            m.insert(
                format!("{}_runs", s.figures[0].0),
                all.iter().map(|v| round(*v)).collect::<Vec<_>>().into(),
            );
            println!("{}", Value::Object(m));
        } else {
            let params: Vec<String> = s.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let figures: Vec<String> = s
                .figures
                .iter()
                .map(|(k, v)| format!("{k}={}", round(*v)))
                .collect();
            let runs: Vec<String> = all.iter().map(|v| round(*v).to_string()).collect();
            println!(
                "{:<13} {:<28} {}   (runs: {})",
                s.scenario,
                params.join(" "),
                figures.join("  "),
                runs.join(", ")
            );
        }
    }
}

/// A histogram for round-trip times in nanoseconds (1 ns to 60 s).
pub(crate) fn rtt_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

/// Times `n` sequential calls of `call(i)` (after `n / 10` to warm the
/// path up), each checked to echo its argument.
pub(crate) async fn time_calls<F, Fut>(n: u64, mut call: F) -> hdrhistogram::Histogram<u64>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    for i in 0..n / 10 {
        assert_eq!(call(i).await, i);
    }
    let mut h = rtt_histogram();
    for i in 0..n {
        let t = std::time::Instant::now();
        let r = call(i).await;
        h.record(t.elapsed().as_nanos() as u64).expect("in range");
        assert_eq!(r, i);
    }
    h
}

/// The percentiles of a round-trip histogram (in ns) as a result, in µs.
pub(crate) fn rtt_sample(
    scenario: &'static str,
    calls: u64,
    h: &hdrhistogram::Histogram<u64>,
) -> Sample {
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Sample {
        scenario,
        params: vec![("calls", calls.into())],
        figures: vec![
            ("p99_us", us(0.99)),
            ("p50_us", us(0.5)),
            ("p999_us", us(0.999)),
            ("max_us", h.max() as f64 / 1000.0),
        ],
    }
}

/// Rounds to 4 significant digits, enough for any figure here.
fn round(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let digits = 4 - v.abs().log10().ceil() as i32;
    let f = 10f64.powi(digits);
    (v * f).round() / f
}
