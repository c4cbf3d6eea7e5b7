//! Every request and response survives the wire (postcard, as the runtime
//! sends it, and JSON, as `clustertop snapshot --json` prints it), version
//! negotiation refuses what it must, and log filters match what they say.

use clustertop_proto::*;

fn pid(node: &str, serial: u64) -> PidRef {
    PidRef {
        node: node.into(),
        serial,
        creation: 7,
    }
}

fn row() -> ProcessRow {
    ProcessRow {
        pid: pid("b@host", 311),
        name: Some("chat_store".into()),
        behaviour: "ChatStore".into(),
        system: false,
        status: ProcessStatus::Running,
        figures: ProcessFigures {
            mailbox_len: 48_211,
            mailbox_growth_per_s: 1_200,
            oldest_message_age_us: Some(41_200_000),
            handled_per_s: 150,
            util_permille: 990,
            cpu_permille: 42,
            polls_per_s: 310,
            memory_bytes: 5 << 20,
            warnings: 1,
            rates_known: true,
        },
        beam: None,
    }
}

fn node(name: &str) -> NodeSummary {
    NodeSummary {
        name: name.into(),
        addr: Some("10.0.0.7:4370".into()),
        status: NodeStatus::Up,
        sampled_at_unix_ms: 1_764_000_000_000,
        uptime_ms: 7_980_000,
        processes: 4_102,
        messages_in_total: 1 << 40,
        messages_out_total: 1 << 39,
        messages_in_per_s: 120_000,
        messages_out_per_s: 119_000,
        cpu_permille: 455,
        rss_bytes: 212 << 20,
        cpu_time_us_total: 9_000_000,
        cpus: 2,
        dead_letters_total: 3,
        crashes_total: 1,
        version: "0.1.0".into(),
        beam: None,
    }
}

fn percentiles() -> Percentiles {
    Percentiles {
        count: 1000,
        p50_us: 900,
        p90_us: 2000,
        p99_us: 4100,
        max_us: 9000,
    }
}

fn record() -> LogRecord {
    LogRecord {
        at_unix_us: 1_764_000_000_000_000,
        node: "b@host".into(),
        level: LogLevel::Warn,
        target: "app::chat".into(),
        pid: Some(pid("b@host", 311)),
        process: Some("chat_store".into()),
        message: "slow handle_cast 12.4ms".into(),
        fields: vec![("room".into(), "lobby".into())],
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
    }
}

fn requests() -> Vec<Request> {
    vec![
        Request::Hello(Hello {
            version: VERSION,
            client: "clustertop 0.1.0".into(),
        }),
        Request::ClusterOverview(GetOverview),
        Request::NodeDetail(GetNode {
            node: "a@host".into(),
        }),
        Request::ProcessList(ProcessQuery {
            filter: ProcessFilter {
                node: Some("b@host".into()),
                name_contains: Some("chat".into()),
                min_mailbox_len: Some(1000),
                min_growth_per_s: Some(5),
                include_system: false,
            },
            sort: SortKey::Default,
            descending: true,
            offset: 40,
            limit: 40,
        }),
        Request::ProcessInfo(GetProcess {
            pid: pid("b@host", 311),
        }),
        Request::SupervisionTree(GetTree {
            node: "a@host".into(),
        }),
        Request::Metrics(GetMetrics { node: None }),
        Request::Warnings(GetWarnings),
        Request::SubscribeLogs(SubscribeLogs {
            filter: LogFilter::default(),
            backlog: 100,
        }),
        Request::Unsubscribe(Unsubscribe { subscription: 3 }),
    ]
}

