//! Rates from monotonic counters: the agents send totals, and the view
//! derives per-second figures from two overviews, so a missed refresh
//! loses nothing (the next difference covers both intervals).

use super::HISTORY;
use clustertop_proto::{ClusterOverview, HistogramKey, MetricsSnapshot, NodeStatus, NodeSummary};
use std::collections::{HashMap, HashSet, VecDeque};

/// A bounded series of samples, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Series(VecDeque<f64>);

impl Series {
    pub(crate) fn push(&mut self, v: f64) {
        if self.0.len() == HISTORY {
            self.0.pop_front();
        }
        self.0.push_back(v);
    }

    /// The last `n` samples as whole numbers, newest first: for a
    /// sparkline drawn right to left, so the newest sits at the right edge
    /// whatever the width.
    pub(crate) fn recent(&self, n: usize) -> Vec<u64> {
        self.0
            .iter()
            .rev()
            .take(n)
            .map(|v| v.max(0.0).round() as u64)
            .collect()
    }

    /// Samples held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The largest of the last `n` samples.
    pub(crate) fn recent_max(&self, n: usize) -> f64 {
        self.0.iter().rev().take(n).copied().fold(0.0, f64::max)
    }

    pub(crate) fn last(&self) -> Option<f64> {
        self.0.back().copied()
    }

    pub(crate) fn max(&self) -> f64 {
        self.0.iter().copied().fold(0.0, f64::max)
    }

    /// `(index, value)` points, for charts.
    pub(crate) fn points(&self) -> Vec<(f64, f64)> {
        self.0
            .iter()
            .enumerate()
            .map(|(i, v)| (i as f64, *v))
            .collect()
    }
}

/// Per-second figures of one node.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Rate {
    pub(crate) in_per_s: f64,
    pub(crate) out_per_s: f64,
    /// Share of the node's CPUs used, in percent.
    pub(crate) cpu_pct: f64,
    pub(crate) in_series: Series,
}

/// Rates of every node and of the cluster.
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeRates {
    prev: HashMap<String, NodeSummary>,
    pub(crate) nodes: HashMap<String, Rate>,
    /// Nodes with a new rate since the last cluster point.
    fresh: HashSet<String>,
    /// Messages received per second, cluster-wide: one point each time
    /// every node that is up has a new sample, never a partial sum.
    pub(crate) cluster: Series,
    /// Handling time p50 and p99 (µs), cluster-wide, one per metrics
    /// refresh.
    pub(crate) p50: Series,
    pub(crate) p99: Series,
}

impl NodeRates {
    /// Takes a new overview: rates for every node that is up in both.
    ///
    /// Agents sample on their own clocks, so an overview may carry a
    /// node's previous sample again: that node has no new rate yet. A
    /// cluster point is the sum of every up node's rate, drawn only once
    /// each of them has a new one since the last point.
    pub(crate) fn update(&mut self, o: &ClusterOverview) {
        let mut complete = true;
        for n in &o.nodes {
            // An agent with no sample yet reads as time 0: not a reading.
            if n.status != NodeStatus::Up || n.sampled_at_unix_ms == 0 {
                self.nodes.remove(&n.name);
                self.prev.remove(&n.name);
                self.fresh.remove(&n.name);
                continue;
            }
            if let Some(p) = self.prev.get(&n.name) {
                let dt_ms = n.sampled_at_unix_ms.saturating_sub(p.sampled_at_unix_ms);
                // A restarted node's counters start again: no rate from it.
                let restarted = n.uptime_ms < p.uptime_ms;
                if dt_ms > 0 && !restarted {
                    let secs = dt_ms as f64 / 1000.0;
                    let per_s = |now: u64, before: u64| now.saturating_sub(before) as f64 / secs;
                    let r = self.nodes.entry(n.name.clone()).or_default();
                    r.in_per_s = per_s(n.messages_in_total, p.messages_in_total);
                    r.out_per_s = per_s(n.messages_out_total, p.messages_out_total);
                    let cpu_us = n.cpu_time_us_total.saturating_sub(p.cpu_time_us_total) as f64;
                    r.cpu_pct = cpu_us / (secs * 1e6 * f64::from(n.cpus.max(1))) * 100.0;
                    r.in_series.push(r.in_per_s);
                    self.fresh.insert(n.name.clone());
                }
            }
            self.prev.insert(n.name.clone(), n.clone());
            complete &= self.fresh.contains(&n.name);
        }
        // Nodes gone from the overview altogether.
        self.nodes
            .retain(|name, _| o.nodes.iter().any(|n| &n.name == name));
        if complete && !self.fresh.is_empty() {
            let total = self.nodes.values().map(|r| r.in_per_s).sum();
            self.cluster.push(total);
            self.fresh.clear();
        }
    }

    /// Takes a metrics snapshot: the count-weighted mean of the
    /// behaviours' p50s and the largest behaviour's p99, of handling times
    /// over the last 10 s (what the chart's title says they are).
    pub(crate) fn update_latency(&mut self, m: &MetricsSnapshot) {
        let handling: Vec<_> = m
            .histograms
            .iter()
            .filter(|h| matches!(h.key, HistogramKey::HandlingTime { .. }))
            .filter(|h| h.last_10s.count > 0)
            .collect();
        let count: u64 = handling.iter().map(|h| h.last_10s.count).sum();
        if count == 0 {
            return;
        }
        let p50 = handling
            .iter()
            .map(|h| h.last_10s.p50_us as f64 * h.last_10s.count as f64)
            .sum::<f64>()
            / count as f64;
        let p99 = handling
            .iter()
            .map(|h| h.last_10s.p99_us)
            .max()
            .unwrap_or(0);
        self.p50.push(p50);
        self.p99.push(p99 as f64);
    }
}
