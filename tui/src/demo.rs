//! `clustertop demo`: a local cluster of demo nodes, each a child process
//! of this binary (`clustertop node …`, which runs the demo node of the
//! `clustertop-examples` package: the article's programs and an agent),
//! for the TUI to attach to.
//!
//! # Shutdown
//! The demo owns its children: dropping the [`Demo`] kills and reaps them.
//! Each child also exits when its standard input closes, so the nodes go
//! away even when the parent is killed without a chance to clean up.
//!
//! # The cookie
//! Unless one is given, the demo makes a random cookie. Its nodes get it
//! through their environment, never on their command line (which any user
//! of the machine can read). The entry address and the cookie go into
//! `~/.clustertop.demos/PID` (the demo's process id; mode 0600 in a 0700
//! folder, removed when the demo stops), where `clustertop snapshot`,
//! `logs` and the view find them when they attach to that address without
//! a cookie of their own. Each demo has its own file, so two demos never
//! overwrite or remove each other's; without `--node`, the commands attach
//! to the newest demo running.

use clustertop_client::{COOKIE_ENV, CookieError};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running demo cluster.
#[derive(Debug)]
pub(crate) struct Demo {
    children: Vec<Child>,
    /// The first node's address, where clients attach.
    pub(crate) entry: String,
    /// Every node's address, in start order (the entry first).
    pub(crate) addrs: Vec<String>,
    /// The nodes' names, in start order.
    pub(crate) names: Vec<String>,
    /// Where the entry address and the cookie are for other commands.
    pub(crate) file: Option<DemoFile>,
    /// Each node's Prometheus endpoint, in start order.
    pub(crate) metrics: Vec<std::net::SocketAddr>,
    /// The Prometheus file-based discovery file listing them.
    pub(crate) targets: Option<TargetsFile>,
}

impl Demo {
    /// Starts `nodes` demo nodes; the first listens on `127.0.0.1:port`
    /// (0: any free port). With `otlp`, every node exports to that
    /// collector what it takes.
    ///
    /// # Errors
    /// A line saying which node failed to start.
    pub(crate) fn start(
        nodes: usize,
        port: u16,
        cookie: &str,
        otlp: Option<&Collector>,
    ) -> Result<Demo, DemoError> {
        // Each node is this binary's `node` command, built with the demo.
        if !cfg!(feature = "demo") {
            return Err(DemoError::NotBuilt);
        }
        let exe = std::env::current_exe().map_err(DemoError::CurrentExe)?;
        let names: Vec<String> = (1..=nodes.max(1))
            .map(|i| format!("demo-{i}@localhost"))
            .collect();
        let slow = names.get(1).unwrap_or(&names[0]).clone();
        let mut demo = Demo {
            children: Vec::new(),
            entry: String::new(),
            addrs: Vec::new(),
            names: names.clone(),
            file: None,
            metrics: Vec::new(),
            targets: None,
        };
        for (i, name) in names.iter().enumerate() {
            let listen = if i == 0 {
                format!("127.0.0.1:{port}")
            } else {
                "127.0.0.1:0".to_owned()
            };
            let metrics = metrics_addr(i, port != 0);
            let mut cmd = Command::new(&exe);
            cmd.args(["node", "--name", name, "--listen", &listen])
                .args(["--metrics", &metrics.to_string()])
                .args(["--index", &(i + 1).to_string()])
                .args(["--first", &names[0], "--slow", &slow])
                .env(COOKIE_ENV, cookie)
                // The collector the demo names, and no other.
                .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
                .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
                .env_remove("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
                .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            if i > 0 {
                cmd.args(["--connect", &demo.entry]);
            }
            match otlp {
                Some(Collector::All(url)) => cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", url),
                // A trace store such as Jaeger refuses metrics and logs,
                // and an export it refuses would fail for ever.
                Some(Collector::Traces(url)) => cmd.env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url),
                None => &mut cmd,
            };
            let mut child = cmd.spawn().map_err(|source| DemoError::Spawn {
                name: name.clone(),
                source,
            })?;
            let stdout = child.stdout.take().expect("piped");
            demo.children.push(child);
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let addr = line
                .trim()
                .strip_prefix("listening ")
                .ok_or_else(|| DemoError::NoListen {
                    name: name.clone(),
                    port,
                })?
                .to_owned();
            // The port the node got: the one asked for, or a free one
            // when that was taken.
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let served = line
                .trim()
                .strip_prefix("metrics http://")
                .and_then(|u| u.strip_suffix("/metrics"))
                .and_then(|a| a.parse().ok());
            demo.metrics.push(served.unwrap_or(metrics));
            if i == 0 {
                demo.entry = addr.clone();
            }
            demo.addrs.push(addr);
        }
        demo.file = DemoFile::write(&demo.addrs, cookie);
        demo.targets = TargetsFile::write(&demo.names, &demo.metrics);
        Ok(demo)
    }

