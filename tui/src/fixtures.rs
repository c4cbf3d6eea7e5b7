//! Fixture data for state tests and view snapshots: a three-node cluster
//! with one node down, a slow consumer with a warning, a supervision tree,
//! histograms and log records. Times are fixed so renders are stable.

use clustertop_proto::*;

pub(crate) const T0: u64 = 1_790_000_000_000;

pub(crate) fn pid(node: &str, serial: u64) -> PidRef {
    PidRef {
        node: node.to_owned(),
        serial,
        creation: 7,
    }
}

pub(crate) fn summary(name: &str, at: u64, msgs: u64, cpu_us: u64) -> NodeSummary {
    NodeSummary {
        name: name.to_owned(),
        addr: Some(format!(
            "127.0.0.1:{}",
            4370 + u16::from(name.as_bytes()[0] - b'a')
        )),
        status: NodeStatus::Up,
        sampled_at_unix_ms: at,
        uptime_ms: 7_980_000 + (at - T0),
        processes: 4_102,
        messages_in_total: msgs,
        messages_out_total: msgs - msgs / 50,
        messages_in_per_s: 600_000,
        messages_out_per_s: 588_000,
        cpu_permille: 710,
        rss_bytes: 212_000_000,
        cpu_time_us_total: cpu_us,
        cpus: 2,
        dead_letters_total: 3,
        crashes_total: 12,
        version: "0.1.0".into(),
        beam: None,
    }
}

pub(crate) fn row(node: &str, serial: u64, name: Option<&str>, behaviour: &str) -> ProcessRow {
    ProcessRow {
        pid: pid(node, serial),
        name: name.map(str::to_owned),
        behaviour: behaviour.to_owned(),
        system: false,
        status: ProcessStatus::Waiting,
        figures: ProcessFigures {
            memory_bytes: 1_024,
            rates_known: true,
            ..ProcessFigures::default()
        },
        beam: None,
    }
}

pub(crate) fn slow_consumer() -> ProcessRow {
    with_figures(
        ProcessRow {
            status: ProcessStatus::Running,
            ..row(
                "b@host",
                311,
                Some("ChatSystem.MessageStore"),
                "MessageStore",
            )
        },
        |f| {
            f.mailbox_len = 48_211;
            f.mailbox_growth_per_s = 1_200;
            f.oldest_message_age_us = Some(41_200_000);
            f.handled_per_s = 900;
            f.util_permille = 1000;
            f.cpu_permille = 42;
            f.polls_per_s = 910;
            f.memory_bytes = 5_200_000;
            f.warnings = 1;
        },
    )
}

pub(crate) fn rows() -> Vec<ProcessRow> {
    vec![
        slow_consumer(),
        with_figures(
            row("a@host", 88, Some("work_distributor"), "Distributor"),
            |f| {
                f.mailbox_len = 12;
                f.handled_per_s = 14_200;
                f.util_permille = 380;
                f.cpu_permille = 310;
                f.polls_per_s = 14_300;
                f.memory_bytes = 2_048;
                f.oldest_message_age_us = Some(2_000);
            },
        ),
        with_figures(row("a@host", 17, Some("counter"), "Counter"), |f| {
            f.handled_per_s = 5_100;
            f.util_permille = 40;
            f.cpu_permille = 40;
            f.polls_per_s = 5_100;
        }),
        row("b@host", 40, Some("room:lobby"), "ChatMessage"),
    ]
}

pub(crate) fn warnings() -> Vec<Warning> {
    vec![
        Warning {
            node: "b@host".into(),
            pid: Some(pid("b@host", 311)),
            name: Some("ChatSystem.MessageStore".into()),
            behaviour: Some("MessageStore".into()),
            kind: WarningKind::MailboxGrowing {
                len: 48_211,
                growth_per_s: 1_200,
            },
            since_unix_ms: T0 - 40_000,
        },
        Warning {
            node: "c@host".into(),
            pid: None,
            name: None,
            behaviour: None,
            kind: WarningKind::NodeDown,
            since_unix_ms: T0 - 12_000,
        },
    ]
}

