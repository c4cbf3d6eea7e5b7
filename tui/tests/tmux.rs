//! End to end through a real terminal: `clustertop demo` in a tmux pane,
//! driven with keys, read back with `capture-pane`.
//!
//! Needs `tmux` (Debian package, installed by `.ci/run`). Without it the
//! test prints a skip notice, and fails under `CI=true`.

use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_clustertop");

/// A tmux server of our own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// A 120×40 pane running `command` in a shell, on a server named
    /// `name`; `None` (after a skip notice) when tmux is missing outside
    /// CI (see `clustertop_testkit::require_program`).
    fn start(name: &str, command: &str) -> Option<Tmux> {
        clustertop_testkit::require_program(name, "tmux", None, "apt-get install tmux")?;
        let tmux = Tmux {
            socket: format!("{name}-{}", std::process::id()),
        };
        tmux.cmd(&[
            "new-session",
            "-d",
            "-s",
            "e2e",
            "-x",
            "120",
            "-y",
            "40",
            "sh",
        ]);
        // Keys are sent one by one; an Escape must not wait to pair with
        // the next key as the start of an escape sequence.
        tmux.cmd(&["set-option", "-s", "escape-time", "0"]);
        tmux.keys(&[command, "Enter"]);
        Some(tmux)
    }

    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "e2e"])
    }

    /// A tmux format evaluated for the pane (`#{alternate_on}`...).
    fn pane(&self, format: &str) -> String {
        self.cmd(&["display-message", "-p", "-t", "e2e", format])
            .trim()
            .to_owned()
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.cmd(&["send-keys", "-t", "e2e", k]);
        }
    }

    /// Waits until the screen satisfies `ok`; panics with the last screen.
    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// Whether a demo node with `cookie` still runs (the demo hands its nodes
/// the cookie in their environment).
fn demo_nodes_running(cookie: &str) -> bool {
    let wanted = format!("CLUSTERTOP_COOKIE={cookie}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .any(|e| {
            let environ = std::fs::read(e.path().join("environ")).unwrap_or_default();
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            environ.split(|b| *b == 0).any(|v| v == wanted.as_bytes())
                && cmdline.split(|b| *b == 0).any(|a| a == b"node")
        })
}

