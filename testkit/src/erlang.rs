//! Real Erlang nodes for the tests: `erl -sname`, a shared cookie, EPMD
//! (which `erl` starts when it is not running), and the test modules of
//! `testkit/erlang/` (a slow `gen_server` under a supervisor) compiled with
//! `erlc` into a temporary directory, on every node's code path.

use crate::{KillOnDrop, require_program};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The cookie of the test nodes.
pub const COOKIE: &str = "clustertop-beam-test";

/// The host part `erl -sname` gives this machine's nodes.
pub fn short_host() -> String {
    let name =
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "localhost".into());
    name.trim()
        .split('.')
        .next()
        .unwrap_or("localhost")
        .to_owned()
}

/// `erl` and `erlc`, or `None` (a skip notice printed) when they are
/// missing outside CI.
pub fn erlang(test: &str) -> Option<()> {
    require_program(test, "erl", None, "apt-get install erlang-base")?;
    require_program(test, "erlc", None, "apt-get install erlang-base")?;
    Some(())
}

/// The directory holding the compiled test modules (compiled once per
/// test binary).
pub fn code_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("clustertop-beam-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("erlang/slow_server.erl");
        let out = Command::new("erlc")
            .arg("-o")
            .arg(&dir)
            .arg(&src)
            .output()
            .expect("erlc runs");
        assert!(
            out.status.success(),
            "erlc failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
    .clone()
}

/// A running `erl` node, killed on drop.
#[derive(Debug)]
pub struct ErlNode {
    /// `name@host`.
    pub name: String,
    child: Option<KillOnDrop>,
}

impl ErlNode {
    /// Starts `erl -sname <sname>` with the test cookie, running `eval`
    /// once it is up, and waits until EPMD knows it.
    pub fn start(sname: &str, eval: &str) -> ErlNode {
        Self::start_with_cookie(sname, COOKIE, eval)
    }

    /// As [`ErlNode::start`], with another cookie.
    pub fn start_with_cookie(sname: &str, cookie: &str, eval: &str) -> ErlNode {
        Self::start_args(sname, cookie, &["-eval", eval])
    }

    fn start_args(sname: &str, cookie: &str, args: &[&str]) -> ErlNode {
        let child = Command::new("erl")
            .args([
                "-sname",
                sname,
                "-setcookie",
                cookie,
                "-noshell",
                "-noinput",
            ])
            .arg("-pa")
            .arg(code_dir())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("erl starts");
        let node = ErlNode {
            name: format!("{sname}@{}", short_host()),
            child: Some(KillOnDrop(child)),
        };
        let start = Instant::now();
        while !registered(sname) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{} did not register in EPMD",
                node.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        node
    }

    /// Kills the node (as a crash would).
    pub fn kill(&mut self) {
        self.child.take();
    }
}

/// Whether EPMD lists `sname`.
pub fn registered(sname: &str) -> bool {
    let Ok(out) = Command::new("epmd").arg("-names").output() else {
        return false;
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.starts_with(&format!("name {sname} at port")))
}

/// A name unique to this test run.
pub fn unique(base: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{base}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
