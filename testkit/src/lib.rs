//! Test helpers shared by every crate of the workspace (a dev-dependency
//! only).
//!
//! # Outside programs
//! A test that talks to an outside program (Prometheus, Jaeger, tmux, erl,
//! chromium) asks [`require_program`] for it. One rule for every crate:
//! when the program is missing, the test prints a skip notice and returns,
//! except under `CI=true`, where it fails — CI installs every program, so
//! a missing one there is a broken setup, never a skip.

use std::path::PathBuf;

pub mod erlang;
pub mod imports;
pub mod length;
#[cfg(feature = "otlp")]
pub mod otlp;

/// Whether the tests run under CI (`CI=true`), where nothing may be
/// skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The outside program a test needs: the path in the environment variable
/// `env` if given and set, else `name` found on `PATH`.
///
/// Returns `None` after printing `SKIP <test>: <name> not found (<install>)`
/// when it is missing.
///
/// # Panics
/// When the program is missing under `CI=true`.
pub fn require_program(
    test: &str,
    name: &str,
    env: Option<&str>,
    install: &str,
) -> Option<PathBuf> {
    let found = find_program(name, env);
    if found.is_none() {
        assert!(
            !in_ci(),
            "{test}: {name} is required under CI=true ({install})"
        );
        eprintln!("SKIP {test}: {name} not found ({install})");
    }
    found
}

/// `name` on `PATH`, or the path in `env` when that variable is set.
pub fn find_program(name: &str, env: Option<&str>) -> Option<PathBuf> {
    if let Some(p) = env.and_then(std::env::var_os) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for a server a
/// test starts on a fixed address, or restarts on the same one).
///
/// The port is below the kernel's ephemeral range: a port from that range
/// (what binding port 0 gives) can be taken by any outgoing connection
/// between this check and the server's bind, and tests that run in
/// parallel make many. Below it, only a server that binds it can take it;
/// the ports given out in one test binary differ from each other.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let high = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .filter(|&first| first > LOW + 1_000)
        .unwrap_or(32_768);
    let span = high - LOW;
    // A different start in each process, so that two test binaries run at
    // once are unlikely to walk the same ports.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id().wrapping_mul(2_654_435_761);
    for _ in 0..span {
        let port = LOW + seed.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let port = u16::try_from(port).expect("below the ephemeral range");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 below {high}");
}

/// A plain HTTP/1.0 GET on 127.0.0.1 (a 5 s read timeout); the body, if
/// the server answered.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}

/// A child process (a server a test started) killed and reaped when
/// dropped, however the test ends.
#[derive(Debug)]
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `signal` (`"TERM"`, `"INT"`, `"HUP"`, …) to `child` and waits up
/// to 10 s for it to exit; kills it if it does not. Returns its status, or
/// `None` if it had to be killed.
pub fn signal_and_wait(
    child: &mut std::process::Child,
    signal: &str,
) -> Option<std::process::ExitStatus> {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// An in-memory writer for log output, cheap to clone (every clone writes
/// to the same buffer): give one to a `tracing` subscriber, read the text.
#[derive(Debug, Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every `.rs` file under `dir` (or `dir` itself, a file), in no set order:
/// what the source-reading checks of the workspace read.
///
/// # Panics
/// When `dir` cannot be read.
pub fn rust_files(dir: &std::path::Path) -> Vec<PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read a source folder") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    if dir.is_file() {
        return vec![dir.to_path_buf()];
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_program_on_path_and_misses_one_that_is_not() {
        assert!(find_program("sh", None).is_some());
        assert!(find_program("no-such-program-clustertop", None).is_none());
    }
}
