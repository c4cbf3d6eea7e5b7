//! The view (app, state, view and the rest of `src/`) speaks only to the
//! attach client and the protocol: it never names the runtime, the agent,
//! the exporters or the examples. The one exception is the `clustertop
//! node` command in `cli.rs`, which runs the examples package's demo node
//! (feature `demo`), so that one installed binary runs `clustertop demo`.

use std::path::Path;

const FORBIDDEN: &[&str] = &[
    "clustertop_runtime",
    "clustertop_agent",
    "clustertop_otel",
    "clustertop_examples",
];

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_view_links_only_the_client_and_the_protocol() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    assert!(all.len() > 10);
    let mut offences = Vec::new();
    for path in all {
        let rel = path.strip_prefix(&src).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for name in FORBIDDEN {
                let allowed = rel == Path::new("cli.rs") && *name == "clustertop_examples";
                if code.contains(name) && !allowed {
                    offences.push(format!("{}:{}: {}", rel.display(), i + 1, line.trim()));
                }
            }
        }
    }
    assert!(offences.is_empty(), "{}", offences.join("\n"));

    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap();
    for crate_name in ["clustertop-runtime", "clustertop-agent", "clustertop-otel"] {
        assert!(
            !deps.contains(crate_name),
            "tui/Cargo.toml depends on {crate_name}"
        );
    }
    assert!(
        deps.lines()
            .any(|l| l.starts_with("clustertop-examples") && l.contains("optional = true")),
        "the examples package is an optional dependency (feature `demo`)"
    );
}