/// An overview at `T0 + offset_ms`, with message totals growing 600k/s.
pub(crate) fn overview(offset_ms: u64) -> ClusterOverview {
    let at = T0 + offset_ms;
    let msgs = 1_000_000_000 + offset_ms * 600;
    let cpu = 5_000_000_000 + offset_ms * 1_420;
    ClusterOverview {
        entry: "a@host".into(),
        nodes: vec![
            summary("a@host", at, msgs, cpu),
            summary("b@host", at, msgs + 7, cpu / 2),
            NodeSummary {
                status: NodeStatus::Down {
                    last_seen_unix_ms: Some(T0 - 12_000),
                },
                processes: 0,
                uptime_ms: 0,
                ..summary("c@host", at, 0, 0)
            },
        ],
        links: vec![LinkStats {
            peer: "b@host".into(),
            bytes_in_total: 1 << 30,
            bytes_out_total: 1 << 29,
            frames_in_total: 9_000_000,
            frames_out_total: 8_000_000,
            queued_bytes: 0,
            heartbeat_rtt_us: Some(140),
            up_for_ms: 7_980_000,
        }],
        warnings: warnings(),
        top_processes: rows(),
    }
}

pub(crate) fn page() -> ProcessPage {
    ProcessPage {
        rows: rows(),
        total_matching: 4,
        sampled_at_unix_ms: T0,
    }
}

pub(crate) fn detail() -> ProcessDetail {
    ProcessDetail {
        row: slow_consumer(),
        totals: ProcessTotals {
            received_total: 9_200_000,
            handled_total: 9_100_000,
            sent_total: 120_000,
            cpu_us_total: 3_000_000,
            util_us_total: 3_600_000_000,
            polls_total: 9_150_000,
        },
        links: vec![pid("b@host", 300)],
        monitored_by: vec![pid("a@host", 88)],
        monitoring: vec![],
        supervisor_path: vec![pid("b@host", 300), pid("b@host", 2)],
        mailbox_head: vec![
            "ChatMessage { room: \"chat:lobby\", from: \"a@host\", text: \"message 12\" }".into(),
            "ChatMessage { room: \"chat:lobby\", from: \"c@host\", text: \"message 9\" }".into(),
        ],
        top_senders: vec![(pid("a@host", 40), 62), (pid("b@host", 90), 30)],
        handling_time: Some(Percentiles {
            count: 5_400,
            p50_us: 900,
            p90_us: 2_100,
            p99_us: 4_100,
            max_us: 9_800,
        }),
        spawned_at_unix_ms: T0 - 7_980_000,
        trap_exit: false,
        // Saturated: always inside a handler, here awaiting in one.
        activity: Some(Activity::Awaiting {
            handling_for_us: Some(3_200_000),
        }),
        names: vec![(pid("b@host", 300), "chat_sup".into())],
        beam: None,
    }
}

pub(crate) fn tree() -> SupervisionTree {
    let leaf = |serial, name: &str, behaviour: &str| TreeNode {
        pid: pid("a@host", serial),
        name: Some(name.to_owned()),
        behaviour: behaviour.to_owned(),
        supervisor: false,
        strategy: None,
        restarts: None,
        child_id: Some(name.to_owned()),
        last_exit: None,
        children: vec![],
    };
    let supervisor = |serial, name: &str, strategy: &str, recent, children| TreeNode {
        pid: pid("a@host", serial),
        name: Some(name.to_owned()),
        behaviour: "SupervisorServer".into(),
        supervisor: true,
        strategy: Some(strategy.to_owned()),
        restarts: Some(RestartIntensity {
            recent,
            max: 5,
            period_ms: 5_000,
            total: u64::from(recent) * 7,
        }),
        child_id: None,
        last_exit: None,
        children,
    };
    let flaky = TreeNode {
        last_exit: Some(ExitSummary {
            reason: "panic: the flaky worker crashed on purpose".into(),
            crashed: true,
            at_unix_ms: T0 - 3_000,
        }),
        ..leaf(31, "flaky_worker", "FlakyWorker")
    };
    let mut worker_sup = supervisor(30, "worker_sup", "one_for_one", 3, vec![flaky]);
    worker_sup.child_id = Some("worker_sup".into());
    SupervisionTree {
        node: "a@host".into(),
        roots: vec![supervisor(
            2,
            "app_sup",
            "one_for_all",
            0,
            vec![leaf(17, "counter", "Counter"), worker_sup],
        )],
        unsupervised: vec![TreeNode {
            name: None,
            child_id: None,
            ..leaf(88, "-", "Distributor")
        }],
        unsupervised_total: 1,
    }
}

