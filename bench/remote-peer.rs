//! What the Rust peers' remote programs (`ractor-remote/`,
//! `kameo-remote/`) share: the command line, the second node's OS
//! process, and the result lines. Each program includes this file as a
//! module (`#[path]`); they are packages of their own, outside the
//! workspace, so there is no crate to share it through.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};

/// What a peer program was asked to run.
pub enum Run {
    /// The second node, until killed; its arguments.
    Serve(Vec<String>),
    /// remote-oneway.
    Oneway,
    /// remote-bulk.
    Bulk,
    /// remote-call-rtt.
    CallRtt,
}

/// Reads the command line of `program`: the run and `--quick`; the exit
/// code on a bad one (after saying why).
pub fn args(program: &str) -> Result<(Run, bool), ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mut words = args.iter().filter(|a| !a.starts_with("--"));
    let run = match words.next().map(String::as_str) {
        Some("serve") => Run::Serve(words.cloned().collect()),
        Some("remote-oneway") => Run::Oneway,
        Some("remote-bulk") => Run::Bulk,
        Some("remote-call-rtt") => Run::CallRtt,
        Some(other) => {
            eprintln!("{program} does not run {other}");
            return Err(ExitCode::from(3));
        }
        None => {
            eprintln!("usage: {program} remote-oneway|remote-bulk|remote-call-rtt [--quick]");
            return Err(ExitCode::from(2));
        }
    };
    Ok((run, quick))
}

/// The second node's OS process, killed when dropped.
pub struct Server(Child);

impl Server {
    /// Starts this program as the second node (`serve` with `args`) and
    /// returns it with what it printed after `listening ` once ready.
    pub fn start(args: &[String]) -> (Server, String) {
        let exe = std::env::current_exe().expect("own path");
        let mut child = Command::new(exe)
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("server process");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("its first line");
        let said = line.trim().trim_start_matches("listening ").to_owned();
        (Server(child), said)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Prints one result line with the keys of `clustertop-bench --json`.
fn line(
    runtime: &str,
    scenario: &str,
    params: &[(&str, serde_json::Value)],
    figures: &[(&str, f64)],
) {
    let mut m = serde_json::Map::new();
    m.insert("scenario".into(), scenario.into());
    m.insert("runtime".into(), runtime.into());
    for (k, v) in params {
        m.insert((*k).into(), v.clone());
    }
    for (k, v) in figures {
        m.insert((*k).into(), (*v).into());
    }
    println!("{}", serde_json::Value::Object(m));
}

/// Prints a line of remote-oneway: `total` messages of 16 bytes from
/// `senders` senders in `secs`.
pub fn oneway_line(runtime: &str, senders: u64, total: u64, secs: f64) {
    line(
        runtime,
        "remote-oneway",
        &[
            ("senders", senders.into()),
            ("messages", total.into()),
            ("payload_bytes", 16.into()),
        ],
        &[("msgs_per_s", total as f64 / secs), ("seconds", secs)],
    );
}

/// Prints remote-bulk's line: `total` messages of 1 MiB in `secs`.
pub fn bulk_line(runtime: &str, total: u64, secs: f64) {
    let mb = total as f64 * 1.048576;
    line(
        runtime,
        "remote-bulk",
        &[
            ("messages", total.into()),
            ("payload_bytes", (1u64 << 20).into()),
        ],
        &[("mb_per_s", mb / secs), ("seconds", secs)],
    );
}

/// Prints remote-call-rtt's line from the round trips, µs.
pub fn rtt_line(runtime: &str, mut us: Vec<f64>) {
    us.sort_by(f64::total_cmp);
    let at = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize];
    line(
        runtime,
        "remote-call-rtt",
        &[("calls", us.len().into())],
        &[
            ("p99_us", at(0.99)),
            ("p50_us", at(0.5)),
            ("p999_us", at(0.999)),
            ("max_us", at(1.0)),
        ],
    );
}

/// The multi-thread tokio runtime the peers run on (as many workers as
/// cores, as ours).
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
