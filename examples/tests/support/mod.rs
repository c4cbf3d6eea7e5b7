//! Example nodes as OS processes: start one, read its output lines, and
//! kill it when the test is done with it.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const COOKIE: &str = "examples-test-cookie";
pub const LIMIT: Duration = Duration::from_secs(30);

/// A running example node.
pub struct Proc {
    pub name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
    /// Where it listens.
    pub addr: String,
}

impl Proc {
    /// Starts `bin` (a path from `env!("CARGO_BIN_EXE_…")`) as node `name`
    /// with `args` (and no metrics endpoint unless `args` asks for one),
    /// and waits for its `listening` line.
    pub fn start(bin: &str, name: &str, args: &[&str]) -> Proc {
        let metrics: &[&str] = if args.contains(&"--metrics") {
            &[]
        } else {
            &["--metrics", "off"]
        };
        let mut child = Command::new(bin)
            .args(["--name", name, "--tick-ms", "1000"])
            .args(metrics)
            .args(args)
            .env("CLUSTERTOP_COOKIE", COOKIE)
            .env("RUST_LOG", "warn")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin}: {e}"));
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = Proc {
            name: name.to_owned(),
            child,
            lines,
            seen: Vec::new(),
            addr: String::new(),
        };
        let line = p.wait_line("its listening line", |l| l.starts_with("listening "));
        p.addr = line["listening ".len()..].to_owned();
        p
    }

    /// Waits for a line for which `want` holds (lines already seen count).
    pub fn wait_line(&mut self, what: &str, mut want: impl FnMut(&str) -> bool) -> String {
        if let Some(l) = self.seen.iter().find(|l| want(l)) {
            return l.clone();
        }
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "{}: no line with {what} in {LIMIT:?}; its output:\n{}",
                    self.name,
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Every line for which `want` holds, among those read so far.
    pub fn lines_with(&self, want: impl Fn(&str) -> bool) -> Vec<String> {
        self.seen.iter().filter(|l| want(l)).cloned().collect()
    }

    /// Whether the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("waitable").is_none()
    }

    /// Waits (up to `LIMIT`) for the process to exit by itself.
    pub fn wait_exit(&mut self, what: &str) -> std::process::ExitStatus {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("waitable") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{}: still running {LIMIT:?} after {what}; its output:\n{}",
                self.name,
                self.seen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the process with SIGTERM and waits for its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("reaped")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}
