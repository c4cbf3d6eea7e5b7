//! What a node's agent answers about its telemetry: where the node exports
//! (from `clustertop_otel::exports`), the `metrics` series its code
//! records (read from the store that the same recorder as the Prometheus
//! endpoint feeds: `clustertop_otel::series`), and its telemetry events by
//! name.
//!
//! Rates and histogram windows cover the last [`WINDOW`] (a little more:
//! the oldest reading kept is the newest one at least that old).
//!
//! # Bounds and cost
//! The store holds at most `clustertop_otel::series::MAX_SERIES` series
//! and `MAX_HISTOGRAMS` histograms, and event counts at most
//! `MAX_EVENT_NAMES` names. Each sample round copies every value once
//! (one atomic load per counter or gauge, a scan of 513 buckets per
//! histogram) into a reading; the agent keeps at most [`MAX_READINGS`]
//! readings: with every slot full, about 70 KiB each (non-empty
//! histogram buckets only). When nothing is recorded, a round reads two
//! empty tables. Names and label texts are cut to [`MAX_TEXT`] bytes in
//! answers.

use clustertop_otel::series::{self, Reading, SeriesInfo, SeriesKind};
use clustertop_proto::time::unix_ms;
use clustertop_proto::{
    Bucket, Endpoint, EndpointKind, EventCount, NodeTelemetry, PidRef, ProcessTraces, Series,
    SeriesValue, TraceRow,
};
use std::collections::VecDeque;
use std::time::Duration;

/// The window rates and histogram windows cover.
pub(crate) const WINDOW: Duration = Duration::from_secs(10);
/// The most readings kept, whatever the sample interval.
pub(crate) const MAX_READINGS: usize = 32;
/// The longest name or label text in an answer, bytes.
pub(crate) const MAX_TEXT: usize = 200;

/// One round's values.
#[derive(Debug)]
struct Snapshot {
    at_ms: u64,
    series: Vec<Reading>,
    events: Vec<(String, u64)>,
}

/// The readings of the last window, and the series' descriptions.
#[derive(Debug, Default)]
pub(crate) struct Readings {
    infos: Vec<SeriesInfo>,
    ring: VecDeque<Snapshot>,
}

impl Readings {
    /// Reads the store and the event counts (once per sample round).
    pub(crate) fn sample(&mut self, now_ms: u64) {
        let store = series::store();
        let (events, _) = clustertop_otel::telemetry::event_counts();
        if store.is_empty() && events.is_empty() {
            return;
        }
        if self.infos.len() < store.len() {
            let more = store.describe(self.infos.len());
            self.infos.extend(more);
        }
        // Reuse the oldest reading's buffer once it falls out.
        let mut buf = Vec::new();
        while let Some(oldest) = self.ring.get(1) {
            let full = self.ring.len() >= MAX_READINGS;
            if full || now_ms.saturating_sub(oldest.at_ms) >= WINDOW.as_millis() as u64 {
                buf = self.ring.pop_front().map(|s| s.series).unwrap_or_default();
            } else {
                break;
            }
        }
        store.read(&mut buf);
        // A series registered between `describe` and `read` has no
        // description yet: it waits for the next round.
        buf.truncate(self.infos.len());
        self.ring.push_back(Snapshot {
            at_ms: now_ms,
            series: buf,
            events,
        });
    }

    /// This node's answer (read now when no round has read yet, so an
    /// answer right after start has the series already).
    pub(crate) fn answer(&mut self, node: &str) -> NodeTelemetry {
        if self.ring.is_empty() {
            self.sample(unix_ms());
        }
        let exports = clustertop_otel::exports();
        let mut endpoints = Vec::new();
        if let Some(addr) = exports.prometheus {
            endpoints.push(Endpoint {
                kind: EndpointKind::Prometheus,
                url: format!("http://{addr}/metrics"),
            });
        }
        for (kind, url) in [
            (EndpointKind::OtlpTraces, exports.otlp_traces),
            (EndpointKind::OtlpMetrics, exports.otlp_metrics),
            (EndpointKind::OtlpLogs, exports.otlp_logs),
        ] {
            if let Some(url) = url {
                endpoints.push(Endpoint { kind, url });
            }
        }
        let (_, events_left_out) = clustertop_otel::telemetry::event_counts();
        let mut out = NodeTelemetry {
            node: node.to_owned(),
            sampled_at_unix_ms: unix_ms(),
            endpoints,
            series_dropped: series::store().dropped(),
            events_left_out,
            ..NodeTelemetry::default()
        };
        let (Some(newest), Some(base)) = (self.ring.back(), self.ring.front()) else {
            return out;
        };
        out.sampled_at_unix_ms = newest.at_ms;
        out.window_ms = newest.at_ms - base.at_ms;
        let secs = out.window_ms as f64 / 1e3;
        let per_s = |now: u64, then: u64| {
            if secs > 0.0 {
                now.saturating_sub(then) as f64 / secs
            } else {
                0.0
            }
        };
        out.series = newest
            .series
            .iter()
            .zip(&self.infos)
            .enumerate()
            .map(|(i, (reading, info))| Series {
                name: cut(&info.name),
                labels: info.labels.iter().map(|(k, v)| (cut(k), cut(v))).collect(),
                value: value(info.kind, reading, base.series.get(i), &per_s),
            })
            .collect();
        out.events = newest
            .events
            .iter()
            .map(|(name, total)| {
                let then = base
                    .events
                    .binary_search_by(|(n, _)| n.as_str().cmp(name))
                    .map_or(0, |i| base.events[i].1);
                EventCount {
                    name: cut(name),
                    total: *total,
                    per_s: per_s(*total, then),
                }
            })
            .collect();
        out
    }
}