fn responses() -> Vec<Response> {
    let warning = Warning {
        node: "b@host".into(),
        pid: Some(pid("b@host", 311)),
        name: Some("chat_store".into()),
        behaviour: Some("ChatStore".into()),
        kind: WarningKind::MailboxGrowing {
            len: 48_211,
            growth_per_s: 1_200,
        },
        since_unix_ms: 1_764_000_000_000,
    };
    let link = LinkStats {
        peer: "b@host".into(),
        bytes_in_total: 1,
        bytes_out_total: 2,
        frames_in_total: 3,
        frames_out_total: 4,
        queued_bytes: 0,
        heartbeat_rtt_us: Some(80),
        up_for_ms: 1000,
    };
    vec![
        Response::Hello(HelloReply {
            version: VERSION,
            node: "a@host".into(),
            agent_version: "0.1.0".into(),
        }),
        Response::Overview(ClusterOverview {
            entry: "a@host".into(),
            nodes: vec![
                node("a@host"),
                NodeSummary {
                    status: NodeStatus::Down {
                        last_seen_unix_ms: Some(1),
                    },
                    ..node("c@host")
                },
            ],
            links: vec![link.clone()],
            warnings: vec![warning.clone()],
            top_processes: vec![row()],
        }),
        Response::Node(NodeDetail {
            summary: node("a@host"),
            links: vec![link],
            scheduler_threads: 2,
            runtime_tasks: 40,
            runtime_queue_depth: 0,
        }),
        Response::Processes(ProcessPage {
            rows: vec![row(), row()],
            total_matching: 12_431,
            sampled_at_unix_ms: 5,
        }),
        Response::Process(ProcessDetail {
            row: row(),
            totals: ProcessTotals {
                received_total: 9_200_000,
                handled_total: 9_100_000,
                sent_total: 12,
                cpu_us_total: 7_000_000_000,
                util_us_total: 70_000_000_000,
                polls_total: 1 << 33,
            },
            links: vec![pid("a@host", 2)],
            monitored_by: vec![],
            monitoring: vec![pid("c@host", 9)],
            supervisor_path: vec![pid("b@host", 3), pid("b@host", 1)],
            mailbox_head: vec!["cast AddMessage { room: \"lobby\" }".into()],
            top_senders: vec![(pid("a@host", 40), 62)],
            handling_time: Some(percentiles()),
            spawned_at_unix_ms: 9,
            trap_exit: true,
            activity: Some(Activity::Awaiting {
                handling_for_us: Some(3_200_000),
            }),
            names: vec![(pid("a@host", 7), "app_sup".into())],
            beam: None,
        }),
        Response::Tree(SupervisionTree {
            node: "a@host".into(),
            roots: vec![TreeNode {
                pid: pid("a@host", 1),
                name: Some("app_sup".into()),
                behaviour: "Supervisor".into(),
                supervisor: true,
                strategy: Some("one_for_one".into()),
                restarts: Some(RestartIntensity {
                    recent: 3,
                    max: 5,
                    period_ms: 5_000,
                    total: 41,
                }),
                child_id: None,
                last_exit: None,
                children: vec![TreeNode {
                    pid: pid("a@host", 2),
                    name: None,
                    behaviour: "Counter".into(),
                    supervisor: false,
                    strategy: None,
                    restarts: None,
                    child_id: Some("counter".into()),
                    last_exit: Some(ExitSummary {
                        reason: "panic: boom".into(),
                        crashed: true,
                        at_unix_ms: 1_764_000_000_000,
                    }),
                    children: vec![],
                }],
            }],
            unsupervised: vec![],
            unsupervised_total: 0,
        }),
        Response::Metrics(MetricsSnapshot {
            sampled_at_unix_ms: 1,
            histograms: vec![Histogram {
                key: HistogramKey::CallRtt {
                    node: "a@host".into(),
                    behaviour: "Counter".into(),
                },
                last_10s: percentiles(),
                last_60s: percentiles(),
                buckets: vec![(100, 5), (1000, 50)],
            }],
        }),
        Response::Warnings(vec![
            warning.clone(),
            Warning {
                kind: WarningKind::Saturated {
                    util_permille: 995,
                    len: 120,
                    growth_per_s: 95,
                },
                ..warning
            },
        ]),
        Response::Subscribed { subscription: 3 },
        Response::Logs {
            subscription: 3,
            node: "a@host".into(),
            records: vec![record()],
            dropped_total: 0,
            backlog: true,
        },
        Response::Error(ProtoError::NoSuchNode("z@host".into())),
    ]
}

#[test]
fn every_request_and_response_roundtrips() {
    for r in requests() {
        let bytes = postcard::to_allocvec(&r).unwrap();
        assert_eq!(postcard::from_bytes::<Request>(&bytes).unwrap(), r);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), r);
    }
    for r in responses() {
        let bytes = postcard::to_allocvec(&r).unwrap();
        assert_eq!(postcard::from_bytes::<Response>(&bytes).unwrap(), r);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Response>(&json).unwrap(), r);
    }
}

/// The first message of a session is read the same by every version, so
/// an agent can tell a client of another version what it speaks.
#[test]
fn hello_and_its_error_keep_their_wire_form() {
    #[derive(serde::Serialize)]
    enum V1Request {
        Hello(Hello),
    }
    let hello = Hello {
        version: 1,
        client: "clustertop 0.0.9".into(),
    };
    assert_eq!(
        postcard::to_allocvec(&Request::Hello(hello.clone())).unwrap(),
        postcard::to_allocvec(&V1Request::Hello(hello)).unwrap()
    );
    let refused = Response::Error(negotiate(1, VERSION).unwrap_err());
    let bytes = postcard::to_allocvec(&refused).unwrap();
    assert_eq!(postcard::from_bytes::<Response>(&bytes).unwrap(), refused);
}

