//! Each node's telemetry (attach protocol 4): where it exports, for the
//! Nodes view, and the `metrics` series and telemetry
//! events its code records, for the Metrics view.
//!
//! Cluster-wide, one line per series name and label set: counters add
//! their rates, gauges add their values, histograms merge their windows
//! bucket by bucket before p50 and p99 are read (never an average of
//! per-node quantiles). Narrowed to one node, its own figures.

use clustertop_proto::{NodeTelemetry, SeriesValue, Telemetry};
use std::collections::BTreeMap;

/// The last telemetry answer, or why there is none.
#[derive(Debug, Default)]
pub(crate) struct TelemetryState {
    pub(crate) last: Option<Telemetry>,
    /// The entry node's agent is too old to answer.
    pub(crate) unavailable: Option<String>,
}

/// One line of the series table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeriesLine {
    /// `name{label="value",…}`, or `event a.b.c`.
    pub(crate) name: String,
    /// What kind: counter, gauge, histogram, event.
    pub(crate) kind: &'static str,
    /// The figure, formatted: `12.5/s`, `42`, `p50 0.0215 p99 0.5`.
    pub(crate) value: String,
    /// Nodes that reported it.
    pub(crate) nodes: usize,
}

/// What one series adds up to across nodes.
#[derive(Debug, Default)]
struct Sum {
    kind: &'static str,
    nodes: usize,
    per_s: f64,
    total: u64,
    value: f64,
    windows: Vec<clustertop_proto::Bucket>,
}

impl TelemetryState {
    pub(crate) fn update(&mut self, t: Telemetry) {
        self.last = Some(t);
        self.unavailable = None;
    }

    /// The nodes the table covers: `node`, else every node that answered.
    fn scope<'a>(&'a self, node: Option<&'a str>) -> impl Iterator<Item = &'a NodeTelemetry> {
        self.last
            .iter()
            .flat_map(|t| &t.nodes)
            .filter(move |n| node.is_none_or(|want| n.node == want))
    }

    /// The series table: series then events, by name, those whose name
    /// contains `name` (case-insensitive) when given.
    pub(crate) fn lines(&self, node: Option<&str>, name: Option<&str>) -> Vec<SeriesLine> {
        let wanted = name.map(str::to_lowercase);
        let keep = |n: &str| {
            wanted
                .as_deref()
                .is_none_or(|w| n.to_lowercase().contains(w))
        };
        let mut sums: BTreeMap<String, Sum> = BTreeMap::new();
        let mut events: BTreeMap<String, Sum> = BTreeMap::new();
        for n in self.scope(node) {
            for s in n.series.iter().filter(|s| keep(&s.name)) {
                let sum = sums.entry(series_name(&s.name, &s.labels)).or_default();
                sum.nodes += 1;
                match &s.value {
                    SeriesValue::Counter { total, per_s } => {
                        sum.kind = "counter";
                        sum.total += total;
                        sum.per_s += per_s;
                    }
                    SeriesValue::Gauge { value } => {
                        sum.kind = "gauge";
                        sum.value += value;
                    }
                    SeriesValue::Histogram { count, window, .. } => {
                        sum.kind = "histogram";
                        sum.total += count;
                        sum.windows = clustertop_proto::merge_buckets([&sum.windows[..], window]);
                    }
                }
            }
            for e in n.events.iter().filter(|e| keep(&e.name)) {
                let sum = events.entry(format!("event {}", e.name)).or_default();
                sum.kind = "event";
                sum.nodes += 1;
                sum.total += e.total;
                sum.per_s += e.per_s;
            }
        }
        sums.into_iter()
            .chain(events)
            .map(|(name, s)| SeriesLine {
                value: match s.kind {
                    "gauge" => figure(s.value),
                    "histogram" => {
                        let q = |q| {
                            clustertop_proto::quantile(&s.windows, q).map_or("–".into(), figure)
                        };
                        format!("p50 {} p99 {}", q(0.5), q(0.99))
                    }
                    _ => format!("{}/s", figure(s.per_s)),
                },
                name,
                kind: s.kind,
                nodes: s.nodes,
            })
            .collect()
    }

