//! Synthetic view state for benchmarks: a large cluster as the view holds
//! it (the overview, one page of processes, the log tail, the histories),
//! refreshed and drawn as the interactive loop does, without a network or
//! a terminal.
//!
//! However many processes the cluster has, the view holds one page of them
//! plus the top list of the overview: that is what bounds its memory.

use crate::state::{State, Tab};
use clustertop_proto::{
    ClusterOverview, Histogram, HistogramKey, LinkStats, LogLevel, LogRecord, MetricsSnapshot,
    NodeStatus, NodeSummary, Percentiles, PidRef, ProcessPage, ProcessRow, ProcessStatus, Warning,
    WarningKind,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::{Duration, Instant};

/// The views a benchmark can draw, in tab order.
pub const VIEWS: [&str; 6] = ["nodes", "processes", "tree", "metrics", "logs", "warnings"];

/// A view state for a synthetic cluster.
#[derive(Debug)]
pub struct Synthetic {
    state: State,
    nodes: usize,
    processes: u64,
    refreshes: u64,
}

impl Synthetic {
    /// A cluster of `nodes` nodes and `processes` processes, after one
    /// refresh.
    pub fn new(nodes: usize, processes: u64) -> Synthetic {
        let mut s = Synthetic {
            state: State::new("127.0.0.1:4370", 1000),
            nodes: nodes.max(1),
            processes,
            refreshes: 0,
        };
        s.refresh();
        s
    }

    /// One refresh, as the connection task delivers it: a new overview, a
    /// new page of processes (as many rows as the screen shows), metrics
    /// and a chunk of 50 log records.
    pub fn refresh(&mut self) {
        self.refreshes += 1;
        let t = self.refreshes;
        let at = 1_790_000_000_000 + t * 1000;
        let names: Vec<String> = (0..self.nodes).map(|i| format!("node-{i}@host")).collect();
        let per_node = self.processes / self.nodes as u64;
        let overview = ClusterOverview {
            entry: names[0].clone(),
            nodes: names
                .iter()
                .enumerate()
                .map(|(i, n)| NodeSummary {
                    name: n.clone(),
                    addr: Some(format!("127.0.0.1:{}", 4370 + i)),
                    status: if i == 1 {
                        NodeStatus::Down {
                            last_seen_unix_ms: Some(at - 5_000),
                        }
                    } else {
                        NodeStatus::Up
                    },
                    sampled_at_unix_ms: at,
                    uptime_ms: 3_600_000 + t * 1000,
                    processes: per_node,
                    messages_in_total: t * 1_000_000 + i as u64,
                    messages_out_total: t * 990_000,
                    messages_in_per_s: 1_000_000,
                    messages_out_per_s: 990_000,
                    cpu_permille: 500,
                    rss_bytes: per_node * 1_100,
                    cpu_time_us_total: t * 1_500_000,
                    cpus: 8,
                    dead_letters_total: t,
                    crashes_total: t / 10,
                    version: "0.1.0".into(),
                    beam: None,
                })
                .collect(),
            links: names[1..]
                .iter()
                .map(|n| LinkStats {
                    peer: n.clone(),
                    bytes_in_total: t << 20,
                    bytes_out_total: t << 20,
                    frames_in_total: t * 1000,
                    frames_out_total: t * 1000,
                    queued_bytes: 0,
                    heartbeat_rtt_us: Some(120),
                    up_for_ms: 3_600_000,
                })
                .collect(),
            warnings: (0..5)
                .map(|i| Warning {
                    node: names[i % names.len()].clone(),
                    pid: Some(pid(&names[i % names.len()], i as u64)),
                    name: Some(format!("worker_{i}")),
                    behaviour: Some("Worker".into()),
                    kind: WarningKind::MailboxGrowing {
                        len: 10_000 + t,
                        growth_per_s: 500,
                    },
                    since_unix_ms: at - 30_000,
                })
                .collect(),
            top_processes: rows(&names, 20, t),
        };
        self.state.on_overview(overview);
        let page_rows = self.state.processes.page_rows as usize;
        self.state.on_processes(ProcessPage {
            rows: rows(&names, page_rows, t),
            total_matching: self.processes,
            sampled_at_unix_ms: at,
        });
        self.state.on_metrics(metrics(&names, at));
        self.state.on_logs(logs(&names, t), 0);
    }

    /// Draws view `view` (an index into [`VIEWS`]) on a `width`×`height`
    /// screen; returns how long the frame took.
    pub fn render(&mut self, view: usize, width: u16, height: u16) -> Duration {
        self.state.tab = Tab::ALL[view % Tab::ALL.len()];
        self.state.processes.page_rows = crate::view::process_rows(height);
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
        let start = Instant::now();
        terminal
            .draw(|f| crate::view::render(f, &self.state))
            .expect("draws");
        start.elapsed()
    }

    /// Rows held by the view (process rows of the page and the top list,
    /// and log records), which stays bounded whatever the cluster's size.
    pub fn held(&self) -> usize {
        self.state
            .processes
            .page
            .as_ref()
            .map_or(0, |p| p.rows.len())
            + self
                .state
                .overview
                .as_ref()
                .map_or(0, |o| o.top_processes.len())
            + self.state.logs.records.len()
    }
}

fn pid(node: &str, serial: u64) -> PidRef {
    PidRef {
        node: node.to_owned(),
        serial,
        creation: 1,
    }
}

fn rows(names: &[String], n: usize, t: u64) -> Vec<ProcessRow> {
    (0..n as u64)
        .map(|i| {
            let node = &names[i as usize % names.len()];
            ProcessRow {
                pid: pid(node, 1_000 + i),
                name: (i % 3 == 0).then(|| format!("worker_{i}")),
                behaviour: "Worker".into(),
                system: false,
                status: ProcessStatus::Waiting,
                figures: clustertop_proto::ProcessFigures {
                    mailbox_len: 100_000 / (i + 1) + t,
                    mailbox_growth_per_s: 1_000 / (i as i64 + 1),
                    oldest_message_age_us: Some(1_000_000 / (i + 1)),
                    handled_per_s: 9_000,
                    util_permille: 900,
                    cpu_permille: 250,
                    polls_per_s: 9_000,
                    memory_bytes: 2_000 + 48 * (100_000 / (i + 1) + t),
                    warnings: u32::from(i < 5),
                    rates_known: true,
                },
                beam: None,
            }
        })
        .collect()
}

fn metrics(names: &[String], at: u64) -> MetricsSnapshot {
    let p = Percentiles {
        count: 10_000,
        p50_us: 120,
        p90_us: 400,
        p99_us: 2_000,
        max_us: 9_000,
    };
    MetricsSnapshot {
        sampled_at_unix_ms: at,
        histograms: names
            .iter()
            .map(|n| Histogram {
                key: HistogramKey::HandlingTime {
                    node: n.clone(),
                    behaviour: "Worker".into(),
                },
                last_10s: p,
                last_60s: p,
                buckets: (0..12).map(|i| (1u64 << i, 100 * (i + 1))).collect(),
            })
            .collect(),
    }
}

fn logs(names: &[String], t: u64) -> Vec<LogRecord> {
    (0..50)
        .map(|i| LogRecord {
            at_unix_us: (1_790_000_000_000 + t * 1000 + i) * 1000,
            node: names[i as usize % names.len()].clone(),
            level: if i % 10 == 0 {
                LogLevel::Warn
            } else {
                LogLevel::Info
            },
            target: "bench".into(),
            pid: Some(pid(&names[0], i)),
            process: Some("worker".into()),
            message: format!("processed item {i} of refresh {t}"),
            fields: vec![("item".into(), i.to_string())],
            trace_id: None,
        })
        .collect()
}