    /// Where each node serves its metrics, and the discovery file: the
    /// lines the demo prints.
    pub(crate) fn exports(&self) -> String {
        let mut out = String::from("metrics:");
        for (name, addr) in self.names.iter().zip(&self.metrics) {
            out.push_str(&format!(" {name} http://{addr}/metrics"));
        }
        match &self.targets {
            Some(t) => out.push_str(&format!(
                "\nprometheus targets (file_sd_configs): {}",
                t.shown()
            )),
            None => out.push_str("\nprometheus targets: not written (no home directory)"),
        }
        out
    }
}

/// The first metrics port the demo tries; node i tries this plus i.
pub(crate) const METRICS_BASE: u16 = 9568;

/// Where node `i` is asked to serve metrics: with `fixed` (the demo's
/// entry port was given) `127.0.0.1:9568 + i`, which the node replaces by
/// a free port when it is taken; without (`--port 0`: free ports for
/// everything) port 0. The node says which port it got.
fn metrics_addr(i: usize, fixed: bool) -> std::net::SocketAddr {
    let port = if fixed {
        METRICS_BASE.saturating_add(i as u16)
    } else {
        0
    };
    ([127, 0, 0, 1], port).into()
}

/// `~/.clustertop.demos/PID.targets.json`: the demo's nodes as Prometheus
/// file-based service discovery targets, each with a `node` label
/// (removed when the demo stops, which drops the targets from Prometheus).
#[derive(Debug)]
pub(crate) struct TargetsFile {
    path: std::path::PathBuf,
}

impl TargetsFile {
    /// Where this demo's file goes: beside its demo file, in
    /// `~/.clustertop.demos/`.
    pub(crate) fn path() -> Option<std::path::PathBuf> {
        Some(demos_dir()?.join(format!("{}.targets.json", std::process::id())))
    }

    fn write(names: &[String], metrics: &[std::net::SocketAddr]) -> Option<TargetsFile> {
        make_demos_dir()?;
        let path = TargetsFile::path()?;
        let groups: Vec<serde_json::Value> = names
            .iter()
            .zip(metrics)
            .map(|(name, addr)| {
                serde_json::json!({
                    "targets": [addr.to_string()],
                    "labels": { "node": name, "cluster": "clustertop-demo" },
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&groups).ok()?;
        // Written whole, then renamed: Prometheus never reads half a file.
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text).ok()?;
        std::fs::rename(&tmp, &path).ok()?;
        Some(TargetsFile { path })
    }

    /// Where the file is, for the user.
    pub(crate) fn shown(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for TargetsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Where the demo's nodes export over OTLP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Collector {
    /// A collector of every signal (an OpenTelemetry Collector): traces,
    /// metrics and logs.
    All(String),
    /// A trace store (Jaeger): traces only.
    Traces(String),
}

/// The folder where each running demo leaves its file (mode 0700).
fn demos_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".clustertop.demos"))
}

/// Creates the demos' folder if it is not there.
fn make_demos_dir() -> Option<std::path::PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = demos_dir()?;
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    dir.is_dir().then_some(dir)
}

/// `~/.clustertop.demos/PID`: where a running demo leaves its entry
/// address, cookie and process id for the other commands (mode 0600;
/// removed when the demo stops). One file per demo, so two demos never
/// overwrite or remove each other's.
#[derive(Debug)]
pub(crate) struct DemoFile {
    path: std::path::PathBuf,
}

/// What a demo's file says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Running {
    entry: String,
    cookie: String,
    /// Every node's address, the entry first.
    addrs: Vec<String>,
    started: std::time::SystemTime,
}

