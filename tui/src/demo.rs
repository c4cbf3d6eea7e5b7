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
//! `~/.clustertop.demo` (mode 0600, removed when the demo stops), where
//! `clustertop snapshot`, `logs` and the view find them when they attach
//! to that address without a cookie of their own.

use clustertop_client::{COOKIE_ENV, CookieError};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running demo cluster.
#[derive(Debug)]
pub(crate) struct Demo {
    children: Vec<Child>,
    /// The first node's address, where clients attach.
    pub(crate) entry: String,
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
    /// (0: any free port). With `otlp`, every node exports its traces to
    /// that collector.
    ///
    /// # Errors
    /// A line saying which node failed to start.
    pub(crate) fn start(
        nodes: usize,
        port: u16,
        cookie: &str,
        otlp: Option<&str>,
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
                // Traces only: a trace collector such as Jaeger refuses
                // metrics and logs, and an export it refuses fails for ever.
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
            if let Some(url) = otlp {
                cmd.env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url);
            }
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
                demo.entry = addr;
            }
        }
        demo.file = DemoFile::write(&demo.entry, cookie);
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

/// `~/.clustertop.demo-targets.json`: the demo's nodes as Prometheus
/// file-based service discovery targets, each with a `node` label
/// (removed when the demo stops, which drops the targets from Prometheus).
#[derive(Debug)]
pub(crate) struct TargetsFile {
    path: std::path::PathBuf,
}

impl TargetsFile {
    /// Where the file goes: in the home directory.
    pub(crate) fn path() -> Option<std::path::PathBuf> {
        Some(
            std::path::PathBuf::from(std::env::var_os("HOME")?)
                .join(".clustertop.demo-targets.json"),
        )
    }

    fn write(names: &[String], metrics: &[std::net::SocketAddr]) -> Option<TargetsFile> {
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

/// `~/.clustertop.demo`: where a running demo leaves its entry address,
/// cookie and process id for the other commands (mode 0600; removed when
/// the demo stops).
#[derive(Debug)]
pub(crate) struct DemoFile {
    path: std::path::PathBuf,
}

impl DemoFile {
    fn path() -> Option<std::path::PathBuf> {
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".clustertop.demo"))
    }

    /// Writes the file; `None` (and no file) when there is no home or it
    /// cannot be written.
    fn write(entry: &str, cookie: &str) -> Option<DemoFile> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = DemoFile::path()?;
        let _ = std::fs::remove_file(&path);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .ok()?;
        writeln!(f, "{entry}\n{cookie}\n{}", std::process::id()).ok()?;
        Some(DemoFile { path })
    }

    /// The entry address and cookie of the demo that is running, if one
    /// is: a file left by a demo that was killed is ignored.
    fn running() -> Option<(String, String)> {
        let text = std::fs::read_to_string(DemoFile::path()?).ok()?;
        let mut lines = text.lines();
        let (entry, cookie) = (lines.next()?.to_owned(), lines.next()?.to_owned());
        let alive = match lines.next().and_then(|p| p.parse::<u32>().ok()) {
            #[cfg(target_os = "linux")]
            Some(pid) => std::path::Path::new(&format!("/proc/{pid}")).exists(),
            #[cfg(not(target_os = "linux"))]
            Some(_) => true,
            None => false,
        };
        alive.then_some((entry, cookie))
    }

    /// The entry address of the running demo.
    pub(crate) fn entry() -> Option<String> {
        DemoFile::running().map(|(entry, _)| entry)
    }

    /// The cookie of the running demo whose entry node is `addr`.
    pub(crate) fn cookie_for(addr: &str) -> Option<String> {
        DemoFile::running().and_then(|(entry, cookie)| (entry == addr).then_some(cookie))
    }

    /// Where the file is, for the user.
    pub(crate) fn shown(&self) -> String {
        self.path.display().to_string()
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
