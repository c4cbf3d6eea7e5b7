//! The runtime's layers point one way, and its folders show them: the
//! process core (`core/`: ids, mailbox, processes, signals, registry, node,
//! introspection, GenServer, supervisors) never names the distribution
//! layer. Distribution (`dist/`) builds on the core and implements the
//! core's `transport` traits; `start.rs` (the composition root), `lib.rs`,
//! `fuzzing.rs` and the binaries see both.
//!
//! Above both, the application layer (`app/`: PubSub, replicated CRDTs,
//! Presence) uses only the crate's public API, as a library outside the
//! crate would, and nothing below it names it.
//!
//! This reads the sources, so a new import from core into `dist`, or from
//! `app` into a private item, fails here with the file and line that made
//! it.

use std::path::Path;

/// Files above or inside the distribution layer, relative to `src/`:
/// everything outside the process core's folder (`core/`, `core.rs`).
fn may_name_dist(rel: &Path) -> bool {
    !(rel.starts_with("core") || rel == Path::new("core.rs"))
}

/// What names the distribution layer in code: its module path, its
/// node accessor and its types.
const FORBIDDEN: &[&str] = &[
    "dist::",
    ".dist()",
    ".dist_layer()",
    "Dist>",
    "Dist,",
    "Dist;",
    "Dist ",
];

#[test]
fn the_process_core_never_names_the_distribution_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = clustertop_testkit::rust_files(&src);
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
        "use crate::dist::frame::Frame;",
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

fn is_app(rel: &Path) -> bool {
    rel.starts_with("app") || rel == Path::new("app.rs")
}

/// The names `lib.rs` makes public at the crate root.
fn public_root_names(lib: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut statements = lib.split(';');
    for stmt in statements.by_ref() {
        let stmt = stmt
            .lines()
            .filter(|l| !l.trim_start().starts_with("//") && !l.trim_start().starts_with("#"))
            .collect::<Vec<_>>()
            .join(" ");
        let stmt = stmt.trim();
        if let Some(m) = stmt.strip_prefix("pub mod ") {
            names.push(m.trim().to_owned());
        } else if let Some(u) = stmt.strip_prefix("pub use ") {
            let list = match (u.find('{'), u.rfind('}')) {
                (Some(a), Some(b)) => u[a + 1..b].to_owned(),
                _ => u.rsplit("::").next().unwrap_or("").to_owned(),
            };
            names.extend(
                list.split(',')
                    .map(|n| {
                        n.trim()
                            .rsplit(" as ")
                            .next()
                            .unwrap_or("")
                            .trim()
                            .to_owned()
                    })
                    .filter(|n| !n.is_empty()),
            );
        }
    }
    names
}

/// The first path segment of each item a `crate::` path names on `line`:
/// `crate::Node` and `crate::{Node, Pid}` give the names, `crate::dist::X`
/// gives `dist` and, in `.1`, `X` (or the items of `crate::dist::{X, Y}`).
fn crate_paths(line: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        for (head, tail) in split_path(rest) {
            out.push((head, tail));
        }
    }
    out
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

fn braced(s: &str) -> &str {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &s[1..i];
                }
            }
            _ => {}
        }
    }
    &s[1..]
}

fn top_level_items(list: &str) -> Vec<&str> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in list.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(list[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(list[start..].trim());
    items.into_iter().filter(|s| !s.is_empty()).collect()
}

fn split_path(s: &str) -> Vec<(String, Vec<String>)> {
    if s.starts_with('{') {
        return top_level_items(braced(s))
            .into_iter()
            .flat_map(split_path)
            .collect();
    }
    let head = ident(s).to_owned();
    let after = &s[head.len()..];
    let tail = match after.strip_prefix("::") {
        Some(t) if t.starts_with('{') => top_level_items(braced(t))
            .into_iter()
            .map(|x| ident(x).to_owned())
            .collect(),
        Some(t) => vec![ident(t).to_owned()],
        None => Vec::new(),
    };
    vec![(head, tail)]
}

/// Whether module `m` (a public module of the crate) makes `item` public.
fn module_exports(src: &Path, m: &str, item: &str) -> bool {
    let text = std::fs::read_to_string(src.join(format!("{m}.rs"))).unwrap_or_default();
    let declared = [
        "struct", "enum", "trait", "fn", "type", "mod", "const", "static",
    ]
    .iter()
    .flat_map(|kind| {
        [
            format!("pub {kind} {item}"),
            format!("pub async {kind} {item}"),
        ]
    })
    .any(|decl| {
        text.match_indices(&decl).any(|(at, _)| {
            // The whole name, not a prefix of a longer one.
            text[at + decl.len()..]
                .chars()
                .next()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
        })
    });
    let reexported = text
        .split(';')
        .filter(|stmt| stmt.trim_start().starts_with("pub use "))
        .any(|stmt| {
            stmt.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|w| w == item)
        });
    declared || reexported
}