    /// Series held by no node because a node's store was full, summed.
    pub(crate) fn dropped(&self, node: Option<&str>) -> u64 {
        self.scope(node).map(|n| n.series_dropped).sum()
    }
}

/// `name{k="v",…}` as Prometheus writes a series.
pub(crate) fn series_name(name: &str, labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return name.to_owned();
    }
    // A node is named as on the rest of the screen, without its host.
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| match k.as_str() {
            "node" => format!("{k}=\"{}\"", crate::format::short_node(v)),
            _ => format!("{k}=\"{v}\""),
        })
        .collect();
    format!("{name}{{{}}}", inner.join(","))
}

/// A number with about three significant digits, without an exponent
/// for everyday magnitudes: `0.0215`, `12.5`, `1,234`, `2.50M`.
pub(crate) fn figure(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1_000.0 {
        crate::format::count(v.round() as u64)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 1e-4 {
        // Three significant digits after the leading zeros.
        let digits = (-a.log10().floor()) as usize + 2;
        format!("{v:.digits$}")
    } else {
        format!("{v:.2e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clustertop_proto::{Bucket, Endpoint, EndpointKind, EventCount, Series};

    fn node(name: &str, rate: f64, window: Vec<Bucket>) -> NodeTelemetry {
        NodeTelemetry {
            node: name.into(),
            window_ms: 10_000,
            endpoints: vec![Endpoint {
                kind: EndpointKind::Prometheus,
                url: format!("http://127.0.0.1:95{}/metrics", name.len()),
            }],
            series: vec![
                Series {
                    name: "orders_total".into(),
                    labels: vec![("shop".into(), "north".into())],
                    value: SeriesValue::Counter {
                        total: 100,
                        per_s: rate,
                    },
                },
                Series {
                    name: "queue_depth".into(),
                    labels: vec![],
                    value: SeriesValue::Gauge { value: 3.0 },
                },
                Series {
                    name: "order_seconds".into(),
                    labels: vec![],
                    value: SeriesValue::Histogram {
                        count: 10,
                        sum: 1.0,
                        window,
                    },
                },
            ],
            events: vec![EventCount {
                name: "shop.order.placed".into(),
                total: 7,
                per_s: 0.5,
            }],
            ..NodeTelemetry::default()
        }
    }

    fn bucket(lower: f64, upper: f64, count: u64) -> Bucket {
        Bucket {
            lower,
            upper,
            count,
        }
    }

    fn state() -> TelemetryState {
        let mut s = TelemetryState::default();
        s.update(Telemetry {
            nodes: vec![
                node("a@h", 2.5, vec![bucket(0.01, 0.02, 98)]),
                node("bb@h", 10.0, vec![bucket(0.5, 0.6, 2)]),
            ],
            missing: vec![],
        });
        s
    }

    #[test]
    fn cluster_lines_add_rates_and_merge_histograms() {
        let lines = state().lines(None, None);
        let find = |n: &str| lines.iter().find(|l| l.name == n).unwrap().clone();
        assert_eq!(find("orders_total{shop=\"north\"}").value, "12.5/s");
        assert_eq!(find("orders_total{shop=\"north\"}").nodes, 2);
        assert_eq!(find("queue_depth").value, "6.00");
        // 98 fast values and 2 slow ones: p99 is in the slow bucket only
        // because the windows were merged, not averaged.
        let h = find("order_seconds");
        assert!(h.value.starts_with("p50 0.01"), "{}", h.value);
        assert!(h.value.contains("p99 0.5"), "{}", h.value);
        assert_eq!(find("event shop.order.placed").value, "1.00/s");
    }

    #[test]
    fn one_node_and_a_name_narrow_the_table() {
        let s = state();
        let lines = s.lines(Some("bb@h"), Some("ORDERS"));
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0].value, "10.0/s");
    }

    #[test]
    fn figures_read_naturally() {
        assert_eq!(figure(0.021_53), "0.0215");
        assert_eq!(figure(0.5), "0.500");
        assert_eq!(figure(12.46), "12.5");
        assert_eq!(figure(1234.0), "1,234");
        assert_eq!(figure(2_500_000.0), "2.50M");
        assert_eq!(figure(0.0), "0");
    }
}