impl DemoFile {
    /// Writes this demo's file (its nodes' addresses, the entry first);
    /// `None` (and no file) when there is no home or it cannot be written.
    fn write(addrs: &[String], cookie: &str) -> Option<DemoFile> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = make_demos_dir()?.join(std::process::id().to_string());
        // A file of this process id is a dead demo's: this one took its id.
        let _ = std::fs::remove_file(&path);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .ok()?;
        let entry = addrs.first()?;
        writeln!(
            f,
            "{entry}\n{cookie}\n{}\n{}",
            std::process::id(),
            addrs.join(",")
        )
        .ok()?;
        Some(DemoFile { path })
    }

    /// The demos running now, newest first: a file left by a demo that
    /// was killed is ignored.
    fn running() -> Vec<Running> {
        let Some(Ok(dir)) = demos_dir().map(std::fs::read_dir) else {
            return Vec::new();
        };
        let mut all: Vec<Running> = dir
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().contains('.'))
            .filter_map(|e| {
                // Refused, as a cookie file is, when others may read it.
                if !private(&e.path()) {
                    eprintln!(
                        "clustertop: ignoring {}: others may read it (chmod 600 it, or stop that demo)",
                        e.path().display()
                    );
                    return None;
                }
                let text = std::fs::read_to_string(e.path()).ok()?;
                let mut lines = text.lines();
                let (entry, cookie) = (lines.next()?.to_owned(), lines.next()?.to_owned());
                let pid = lines.next()?.parse::<u32>().ok()?;
                if !alive(pid) {
                    return None;
                }
                let addrs = lines
                    .next()
                    .map(|l| l.split(',').map(str::to_owned).collect())
                    .unwrap_or_else(|| vec![entry.clone()]);
                let started = e.metadata().and_then(|m| m.modified()).ok()?;
                Some(Running {
                    entry,
                    cookie,
                    addrs,
                    started,
                })
            })
            .collect();
        all.sort_by_key(|r| std::cmp::Reverse(r.started));
        all
    }

    /// The entry address of the running demo (the newest, when several
    /// run).
    pub(crate) fn entry() -> Option<String> {
        DemoFile::running().into_iter().next().map(|r| r.entry)
    }

    /// The other nodes of the running demo whose entry node is `addr`:
    /// where to attach when it does not answer.
    pub(crate) fn others_of(addr: &str) -> Vec<String> {
        DemoFile::running()
            .into_iter()
            .find(|r| r.entry == addr)
            .map(|r| r.addrs.into_iter().filter(|a| a != addr).collect())
            .unwrap_or_default()
    }

    /// The cookie of the running demo whose entry node is `addr`.
    pub(crate) fn cookie_for(addr: &str) -> Option<String> {
        DemoFile::running()
            .into_iter()
            .find(|r| r.entry == addr)
            .map(|r| r.cookie)
    }

    /// Where the file is, for the user.
    pub(crate) fn shown(&self) -> String {
        self.path.display().to_string()
    }
}

/// Whether only its owner may read or write `path` (mode 0600 or less).
fn private(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 == 0)
}

/// Whether the process `pid` is alive.
fn alive(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    }
    #[cfg(not(target_os = "linux"))]
    {
        std::process::Command::new("kill")
            .args(["-0", &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for DemoFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
    }
}

/// Why a demo cluster could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DemoError {
    /// No randomness for the demo's cookie.
    #[error("cannot make a cookie for the demo: {0}")]
    Cookie(#[source] CookieError),
    /// The path of this program, to start the nodes with.
    #[error("cannot find this program to start the demo nodes: {0}")]
    CurrentExe(#[source] std::io::Error),
    /// A node's process could not be started.
    #[error("cannot start demo node {name}: {source}")]
    Spawn {
        /// The node.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A node started but never said where it listens.
    #[error("demo node {name} did not start (is 127.0.0.1:{port} in use?)")]
    NoListen {
        /// The node.
        name: String,
        /// The port asked for.
        port: u16,
    },
    /// This build has no demo node (built without the `demo` feature).
    #[error("this clustertop was built without the demo (feature `demo`)")]
    NotBuilt,
}