#[test]
fn a_rows_figures_keep_the_flat_wire_form() {
    // Version 6 sent a row's figures as fields of the row itself: grouped
    // in `ProcessFigures`, they are the same bytes in the same place (with
    // version 7's `rates_known` after them).
    let r = row();
    let f = r.figures;
    let flat = (
        &r.pid,
        &r.name,
        &r.behaviour,
        r.system,
        r.status,
        (
            f.mailbox_len,
            f.mailbox_growth_per_s,
            f.oldest_message_age_us,
        ),
        (
            f.handled_per_s,
            f.util_permille,
            f.cpu_permille,
            f.polls_per_s,
        ),
        (f.memory_bytes, f.warnings, f.rates_known),
        &r.beam,
    );
    assert_eq!(
        postcard::to_allocvec(&r).unwrap(),
        postcard::to_allocvec(&flat).unwrap()
    );
}

/// A request's reply comes out of its own response and nothing else.
#[test]
fn a_request_names_its_reply() {
    fn roundtrip<C: Call>(reply: C::Reply) -> C::Reply
    where
        C::Reply: Clone + PartialEq + std::fmt::Debug,
    {
        let response = C::respond(reply.clone());
        let bytes = postcard::to_allocvec(&response).unwrap();
        let back = C::reply(postcard::from_bytes(&bytes).unwrap()).unwrap();
        assert_eq!(back, reply);
        back
    }
    roundtrip::<GetWarnings>(vec![]);
    roundtrip::<SubscribeLogs>(7);
    roundtrip::<Unsubscribe>(7);
    let page = ProcessPage {
        rows: vec![row()],
        total_matching: 1,
        sampled_at_unix_ms: 5,
    };
    assert_eq!(roundtrip::<ProcessQuery>(page.clone()), page);
    let error = Response::Error(ProtoError::NoSuchProcess);
    assert_eq!(GetNode::reply(error.clone()), Err(error));
    let other = Response::Warnings(vec![]);
    assert_eq!(GetOverview::reply(other.clone()), Err(other));
}

#[test]
fn sort_keys_order_by_their_figure_then_by_pid() {
    let mut a = row();
    let mut b = row();
    b.pid.serial = 312;
    assert_eq!(
        SortKey::MailboxLen.compare(&a.sort_fields(), &b.sort_fields()),
        std::cmp::Ordering::Less,
        "ties go by serial"
    );
    b.figures.mailbox_len = 1;
    assert_eq!(
        SortKey::MailboxLen.compare(&a.sort_fields(), &b.sort_fields()),
        std::cmp::Ordering::Greater
    );
    // The default ranking: warnings, then growth, then mailbox.
    a.figures.warnings = 0;
    b.figures.warnings = 1;
    assert_eq!(
        SortKey::Default.compare_dir(true, &a.sort_fields(), &b.sort_fields()),
        std::cmp::Ordering::Greater,
        "descending: the warned row first"
    );
    b.figures.warnings = 0;
    b.figures.mailbox_growth_per_s = a.figures.mailbox_growth_per_s + 1;
    assert_eq!(
        SortKey::Default.compare(&a.sort_fields(), &b.sort_fields()),
        std::cmp::Ordering::Less
    );
    // Pid: node, then serial.
    b.pid.node = "a@host".into();
    assert_eq!(
        SortKey::Pid.compare(&a.sort_fields(), &b.sort_fields()),
        std::cmp::Ordering::Greater
    );
}

#[test]
fn unsupported_versions_get_a_clear_error() {
    assert_eq!(negotiate(VERSION, VERSION), Ok(VERSION));
    assert_eq!(
        negotiate(MIN_VERSION, VERSION),
        Ok(MIN_VERSION),
        "an older client is served"
    );
    let err = negotiate(VERSION + 1, VERSION).unwrap_err();
    assert_eq!(
        err,
        ProtoError::UnsupportedVersion {
            client: VERSION + 1,
            min: MIN_VERSION,
            max: VERSION
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "protocol version {} is not supported (this agent speaks {MIN_VERSION} to {VERSION})",
            VERSION + 1
        )
    );
    assert!(negotiate(0, VERSION).is_err());
    // A newer client facing an older agent falls back to the agent's newest
    // version when it speaks it, and gives up otherwise.
    assert_eq!(fallback(VERSION + 1, &err), Some(VERSION));
    // An agent one version behind: the client falls back when it still
    // speaks that version, and gives up when it is below the oldest.
    let old_agent = negotiate(VERSION, VERSION - 1).unwrap_err();
    let expected = (VERSION > MIN_VERSION).then_some(VERSION - 1);
    assert_eq!(fallback(VERSION, &old_agent), expected);
    let ancient = ProtoError::UnsupportedVersion {
        client: VERSION,
        min: 1,
        max: 1,
    };
    assert_eq!(fallback(VERSION, &ancient), None);
    assert_eq!(fallback(VERSION, &ProtoError::NoHello), None);
}