/// Accessors that are `pub(crate)` on public types.
const PRIVATE_ACCESSORS: &[&str] = &[
    ".dist_layer()",
    ".layer()",
    ".transport()",
    ".clock()",
    ".core()",
];

#[test]
fn the_application_layer_uses_only_the_public_api() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let public = public_root_names(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    assert!(public.iter().any(|n| n == "Node") && public.iter().any(|n| n == "dist"));
    let files = clustertop_testkit::rust_files(&src);
    let (mut app_files, mut offences) = (0, Vec::new());
    for path in files {
        let rel = path.strip_prefix(&src).expect("under src").to_owned();
        let text = std::fs::read_to_string(&path).expect("read source");
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let at = format!("{}:{}: ", rel.display(), i + 1);
            if !is_app(&rel) {
                if rel != Path::new("lib.rs") && code.contains("app::") {
                    offences.push(format!("{at}names the application layer: {}", line.trim()));
                }
                continue;
            }
            for (head, items) in crate_paths(code) {
                if head == "app" || head == "self" {
                    continue;
                }
                if !public.contains(&head) {
                    offences.push(format!(
                        "{at}`crate::{head}` is not public: {}",
                        line.trim()
                    ));
                    continue;
                }
                let is_module = src.join(format!("{head}.rs")).exists();
                for item in items
                    .iter()
                    .filter(|i| is_module && !i.is_empty() && *i != "self")
                {
                    if !module_exports(&src, &head, item) {
                        offences.push(format!(
                            "{at}`crate::{head}::{item}` is not public: {}",
                            line.trim()
                        ));
                    }
                }
            }
            if let Some(a) = PRIVATE_ACCESSORS.iter().find(|a| code.contains(*a)) {
                offences.push(format!("{at}uses the crate-private {a}: {}", line.trim()));
            }
        }
        if is_app(&rel) {
            app_files += 1;
        }
    }
    assert!(
        app_files >= 2,
        "expected the application layer under src/app"
    );
    assert!(
        offences.is_empty(),
        "the application layer must use the public API only, and nothing below may use it:\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_public_api_check_parses_the_shapes_of_a_crate_path() {
    assert_eq!(
        crate_paths("use crate::{Node, dist::{RemoteMessage, X}, Pid};"),
        vec![
            ("Node".to_owned(), vec![]),
            (
                "dist".to_owned(),
                vec!["RemoteMessage".to_owned(), "X".to_owned()]
            ),
            ("Pid".to_owned(), vec![]),
        ]
    );
    assert_eq!(
        crate_paths("let x = crate::trace::wants_span(a) && crate::Node::x();"),
        vec![
            ("trace".to_owned(), vec!["wants_span".to_owned()]),
            ("Node".to_owned(), vec!["x".to_owned()])
        ]
    );
    let public = public_root_names(
        "mod a;\npub mod b;\npub use c::{D, E as F};\npub use g::H;\n#[doc(hidden)]\npub use i::J;",
    );
    assert_eq!(public, ["b", "D", "F", "H", "J"]);
}

/// The groups of files that still import each other around a circle,
/// each to be broken; this list may only shrink. A circle found that is
/// not inside one of these groups fails the test below.
///
/// The process core's, and why it stays: the core's types refer to each
/// other. A node holds its process table, whose entries are processes; a
/// process's record holds its node (its exit path, its context's
/// `node()`, every spawn from inside it); a pid routes through the
/// process's record and answers `node()`. Below this circle stand the
/// table and the registry's maps (generic over the record they store) and
/// the transport seam (which speaks in ids, never the node); breaking what
/// is left would take either erasing the record's type in the table (a
/// downcast per lookup) or one file holding every one of these types, so
/// that the dependency moves into method calls no import shows.
const KNOWN_CIRCLES: &[(&str, &[&str])] = &[(
    "runtime",
    &[
        "core/node.rs",
        "core/pid.rs",
        "core/process/context.rs",
        "core/process/exit_signal.rs",
        "core/process/relations.rs",
        "core/process.rs",
    ],
)];