#[test]
fn the_demo_in_a_terminal_shows_the_cluster_and_quits_cleanly() {
    let cookie = format!("e2e-{}", std::process::id());
    let command = format!("{BIN} --cookie {cookie} demo --port 0; echo DEMO-EXITED-$?");
    let Some(tmux) = Tmux::start("clustertop-e2e", &command) else {
        return;
    };

    // The first screen: every node, and the slow consumer flagged.
    let screen = tmux.wait("the cluster with the slow consumer flagged", |s| {
        s.contains("3 nodes") && s.contains("▲ <demo-2.") && s.contains("MessageStore")
    });
    assert!(screen.contains("[2 Processes]"), "{screen}");

    // What an operator reads first: the top row is the slow consumer,
    // marked, in its handlers nearly all the time.
    let screen = tmux.wait("the slow consumer on top, utilised", |s| {
        let lines: Vec<&str> = s.lines().collect();
        let Some(h) = lines.iter().position(|l| l.contains("NAME / BEHAVIOUR")) else {
            return false;
        };
        // Columns by character, not byte: a row holds `▲` and `…`.
        let Some(end) = lines[h]
            .find("UTIL")
            .map(|at| lines[h][..at].chars().count() + "UTIL".len())
        else {
            return false;
        };
        let top = lines.get(h + 1).copied().unwrap_or("");
        let upto: String = top.chars().take(end).collect();
        let util: Option<u32> = upto
            .split_whitespace()
            .last()
            .and_then(|u| u.strip_suffix('%'))
            .and_then(|u| u.parse().ok());
        top.starts_with("│▲ <demo-2.")
            && top.contains("ChatSystem.MessageStore")
            && util.is_some_and(|u| u >= 90)
    });
    assert!(
        screen.contains("saturated") || screen.contains("mailbox"),
        "the warnings bar:\n{screen}"
    );
    // Its warning names it; Enter on the warning opens its detail.
    tmux.keys(&["6"]);
    tmux.wait("the warnings view", |s| {
        s.contains("[6 Warnings]") && s.contains("ChatSystem.MessageStore (MessageStore)")
    });
    tmux.keys(&["Enter"]);
    tmux.wait("the warned process's detail", |s| {
        s.contains("ChatSystem.MessageStore  MessageStore  on demo-2") && s.contains("util ")
    });
    tmux.keys(&["Escape"]);
    tmux.wait("the detail closed", |s| !s.contains("— Esc back"));
    tmux.keys(&["2"]);

    // Nodes view.
    tmux.keys(&["1"]);
    tmux.wait("the nodes view", |s| {
        s.contains("Nodes (3)")
            && ["demo-1@localhost", "demo-2@localhost", "demo-3@localhost"]
                .iter()
                .all(|n| s.contains(n))
    });

    // Processes, filtered to the chat processes.
    tmux.keys(&["2", "/"]);
    tmux.wait("the filter prompt", |s| s.contains("filter:"));
    tmux.keys(&["name~chat", "Enter"]);
    // The filtered page comes with the next refresh after the filter line
    // changes: wait for it.
    let chat_rows = |s: &str| {
        let rows: Vec<String> = s
            .lines()
            .filter(|l| l.starts_with("│") && l.contains("<demo-"))
            .map(str::to_lowercase)
            .collect();
        !rows.is_empty() && rows.iter().all(|l| l.contains("chat"))
    };
    tmux.wait("the filtered list", |s| {
        s.contains("filter: name~chat") && chat_rows(s)
    });

    // A bad query gets an inline error, and the view goes on.
    tmux.keys(&["/", "mq>lots", "Enter"]);
    tmux.wait("the inline filter error", |s| s.contains("whole number"));
    tmux.keys(&["Escape"]);
    tmux.wait("the filter prompt closed", |s| !s.contains("whole number"));

    // The slow consumer's detail (first row: warnings sort first).
    tmux.keys(&["g", "Enter"]);
    tmux.wait("the process detail", |s| {
        s.contains("ChatSystem.MessageStore  MessageStore  on demo-2") && s.contains("mailbox head")
    });
    tmux.keys(&["Escape"]);
    // Two Escapes read together are one key to the terminal parser
    // (`ESC ESC`): wait for the first to take effect.
    tmux.wait("the list again", |s| {
        s.contains("┌ Processes ") && s.contains("filter: name~chat")
    });
    // Esc again clears the filter.
    tmux.keys(&["Escape"]);
    tmux.wait("the filter cleared", |s| s.contains("filter: none"));

    // The logs view, with records from every node.
    tmux.keys(&["5"]);
    tmux.wait("the logs view", |s| {
        s.contains("[5 Logs]")
            && ["demo-1@localhost", "demo-2@localhost", "demo-3@localhost"]
                .iter()
                .all(|n| s.contains(n))
    });

    // The registry: the chat's lobby with a subscriber on each node, its
    // presence topic with the three bots, and the global counter.
    tmux.keys(&["7"]);
    tmux.wait("the registry view", |s| {
        // The second column of the rows whose first starts with `topic`.
        let counts = |topic: &str| -> Vec<String> {
            s.lines()
                .filter(|l| l.starts_with(&format!("│{topic}")))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_owned())
                .collect()
        };
        s.contains("[7 Registry]")
            && counts("room:lobby ") == ["3"]
            && counts("room:lobby:pres").contains(&"3".to_owned())
            && s.lines().flat_map(|l| l.split('│')).any(|panel| {
                let mut words = panel.split_whitespace();
                words.next() == Some("Counter") && words.next() == Some("global")
            })
    });

    // Metrics: the chat's own counter, recorded by the demo's code and
    // read from the recorder that feeds Prometheus, as a rate.
    tmux.keys(&["4", "/"]);
    tmux.wait("the filter prompt", |s| s.contains("filter:"));
    tmux.keys(&["name~chat_messages", "Enter"]);
    tmux.wait("the chat's counter in the series table", |s| {
        s.contains("[4 Metrics]")
            && s.lines().any(|l| {
                l.contains("chat_messages_total")
                    && l.split_whitespace().any(|w| {
                        w.strip_suffix("/s")
                            .and_then(|r| r.replace(',', "").parse::<f64>().ok())
                            .is_some_and(|r| r > 0.0)
                    })
            })
    });
    // Nodes: where each node serves its metrics.
    tmux.keys(&["1"]);
    tmux.wait("the endpoints under the nodes", |s| {
        s.contains("Telemetry endpoints")
            && s.lines()
                .filter(|l| l.contains("prometheus") && l.contains("/metrics"))
                .count()
                == 3
    });

    // Quit: the shell is back and the demo nodes are gone.
    tmux.keys(&["q"]);
    tmux.wait("the shell after quitting", |s| s.contains("DEMO-EXITED-0"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while demo_nodes_running(&cookie) {
        assert!(
            Instant::now() < deadline,
            "demo nodes still running after quit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A demo node started directly (`clustertop node`), killed when dropped.
struct NodeProcess(std::process::Child);

impl NodeProcess {
    fn start(name: &str, port: u16, cookie: &str, connect: Option<u16>) -> NodeProcess {
        use std::io::BufRead;
        let mut cmd = Command::new(BIN);
        cmd.args(["--cookie", cookie, "node", "--name", name])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--index", if connect.is_some() { "2" } else { "1" }])
            .args(["--first", "r-1@localhost", "--slow", "r-1@localhost"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        if let Some(p) = connect {
            cmd.args(["--connect", &format!("127.0.0.1:{p}")]);
        }
        let mut child = cmd.spawn().expect("clustertop node starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("listening"), "{name}: {line:?}");
        NodeProcess(child)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn row_of<'a>(screen: &'a str, node: &str) -> &'a str {
    screen.lines().find(|l| l.contains(node)).unwrap_or("")
}

#[test]
fn the_view_falls_over_to_another_node_when_the_entry_dies_and_dims_when_none_answers() {
    let cookie = format!("failover-{}", std::process::id());
    let [pa, pb, pc] = [(); 3].map(|()| clustertop_testkit::free_port());
    let command = format!("{BIN} --node 127.0.0.1:{pa} --cookie {cookie}; echo VIEW-EXITED-$?");
    let a = NodeProcess::start("r-1@localhost", pa, &cookie, None);
    let b = NodeProcess::start("r-2@localhost", pb, &cookie, Some(pa));
    let c = NodeProcess::start("r-3@localhost", pc, &cookie, Some(pa));
    let Some(tmux) = Tmux::start("clustertop-failover", &command) else {
        return;
    };
    tmux.keys(&["1"]);
    tmux.wait("three nodes up", |s| {
        s.contains("Nodes (3)")
            && ["r-1@localhost", "r-2@localhost", "r-3@localhost"]
                .iter()
                .all(|n| row_of(s, n).contains(" up "))
    });

    // A node that is not the entry goes down: its row says so.
    drop(b);
    tmux.wait("r-2 shown down", |s| {
        row_of(s, "r-2@localhost").contains("down")
    });

    // The entry node dies: the view attaches to the node still alive,
    // which the cluster reported, and says where it now comes from.
    drop(a);
    let screen = tmux.wait("the view to fall over to r-3", |s| {
        s.contains(&format!("127.0.0.1:{pc} (fell over from 127.0.0.1:{pa})"))
            && row_of(s, "r-3@localhost").contains(" up ")
            && row_of(s, "r-1@localhost").contains("down")
    });
    assert!(!screen.contains("data from"), "{screen}");

    // No node answers: the last data stays, dimmed, with its age, and the
    // whole status is on screen.
    drop(c);
    tmux.wait("the view to say no node answers", |s| {
        s.contains("data from") && s.contains("no node answers") && s.contains("every second")
    });

    // The first entry comes back: the view attaches to it again.
    let _a = NodeProcess::start("r-1@localhost", pa, &cookie, None);
    tmux.wait("the view to reattach", |s| {
        row_of(s, "r-1@localhost").contains(" up ") && !s.contains("no node answers")
    });
    tmux.keys(&["q"]);
    tmux.wait("the shell after quitting", |s| s.contains("VIEW-EXITED-0"));
}

#[test]
fn a_headless_demo_in_the_background_of_a_shell_keeps_running() {
    let home = tempfile::tempdir().unwrap();
    let command = format!(
        "HOME={} {BIN} demo --headless --port 0 &",
        home.path().display()
    );
    let Some(tmux) = Tmux::start("clustertop-background", &command) else {
        return;
    };
    tmux.wait("the demo's first line", |s| s.contains("demo cluster up"));
    // Ask the shell a while later: a job that read the terminal from the
    // background would have been stopped (SIGTTIN).
    std::thread::sleep(Duration::from_secs(2));
    // The marker printed differs from the one typed (`$?` is expanded), so
    // the wait ends on the output, never on the command line's echo.
    tmux.keys(&["jobs -l; echo JOBS-LISTED-$?", "Enter"]);
    let screen = tmux.wait("the job list", |s| s.contains("JOBS-LISTED-0"));
    let jobs = screen
        .lines()
        .filter(|l| l.contains("demo --headless") && !l.contains("&"))
        .collect::<Vec<_>>();
    assert!(
        jobs.iter().any(|l| l.contains("Running")) && !jobs.iter().any(|l| l.contains("Stopped")),
        "the background demo is not running:\n{screen}"
    );
    tmux.keys(&["kill %1; wait; echo DEMO-ENDED-$?", "Enter"]);
    tmux.wait("the demo to end", |s| s.contains("DEMO-ENDED-0"));
    let left: Vec<_> = std::fs::read_dir(home.path().join(".clustertop.demos"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "SIGTERM left {left:?}");
}

#[test]
fn a_signal_ends_the_view_like_q_and_restores_the_terminal() {
    let cookie = format!("signal-{}", std::process::id());
    let port = clustertop_testkit::free_port();
    let _node = NodeProcess::start("r-1@localhost", port, &cookie, None);
    let view = format!("{BIN} --node 127.0.0.1:{port} --cookie {cookie}");
    for (signal, name) in [("-TERM", "SIGTERM"), ("-HUP", "SIGHUP"), ("-INT", "SIGINT")] {
        let command = format!("{view}; echo VIEW-EXITED-$?");
        // A server of its own each time: the last one may still be going.
        let Some(tmux) = Tmux::start(&format!("clustertop-{name}"), &command) else {
            return;
        };
        tmux.wait("the view", |s| s.contains("[2 Processes]"));
        assert_eq!(
            tmux.pane("#{alternate_on}"),
            "1",
            "the view draws on the alternate screen"
        );
        let killed = Command::new("pkill")
            .args([signal, "-f", &format!("^{view}$")])
            .status()
            .unwrap();
        assert!(killed.success(), "{name} sent");
        tmux.wait("the shell after the signal", |s| {
            s.contains("VIEW-EXITED-0")
        });
        assert_eq!(
            tmux.pane("#{alternate_on}"),
            "0",
            "{name}: alternate screen left on"
        );
        assert_eq!(
            tmux.pane("#{cursor_flag}"),
            "1",
            "{name}: cursor left hidden"
        );
    }
}

#[test]
fn a_beam_cluster_in_a_terminal_shows_its_nodes_the_slow_server_first_and_its_detail() {
    use clustertop_testkit::erlang::{self, COOKIE, ErlNode, unique};
    if erlang::erlang("beam tmux").is_none() {
        return;
    }
    let a = ErlNode::start(&unique("ta"), "slow_server:start()");
    let ping = format!("pong = net_adm:ping('{}')", a.name);
    let b = ErlNode::start(&unique("tb"), &ping);
    let c = ErlNode::start(&unique("tc"), &ping);
    let command = format!(
        "{BIN} --beam {} --cookie {COOKIE}; echo BEAM-EXITED-$?",
        a.name
    );
    let Some(tmux) = Tmux::start("clustertop-beam", &command) else {
        return;
    };
    // The processes: the slow server first, marked, with the BEAM's
    // columns.
    let screen = tmux.wait("the slow server on top", |s| {
        let lines: Vec<&str> = s.lines().collect();
        let Some(h) = lines.iter().position(|l| l.contains("NAME / BEHAVIOUR")) else {
            return false;
        };
        let top = lines.get(h + 1).copied().unwrap_or("");
        // Its name whole, and its behaviour (the initial call) as far as
        // the column's room goes.
        top.starts_with("│▲ <ta_") && top.contains("slow_server  slow_serv")
    });
    assert!(
        screen.contains("REDS/S") && screen.contains("CURRENT"),
        "{screen}"
    );
    assert!(screen.contains("3 nodes"), "{screen}");

    // Every node, with the BEAM's figures.
    tmux.keys(&["1"]);
    tmux.wait("the nodes view", |s| {
        s.contains("Nodes (3) — BEAM")
            && [&a.name, &b.name, &c.name]
                .iter()
                .all(|n| s.contains(n.as_str()))
            && s.contains("REDS/S")
    });

    // The slow server's detail: where it is, its supervisor.
    tmux.keys(&["2", "Enter"]);
    tmux.wait("the slow server's detail", |s| {
        s.contains("slow_server  slow_server:init/1  on ta_")
            && s.contains("stacktrace")
            && s.contains("pid <0.")
            && s.contains("m reads the first 20")
    });
    // Its queue, read on the key.
    tmux.keys(&["m"]);
    tmux.wait("the mailbox head", |s| {
        s.contains("{'$gen_cast',work}") && s.contains("sent only these")
    });
    tmux.keys(&["Escape"]);
    tmux.wait("the detail closed", |s| !s.contains("— Esc back"));

    // No log tail, and why.
    tmux.keys(&["5"]);
    tmux.wait("the logs view saying why", |s| {
        s.contains("No log tail") && s.contains("loads no code")
    });

    tmux.keys(&["q"]);
    tmux.wait("the view quit", |s| s.contains("BEAM-EXITED-0"));
    assert_eq!(tmux.pane("#{alternate_on}"), "0");
}