pub(crate) fn metrics() -> MetricsSnapshot {
    let p = |p50, p99| Percentiles {
        count: 1_000,
        p50_us: p50,
        p90_us: p99 / 2,
        p99_us: p99,
        max_us: p99 * 2,
    };
    MetricsSnapshot {
        sampled_at_unix_ms: T0,
        histograms: vec![
            Histogram {
                key: HistogramKey::HandlingTime {
                    node: "b@host".into(),
                    behaviour: "MessageStore".into(),
                },
                last_10s: p(20_000, 21_000),
                last_60s: p(20_000, 22_000),
                buckets: vec![(16_384, 10), (32_768, 990)],
            },
            Histogram {
                key: HistogramKey::CallRtt {
                    node: "a@host".into(),
                    behaviour: "Counter".into(),
                },
                last_10s: p(80, 140),
                last_60s: p(85, 150),
                buckets: vec![(64, 100), (128, 850), (256, 50)],
            },
        ],
    }
}

pub(crate) fn logs() -> Vec<LogRecord> {
    let rec = |i: u64, level, node: &str, serial, process: &str, message: &str| LogRecord {
        at_unix_us: (T0 + i * 15) * 1000,
        node: node.to_owned(),
        level,
        target: "demo".into(),
        pid: Some(pid(node, serial)),
        process: Some(process.to_owned()),
        message: message.to_owned(),
        fields: vec![],
        trace_id: None,
    };
    vec![
        rec(
            0,
            LogLevel::Info,
            "a@host",
            88,
            "work_distributor",
            "processed item 4411",
        ),
        rec(
            1,
            LogLevel::Warn,
            "b@host",
            311,
            "ChatSystem.MessageStore",
            "chat store is falling behind",
        ),
        rec(
            2,
            LogLevel::Error,
            "a@host",
            31,
            "flaky_worker",
            "process panicked",
        ),
        rec(
            3,
            LogLevel::Info,
            "b@host",
            40,
            "room:lobby",
            "200 messages in the room",
        ),
    ]
}

/// The registries of a and b (c is down), `offset_ms` after T0: the lobby
/// delivers 120 messages a second on a and 240 on b.
pub(crate) fn registry(offset_ms: u64) -> Registry {
    let at = T0 + offset_ms;
    let lobby = |subs: u64, published: u64, delivered: u64| TopicRow {
        instance: "chat.pubsub".into(),
        topic: "room:lobby".into(),
        subscribers: subs,
        published_total: published,
        delivered_total: delivered,
    };
    let s = offset_ms / 1000;
    Registry {
        nodes: vec![
            NodeRegistry {
                node: "a@host".into(),
                sampled_at_unix_ms: at,
                topics: vec![
                    lobby(1, 40 * s, 120 * s),
                    TopicRow {
                        instance: "chat.pubsub".into(),
                        topic: "room:quiet".into(),
                        subscribers: 1,
                        published_total: 3,
                        delivered_total: 3,
                    },
                ],
                presences: vec![PresenceRow {
                    instance: "chat.presence".into(),
                    topic: "room:lobby".into(),
                    tracked: 3,
                    keys: 2,
                    local: 1,
                }],
                names: vec![NameRow {
                    name: "ChatSystem.MessageStore".into(),
                    scope: NameScope::Local,
                    pid: pid("a@host", 311),
                    behaviour: Some("MessageStore".into()),
                    system: false,
                }],
                groups: vec![GroupRow {
                    group: "workers".into(),
                    members: 2,
                }],
            },
            NodeRegistry {
                node: "b@host".into(),
                sampled_at_unix_ms: at,
                topics: vec![lobby(2, 20 * s, 240 * s)],
                presences: vec![PresenceRow {
                    instance: "chat.presence".into(),
                    topic: "room:lobby".into(),
                    tracked: 3,
                    keys: 2,
                    local: 2,
                }],
                names: vec![NameRow {
                    name: "counter".into(),
                    scope: NameScope::Global,
                    pid: pid("b@host", 90),
                    behaviour: Some("Counter".into()),
                    system: false,
                }],
                groups: vec![GroupRow {
                    group: "workers".into(),
                    members: 1,
                }],
            },
        ],
        missing: vec!["c@host".into()],
    }
}

