//! The runtime's layers point one way: the process core (ids, mailbox,
//! processes, signals, registry, node, introspection, GenServer,
//! supervisors) never names the distribution layer. Distribution builds on
//! the core and implements the core's `transport` traits; `start.rs` (the
//! composition root), `lib.rs`, `fuzzing.rs` and the binaries see both.
//!
//! This reads the sources, so a new import from core into `dist` fails
//! here with the file and line that made it.

use std::path::{Path, PathBuf};

/// Files above or inside the distribution layer, relative to `src/`.
fn may_name_dist(rel: &Path) -> bool {
    rel.starts_with("dist")
        || rel.starts_with("bin")
        || ["dist.rs", "lib.rs", "start.rs", "fuzzing.rs"]
            .iter()
            .any(|f| rel == Path::new(f))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// What names the distribution layer in code: its module path, its
/// node accessor and its types.
const FORBIDDEN: &[&str] = &["dist::", ".dist()", "Dist>", "Dist,", "Dist;", "Dist "];

#[test]
fn the_process_core_never_names_the_distribution_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut core_files = 0;
    let mut offences = Vec::new();
    for path in files {
        let rel = path.strip_prefix(&src).expect("under src");
        if may_name_dist(rel) {
            continue;
        }
        core_files += 1;
        let text = std::fs::read_to_string(&path).expect("read source");
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if let Some(word) = FORBIDDEN.iter().find(|w| code.contains(*w)) {
                offences.push(format!(
                    "{}:{}: names the distribution layer ({word:?}): {}",
                    rel.display(),
                    i + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        core_files >= 20,
        "expected the core's files under src/, found {core_files}"
    );
    assert!(
        offences.is_empty(),
        "the process core must reach other nodes only through transport.rs:\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_check_sees_an_import_into_the_distribution_layer() {
    // The patterns above must catch the shapes an upward import takes.
    for line in [
        "use crate::dist::proto::Frame;",
        "if let Some(dist) = node.dist() {",
        "dist: Option<Arc<Dist>>,",
        "use super::dist::{Dist, NodeEvent};",
    ] {
        assert!(
            FORBIDDEN.iter().any(|w| line.contains(w)),
            "not caught: {line}"
        );
    }
    assert!(!FORBIDDEN.iter().any(|w| "let distance = 3;".contains(w)));
}