/// Version 3 added requests at the end of the enums: every version-2
/// message keeps its variant index, so a session at version 2 reads the
/// same bytes as before.
#[test]
fn version_3_leaves_every_version_2_message_as_it_was() {
    let first_byte = |bytes: Vec<u8>| bytes[0];
    let unsubscribe = Request::Unsubscribe(Unsubscribe { subscription: 1 });
    assert_eq!(first_byte(postcard::to_allocvec(&unsubscribe).unwrap()), 9);
    let error = Response::Error(ProtoError::NoHello);
    assert_eq!(first_byte(postcard::to_allocvec(&error).unwrap()), 11);
    let registry = Request::from(GetRegistry);
    assert_eq!(first_byte(postcard::to_allocvec(&registry).unwrap()), 10);
    let answer = GetRegistry::respond(Registry::default());
    assert_eq!(first_byte(postcard::to_allocvec(&answer).unwrap()), 12);
    assert_eq!(GetRegistry::SINCE, 3);
    assert_eq!(GetProcessRegistry::SINCE, 3);
    assert_eq!(GetOverview::SINCE, 2);
    assert_eq!(GetRegistry::NAME, "Registry");
}

#[test]
fn registry_answers_roundtrip() {
    let pid = PidRef {
        node: "a@host".into(),
        serial: 7,
        creation: 1,
    };
    let registry = Registry {
        nodes: vec![NodeRegistry {
            node: "a@host".into(),
            sampled_at_unix_ms: 1,
            topics: vec![TopicRow {
                instance: "chat.pubsub".into(),
                topic: "room:lobby".into(),
                subscribers: 2,
                published_total: 10,
                delivered_total: 20,
            }],
            presences: vec![PresenceRow {
                instance: "chat.presence".into(),
                topic: "room:lobby".into(),
                tracked: 3,
                keys: 2,
                local: 1,
            }],
            names: vec![NameRow {
                name: "counter".into(),
                scope: NameScope::Global,
                pid: pid.clone(),
                behaviour: Some("Counter".into()),
                system: false,
            }],
            groups: vec![GroupRow {
                group: "workers".into(),
                members: 4,
            }],
        }],
        missing: vec!["b@host".into()],
    };
    let bytes = postcard::to_allocvec(&GetRegistry::respond(registry.clone())).unwrap();
    assert_eq!(
        GetRegistry::reply(postcard::from_bytes(&bytes).unwrap()),
        Ok(registry)
    );
    let of_process = ProcessRegistry {
        name: Some("chat_store".into()),
        global_names: vec![],
        groups: vec!["stores".into()],
        subscriptions: vec![("chat.pubsub".into(), "room:lobby".into())],
        presences: vec![("chat.presence".into(), "room:lobby".into(), "ann".into())],
    };
    let bytes = postcard::to_allocvec(&GetProcessRegistry::respond(of_process.clone())).unwrap();
    assert_eq!(
        GetProcessRegistry::reply(postcard::from_bytes(&bytes).unwrap()),
        Ok(of_process)
    );
    let _ = GetProcessRegistry { pid };
}

#[test]
fn log_filters_match_what_they_say() {
    let r = record();
    assert!(LogFilter::default().matches(&r));
    let f = |edit: fn(&mut LogFilter)| {
        let mut f = LogFilter::default();
        edit(&mut f);
        f.matches(&r)
    };
    assert!(!f(|f| f.min_level = LogLevel::Error));
    assert!(f(|f| f.target_prefix = Some("app::".into())));
    assert!(!f(|f| f.target_prefix = Some("db".into())));
    assert!(f(|f| f.node = Some("b@host".into())));
    assert!(!f(|f| f.node = Some("a@host".into())));
    assert!(f(|f| f.pid = Some(pid("b@host", 311))));
    assert!(!f(|f| f.pid = Some(pid("b@host", 312))));
    assert!(f(|f| f.text = Some("slow".into())));
    assert!(!f(|f| f.text = Some("fast".into())));
}