/// The slow consumer's subscriptions and names.
pub(crate) fn process_registry() -> ProcessRegistry {
    ProcessRegistry {
        name: Some("ChatSystem.MessageStore".into()),
        global_names: vec![],
        groups: vec!["stores".into()],
        subscriptions: vec![("chat.pubsub".into(), "room:lobby".into())],
        presences: vec![],
    }
}

/// Telemetry of the two live nodes: Prometheus endpoints, a user counter
/// and histogram on both, a gauge, the runtime's spawn counter, and a
/// telemetry event.
pub(crate) fn telemetry() -> Telemetry {
    let node = |name: &str, port: u16, orders_per_s: f64, slow: u64| NodeTelemetry {
        node: name.into(),
        sampled_at_unix_ms: T0,
        window_ms: 10_000,
        endpoints: vec![Endpoint {
            kind: EndpointKind::Prometheus,
            url: format!("http://127.0.0.1:{port}/metrics"),
        }],
        series: vec![
            Series {
                name: "clustertop_processes_spawned_total".into(),
                labels: vec![("node".into(), name.into())],
                value: SeriesValue::Counter {
                    total: 5_000,
                    per_s: 3.0,
                },
            },
            Series {
                name: "chat_messages_total".into(),
                labels: vec![("room".into(), "lobby".into())],
                value: SeriesValue::Counter {
                    total: 90_000,
                    per_s: orders_per_s,
                },
            },
            Series {
                name: "chat_store_seconds".into(),
                labels: vec![],
                value: SeriesValue::Histogram {
                    count: 12_000,
                    sum: 260.0,
                    window: vec![
                        Bucket {
                            lower: 0.020,
                            upper: 0.022,
                            count: 400,
                        },
                        Bucket {
                            lower: 0.25,
                            upper: 0.28,
                            count: slow,
                        },
                    ],
                },
            },
            Series {
                name: "chat_rooms".into(),
                labels: vec![],
                value: SeriesValue::Gauge { value: 3.0 },
            },
        ],
        events: vec![EventCount {
            name: "chat.message.stored".into(),
            total: 12_000,
            per_s: 46.5,
        }],
        ..NodeTelemetry::default()
    };
    Telemetry {
        nodes: vec![
            node("a@host", 9568, 140.0, 2),
            node("b@host", 9569, 141.5, 6),
        ],
        missing: vec!["c@host".into()],
    }
}

/// The slow consumer's last traced handlings: chat messages from two bots.
pub(crate) fn process_traces() -> ProcessTraces {
    let row = |i: u64, from: Option<PidRef>| TraceRow {
        trace_id: format!("4bf92f3577b34da6a3ce929d0e0e47{i:02x}"),
        span_id: format!("00f067aa0ba902{i:02x}"),
        handling_us: 21_500 + i * 100,
        from,
        at_unix_ms: T0 - i * 1_000,
    };
    ProcessTraces {
        traces: vec![
            row(1, Some(pid("a@host", 42))),
            row(2, Some(pid("b@host", 43))),
            row(3, None),
        ],
    }
}