/// No two files of a layer import each other, directly or around a longer
/// circle (a file may use its own submodules), in the runtime and in every
/// crate above it: a circle is where a change to one file forces a change
/// to another and back, and where a new subsystem finds no one place.
#[test]
fn no_import_circles_between_files() {
    use clustertop_testkit::imports::ImportGraph;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    let mut files = 0;
    for krate in [
        "runtime", "crdt", "proto", "otel", "agent", "client", "beam", "tui", "examples",
    ] {
        let graph = ImportGraph::read(&root.join(krate).join("src"));
        files += graph.files().count();
        for group in graph.cycles(|_| true) {
            let known = KNOWN_CIRCLES.iter().any(|(k, listed)| {
                *k == krate
                    && group
                        .iter()
                        .all(|f| listed.iter().any(|l| Path::new(l) == f))
            });
            if known {
                continue;
            }
            let why: Vec<String> = graph
                .explain(&group)
                .iter()
                .map(|i| {
                    format!(
                        "    {krate}/src/{}:{} names {} ({})",
                        i.from.display(),
                        i.line,
                        i.to.display(),
                        i.path
                    )
                })
                .collect();
            found.push(format!(
                "{krate}: {:?}\n{}",
                group
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>(),
                why.join("\n")
            ));
        }
    }
    assert!(
        files > 150,
        "expected the workspace's sources, read {files} files"
    );
    assert!(
        found.is_empty(),
        "files that import each other around a circle:\n{}",
        found.join("\n")
    );
}

/// No function of the distribution layer or the TUI is over 120 lines: a
/// session loop that knows every frame, or a render that draws every
/// panel, is where the next change lands in the wrong place.
#[test]
fn no_function_over_120_lines_in_dist_or_the_tui() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for tree in ["runtime/src/dist", "runtime/src/dist.rs", "tui/src"] {
        for f in clustertop_testkit::length::longer_than(&root.join(tree), 120) {
            found.push(format!(
                "{tree}/{}:{} fn {} is {} lines",
                f.file.display(),
                f.line,
                f.name,
                f.lines
            ));
        }
    }
    assert!(
        found.is_empty(),
        "functions over 120 lines:\n{}",
        found.join("\n")
    );
}

/// `Node` is a thin handle: at most 25 public functions of its own, the
/// rest behind its sub-handles by concern (`dist()`, `global()`,
/// `groups()`, `introspect()`), as tokio's handles are.
#[test]
fn node_keeps_at_most_25_public_functions() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = clustertop_testkit::rust_files(&src);
    let mut found = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read source");
        let mut inside = false;
        for line in text.lines() {
            if line == "impl Node {" || line == "impl crate::Node {" {
                inside = true;
            } else if inside && line == "}" {
                inside = false;
            } else if inside
                && let Some(sig) = line
                    .strip_prefix("    pub fn ")
                    .or_else(|| line.strip_prefix("    pub async fn "))
            {
                let name: String = sig
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.push(format!(
                    "{}: {name}",
                    path.strip_prefix(&src).unwrap_or(&path).display()
                ));
            }
        }
    }
    assert!(
        found.len() >= 10,
        "expected Node's functions, found {found:?}"
    );
    assert!(
        found.len() <= 25,
        "Node has {} public functions:\n{}",
        found.len(),
        found.join("\n")
    );
}

/// The distribution layer never edits a process's relations or delivers
/// an exit itself: what arrives from other nodes goes through the core's
/// entry points (`transport::inbound`), so the rules of links, monitors
/// and global names live in one place.
#[test]
fn distribution_changes_processes_only_through_the_seam() {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/dist");
    let files = clustertop_testkit::rust_files(&dist);
    let mut offences = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read source");
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in [
                "Relation::",
                "deliver_exit",
                ".rel.",
                "push_system(SystemMsg::Down",
            ] {
                if code.contains(word) {
                    offences.push(format!(
                        "dist/{}:{}: {}",
                        path.strip_prefix(&dist).unwrap_or(path).display(),
                        i + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        files.len() > 10,
        "expected dist's files, read {}",
        files.len()
    );
    assert!(
        offences.is_empty(),
        "the distribution layer reaches into a process:\n{}",
        offences.join("\n")
    );
}
