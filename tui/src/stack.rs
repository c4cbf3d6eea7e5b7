//! `clustertop demo --stack`: Jaeger and Prometheus started beside the
//! demo and wired to it, so a new user sees the cluster's traces and
//! metrics with one command.
//!
//! A flag of `demo` rather than a script: the demo already owns its child
//! processes (stopped on quit, however the view ends), knows its nodes'
//! metrics ports and its discovery file, and must know the collector's
//! address before it starts its nodes; a script would repeat all of that.
//!
//! - **Jaeger**: `JAEGER_BIN`, else `jaeger` on `PATH`, else the one
//!   `.ci/run` builds (`~/.cache/clustertop/jaeger-v1.76.0`). Its
//!   all-in-one defaults: OTLP gRPC on 4317, the UI on 16686. A Jaeger
//!   already answering on 16686 is used as it is.
//! - **Prometheus**: `PROMETHEUS_BIN`, else `prometheus` on `PATH`
//!   (Debian's package), with a configuration in a temporary directory
//!   that reads the demo's discovery file; the UI on 9090, or a free port
//!   when 9090 is taken.
//!
//! A program that is missing or does not come up is one line saying how to
//! get it, and the demo goes on without it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Jaeger release `.ci/run` builds.
pub(crate) const JAEGER_VERSION: &str = "v1.76.0";
/// Jaeger's OTLP gRPC receiver (its all-in-one default).
pub(crate) const JAEGER_OTLP: &str = "http://127.0.0.1:4317";
/// Jaeger's UI and query API port (its all-in-one default).
pub(crate) const JAEGER_UI_PORT: u16 = 16686;
/// The Prometheus UI port, when free.
pub(crate) const PROMETHEUS_PORT: u16 = 9090;
/// How long a program has to come up.
const READY: Duration = Duration::from_secs(30);

/// The running stack: stopped (killed and reaped) when dropped.
#[derive(Debug, Default)]
pub(crate) struct Stack {
    children: Vec<Child>,
    /// Temporary files of Prometheus (its configuration and data).
    _dir: Option<tempfile::TempDir>,
    /// Where traces go, when Jaeger is up.
    pub(crate) otlp: Option<String>,
    /// One line per program: its URL, or why it is not there.
    pub(crate) lines: Vec<String>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
    }
}

/// A plain HTTP/1.0 GET on 127.0.0.1; whether the answer is a 200.
fn answers(port: u16, path: &str) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}

/// Polls until `port` answers `path` with a 200, or `child` exits, or
/// [`READY`] passes.
fn wait_ready(child: &mut Child, port: u16, path: &str) -> bool {
    let deadline = Instant::now() + READY;
    while Instant::now() < deadline {
        if answers(port, path) {
            return true;
        }
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// `name` as a program: `env` when set, else on `PATH`, else `fallback`.
fn find(env: &str, name: &str, fallback: Option<PathBuf>) -> Option<PathBuf> {
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if let Some(p) = std::env::var_os(env).map(PathBuf::from) {
        return executable(&p).then_some(p);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .chain(fallback)
        .find(|p| executable(p))
}

fn free_port(preferred: u16) -> u16 {
    let bind = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).and_then(|l| l.local_addr());
    bind(preferred)
        .or_else(|_| bind(0))
        .map_or(preferred, |a| a.port())
}

impl Stack {
    /// Starts `cmd` with no terminal I/O, keeps it (stopped with the
    /// stack), and says whether it came up answering `path` on `port`;
    /// `None`, with a line saying why, when it could not start.
    fn launch(&mut self, what: &str, cmd: &mut Command, port: u16, path: &str) -> Option<bool> {
        let spawned = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                self.lines.push(format!(
                    "{what}: cannot start {}: {e}",
                    cmd.get_program().to_string_lossy()
                ));
                return None;
            }
        };
        let ready = wait_ready(&mut child, port, path);
        self.children.push(child);
        Some(ready)
    }

    /// Starts Jaeger and Prometheus (each when found), the latter reading
    /// the demo's service-discovery file `targets`.
    pub(crate) fn start(targets: &Path) -> Stack {
        let mut stack = Stack::default();
        stack.start_jaeger();
        stack.start_prometheus(targets);
        stack
    }

    fn start_jaeger(&mut self) {
        let url = format!("http://127.0.0.1:{JAEGER_UI_PORT}");
        if answers(JAEGER_UI_PORT, "/api/services") {
            self.otlp = Some(JAEGER_OTLP.into());
            self.lines.push(format!(
                "jaeger: {url} (already running; traces go to {JAEGER_OTLP})"
            ));
            return;
        }
        let built = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(format!(".cache/clustertop/jaeger-{JAEGER_VERSION}")));
        let Some(bin) = find("JAEGER_BIN", "jaeger", built) else {
            self.lines.push(format!(
                "jaeger: not found (set JAEGER_BIN, or build it: `go build ./cmd/jaeger` in github.com/jaegertracing/jaeger@{JAEGER_VERSION}, as .ci/run does); going on without traces"
            ));
            return;
        };
        let Some(ready) = self.launch(
            "jaeger",
            &mut Command::new(&bin),
            JAEGER_UI_PORT,
            "/api/services",
        ) else {
            return;
        };
        if ready {
            self.otlp = Some(JAEGER_OTLP.into());
            self.lines.push(format!(
                "jaeger: {url} (find a chat message: service demo-1@localhost, operation handle_cast)"
            ));
        } else {
            self.lines.push(format!(
                "jaeger: {} did not come up on ports 4317 and {JAEGER_UI_PORT} (are they taken?); going on without traces",
                bin.display()
            ));
        }
    }

    fn start_prometheus(&mut self, targets: &Path) {
        let Some(bin) = find("PROMETHEUS_BIN", "prometheus", None) else {
            self.lines.push(
                "prometheus: not found (install it: `sudo apt-get install prometheus`, or set PROMETHEUS_BIN); going on without it"
                    .into(),
            );
            return;
        };
        let dir = match tempfile::Builder::new()
            .prefix("clustertop-prometheus")
            .tempdir()
        {
            Ok(d) => d,
            Err(e) => {
                self.lines
                    .push(format!("prometheus: no temporary directory: {e}"));
                return;
            }
        };
        let config = dir.path().join("prometheus.yml");
        let text = format!(
            "global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: clustertop-demo\n    file_sd_configs: [{{ files: ['{}'] }}]\n",
            targets.display()
        );
        if let Err(e) = std::fs::write(&config, text) {
            self.lines
                .push(format!("prometheus: cannot write its configuration: {e}"));
            return;
        }
        let port = free_port(PROMETHEUS_PORT);
        let mut cmd = Command::new(&bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn");
        let Some(ready) = self.launch("prometheus", &mut cmd, port, "/-/ready") else {
            return;
        };
        self._dir = Some(dir);
        self.lines.push(if ready {
            format!(
                "prometheus: http://127.0.0.1:{port} (query: up{{cluster=\"clustertop-demo\"}})"
            )
        } else {
            format!(
                "prometheus: {} did not come up on port {port}; going on without it",
                bin.display()
            )
        });
    }
}