/// A BEAM cluster: the same three nodes (one down) with BEAM figures,
/// and a slow `gen_server` on top.
pub(crate) fn beam_overview(offset_ms: u64) -> ClusterOverview {
    let at = T0 + offset_ms;
    let beam = |name: &str| NodeSummary {
        messages_in_total: 0,
        messages_out_total: 0,
        messages_in_per_s: 0,
        messages_out_per_s: 0,
        cpu_permille: 0,
        cpu_time_us_total: 0,
        dead_letters_total: 0,
        crashes_total: 0,
        rss_bytes: 48_000_000,
        version: "OTP 25".into(),
        beam: Some(BeamNode {
            otp_release: "25".into(),
            erts_version: "erts-13.1.5".into(),
            process_limit: 262_144,
            run_queue: 2,
            reductions_per_s: 1_450_000,
            memory: BeamMemory {
                total: 48_000_000,
                processes: 12_000_000,
                binary: 900_000,
                ets: 1_200_000,
                atom: 560_000,
                code: 11_000_000,
            },
            ports: 14,
            port_limit: 65_536,
            schedulers: 2,
            dist_busy: Vec::new(),
            rows: 4_102,
            whole_table: true,
        }),
        ..summary(name, at, 0, 0)
    };
    ClusterOverview {
        entry: "a@host".into(),
        nodes: vec![
            beam("a@host"),
            beam("b@host"),
            NodeSummary {
                status: NodeStatus::Down {
                    last_seen_unix_ms: Some(T0 - 12_000),
                },
                processes: 0,
                uptime_ms: 0,
                beam: None,
                ..summary("c@host", at, 0, 0)
            },
        ],
        links: Vec::new(),
        warnings: vec![Warning {
            node: "a@host".into(),
            pid: Some(pid("a@host", 86)),
            name: Some("slow_server".into()),
            behaviour: Some("slow_server:init/1".into()),
            kind: WarningKind::MailboxGrowing {
                len: 5_649,
                growth_per_s: 450,
            },
            since_unix_ms: T0 - 3_000,
        }],
        top_processes: beam_rows(),
    }
}

pub(crate) fn beam_rows() -> Vec<ProcessRow> {
    let beam_row = |serial, name: Option<&str>, behaviour: &str, current: &str, reds| ProcessRow {
        beam: Some(BeamProcess {
            reductions_per_s: reds,
            reductions_total: reds * 600,
            current_function: Some(current.to_owned()),
        }),
        ..row("a@host", serial, name, behaviour)
    };
    vec![
        with_figures(
            beam_row(
                86,
                Some("slow_server"),
                "slow_server:init/1",
                "timer:sleep/1",
                517,
            ),
            |f| {
                f.mailbox_len = 5_649;
                f.mailbox_growth_per_s = 450;
                f.memory_bytes = 869_000;
                f.warnings = 1;
            },
        ),
        beam_row(87, None, "slow_server:feeder/0", "timer:sleep/1", 901),
        beam_row(
            85,
            Some("slow_sup"),
            "supervisor:slow_server/1",
            "gen_server:loop/7",
            0,
        ),
    ]
}

pub(crate) fn beam_detail() -> ProcessDetail {
    let row = beam_rows().remove(0);
    ProcessDetail {
        row,
        totals: ProcessTotals::default(),
        links: vec![pid("a@host", 85)],
        monitored_by: vec![],
        monitoring: vec![],
        supervisor_path: vec![pid("a@host", 85)],
        mailbox_head: vec![],
        top_senders: vec![],
        handling_time: None,
        spawned_at_unix_ms: 0,
        trap_exit: false,
        activity: None,
        names: Vec::new(),
        beam: Some(BeamProcessDetail {
            pid: "<0.86.0>".into(),
            status: "waiting".into(),
            initial_call: Some("slow_server:init/1".into()),
            label: None,
            heap_bytes: 376_000,
            total_heap_bytes: 752_000,
            stack_bytes: 96,
            stacktrace: vec![
                "timer:sleep/1 (timer.erl:219)".into(),
                "slow_server:handle_cast/2 (slow_server.erl:31)".into(),
                "gen_server:try_handle_cast/3 (gen_server.erl:1121)".into(),
            ],
            group_leader: Some("<0.70.0>".into()),
        }),
    }
}

/// `row` with the figures `set` changes.
fn with_figures(mut row: ProcessRow, set: impl FnOnce(&mut ProcessFigures)) -> ProcessRow {
    set(&mut row.figures);
    row
}
