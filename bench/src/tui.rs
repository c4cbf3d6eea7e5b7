//! The `clustertop` view: time to draw a frame of each view for a cluster
//! of a million processes (synthetic snapshots, as the view holds them:
//! one page plus the overview), and what the view holds after many
//! refreshes.

use crate::report::Sample;
use clustertop_tui::bench::{Synthetic, VIEWS};
use serde_json::json;

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Frame times per view at 120×40 and 200×60, a refresh every 10 frames.
pub(crate) fn render(quick: bool) -> Vec<Sample> {
    let frames = if quick { 100 } else { 1_000 };
    let processes = 1_000_000;
    let mut out = Vec::new();
    for (w, h) in [(120u16, 40u16), (200, 60)] {
        let mut s = Synthetic::new(10, processes);
        for (v, name) in VIEWS.iter().enumerate() {
            for _ in 0..10 {
                s.render(v, w, h);
            }
            let mut times: Vec<f64> = (0..frames)
                .map(|i| {
                    if i % 10 == 0 {
                        s.refresh();
                    }
                    s.render(v, w, h).as_secs_f64() * 1e6
                })
                .collect();
            times.sort_by(f64::total_cmp);
            out.push(Sample {
                scenario: "tui-render",
                params: vec![
                    ("view", json!(name)),
                    ("size", json!(format!("{w}x{h}"))),
                    ("processes", json!(processes)),
                ],
                figures: vec![
                    ("p50_us", percentile(&times, 0.5)),
                    ("p99_us", percentile(&times, 0.99)),
                    ("max_us", percentile(&times, 1.0)),
                ],
            });
        }
    }
    // Memory: what the view holds does not grow with refreshes.
    let mut s = Synthetic::new(10, processes);
    let refreshes = if quick { 1_000 } else { 20_000 };
    for _ in 0..refreshes {
        s.refresh();
    }
    out.push(Sample {
        scenario: "tui-held",
        params: vec![("refreshes", json!(refreshes))],
        figures: vec![("rows_held", s.held() as f64)],
    });
    out
}