/// A process's last traced handlings; `None` when `pid` is not of this
/// node (the process may have exited: its handlings are still there).
pub(crate) fn process_traces(
    node: &clustertop_runtime::Node,
    pid: &PidRef,
) -> Option<ProcessTraces> {
    if pid.node != node.name() || pid.creation != node.creation() {
        return None;
    }
    let id = node.introspect().local_process_id(pid.serial);
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let traces = node
        .introspect()
        .traced_handlings(id, ProcessTraces::MAX)
        .into_iter()
        .map(|h| TraceRow {
            trace_id: hex(&h.context.trace_id),
            span_id: hex(&h.context.span_id),
            handling_us: h.handling_ns / 1_000,
            from: h.from.map(|f| crate::sampler::pid_ref(node, f)),
            at_unix_ms: h.at_unix_ms,
        })
        .collect();
    Some(ProcessTraces { traces })
}

fn value(
    kind: SeriesKind,
    now: &Reading,
    then: Option<&Reading>,
    per_s: &dyn Fn(u64, u64) -> f64,
) -> SeriesValue {
    match (kind, now) {
        (_, Reading::Counter(total)) => {
            let base = match then {
                Some(Reading::Counter(t)) => *t,
                _ => 0,
            };
            SeriesValue::Counter {
                total: *total,
                per_s: per_s(*total, base),
            }
        }
        (_, Reading::Gauge(v)) => SeriesValue::Gauge { value: *v },
        (
            _,
            Reading::Histogram {
                count,
                sum,
                buckets,
            },
        ) => {
            let base: &[(u16, u64)] = match then {
                Some(Reading::Histogram { buckets, .. }) => buckets,
                _ => &[],
            };
            SeriesValue::Histogram {
                count: *count,
                sum: *sum,
                window: window(buckets, base),
            }
        }
    }
}

/// Bucket counts of `now` minus those of `then` (both ascending by index).
fn window(now: &[(u16, u64)], then: &[(u16, u64)]) -> Vec<Bucket> {
    let mut then = then.iter().peekable();
    now.iter()
        .filter_map(|&(i, n)| {
            while then.peek().is_some_and(|(j, _)| *j < i) {
                then.next();
            }
            let before = match then.peek() {
                Some(&&(j, m)) if j == i => m,
                _ => 0,
            };
            let count = n.saturating_sub(before);
            (count > 0).then(|| {
                let (lower, upper) = series::bucket_bounds(usize::from(i));
                Bucket {
                    lower,
                    upper,
                    count,
                }
            })
        })
        .collect()
}

/// `text` cut to [`MAX_TEXT`] bytes at a character boundary.
fn cut(text: &str) -> String {
    if text.len() <= MAX_TEXT {
        return text.to_owned();
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_the_difference_of_two_readings() {
        let now = [(3u16, 10u64), (5, 4), (9, 1)];
        let then = [(1u16, 2u64), (3, 7), (9, 1)];
        let w = window(&now, &then);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].count, 3);
        assert_eq!(w[1].count, 4);
        assert_eq!((w[1].lower, w[1].upper), series::bucket_bounds(5));
    }

    #[test]
    fn long_texts_are_cut_at_a_character_boundary() {
        let long = "é".repeat(150);
        let c = cut(&long);
        assert!(c.len() <= MAX_TEXT + '…'.len_utf8());
        assert!(c.ends_with('…'));
        assert_eq!(cut("short"), "short");
    }
}
