//! The import graph between the files of one crate, read from the sources,
//! and its cycles.
//!
//! A file imports another when it names a path into it: `use
//! crate::a::b::X`, `super::c::f()`, a brace group `use super::{c, d::Y}`.
//! A path that ends at an item its file only re-exports (`pub use
//! inner::X`, `pub(crate) use …`) is followed to the file that defines it,
//! so naming `crate::Node` where `lib.rs` re-exports `node::Node` is an
//! import of `node.rs`, not of the crate root.
//!
//! A file may use its own submodules: a path from a file into one of its
//! descendants (`dist.rs` naming `dist/peers.rs`) is no edge, and neither
//! is `self::`. Everything else is: a sibling, a cousin, an ancestor's own
//! items. The layering tests of the workspace's crates use this to hold
//! that no two files of a layer import each other, directly or around a
//! longer circle.
//!
//! This reads text, not a parsed crate: it follows `crate::`, `super::` and
//! `self::` paths and the re-exports above, and does not see a name
//! brought in by a glob (`use super::*`) beyond the module the glob names,
//! nor macros. That is what the workspace's code uses; a file that hides
//! an import from it would be caught in review, not here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One file's import of another: where, and what it names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Import {
    /// The importing file, relative to the crate's `src/`.
    pub from: PathBuf,
    /// The imported file, relative to the crate's `src/`.
    pub to: PathBuf,
    /// 1-based line of the path in `from`.
    pub line: usize,
    /// The path as written.
    pub path: String,
}

/// The files of one crate's `src/` and the imports between them.
#[derive(Debug)]
pub struct ImportGraph {
    /// Every file, keyed by its module path (`["dist", "peers"]`).
    modules: BTreeMap<Vec<String>, PathBuf>,
    /// `from → to → first import`.
    edges: BTreeMap<PathBuf, BTreeMap<PathBuf, Import>>,
}

impl ImportGraph {
    /// Reads every `.rs` file under `src` (a crate's `src/`), leaving out
    /// binaries (`main.rs`, `bin/`), which are crates of their own.
    ///
    /// # Panics
    /// When `src` cannot be read.
    pub fn read(src: &Path) -> ImportGraph {
        let files = crate::rust_files(src);
        let mut modules = BTreeMap::new();
        let mut texts = BTreeMap::new();
        for path in files {
            let rel = path.strip_prefix(src).expect("under src").to_path_buf();
            if rel.starts_with("bin") || rel == Path::new("main.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read source");
            modules.insert(module_path(&rel), rel.clone());
            texts.insert(rel, text);
        }
        let mut graph = ImportGraph {
            modules,
            edges: BTreeMap::new(),
        };
        let parsed: BTreeMap<PathBuf, Vec<Use>> = texts
            .iter()
            .map(|(rel, text)| {
                let mut uses = paths_in(&strip(text));
                for u in &mut uses {
                    let mut scope = module_path(rel);
                    scope.append(&mut u.scope);
                    u.scope = scope;
                }
                (rel.clone(), uses)
            })
            .collect();
        let reexports: BTreeMap<PathBuf, Vec<&Use>> = parsed
            .iter()
            .map(|(rel, uses)| (rel.clone(), uses.iter().filter(|u| u.public).collect()))
            .collect();
        for (rel, uses) in &parsed {
            let here = module_path(rel);
            for u in uses {
                let Some(to) = graph.resolve(u, &reexports, 0) else {
                    continue;
                };
                // The crate root and a file naming its own descendants.
                if here.is_empty() || module_path(&to).starts_with(&here) {
                    continue;
                }
                graph
                    .edges
                    .entry(rel.clone())
                    .or_default()
                    .entry(to.clone())
                    .or_insert_with(|| Import {
                        from: rel.clone(),
                        to,
                        line: u.line,
                        path: u.segments.join("::"),
                    });
            }
        }
        graph
    }

    /// The files read, relative to `src/`.
    pub fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.modules.values()
    }

    /// Every import, in file order.
    pub fn imports(&self) -> impl Iterator<Item = &Import> {
        self.edges.values().flat_map(|m| m.values())
    }

    /// The groups of two or more files that import each other around a
    /// circle (strongly connected components), among the files `keep`
    /// accepts; edges through other files count too. Each group is sorted,
    /// and so is the list.
    pub fn cycles(&self, keep: impl Fn(&Path) -> bool) -> Vec<Vec<PathBuf>> {
        let nodes: Vec<&PathBuf> = self.modules.values().collect();
        let index: BTreeMap<&PathBuf, usize> =
            nodes.iter().enumerate().map(|(i, p)| (*p, i)).collect();
        let adj: Vec<Vec<usize>> = nodes
            .iter()
            .map(|p| {
                self.edges
                    .get(*p)
                    .map(|m| m.keys().filter_map(|t| index.get(t).copied()).collect())
                    .unwrap_or_default()
            })
            .collect();
        let mut out: Vec<Vec<PathBuf>> = tarjan(&adj)
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|c| {
                let mut files: Vec<PathBuf> = c
                    .into_iter()
                    .map(|i| nodes[i].clone())
                    .filter(|p| keep(p))
                    .collect();
                files.sort();
                files
            })
            .filter(|c| c.len() > 1)
            .collect();
        out.sort();
        out
    }

    /// The imports that close the circle among `group` (one from each file
    /// to another file of the group), for a message that names file and
    /// line.
    pub fn explain(&self, group: &[PathBuf]) -> Vec<&Import> {
        let set: BTreeSet<&PathBuf> = group.iter().collect();
        group
            .iter()
            .filter_map(|f| self.edges.get(f))
            .flat_map(|m| m.values())
            .filter(|i| set.contains(&i.to))
            .collect()
    }

    fn resolve(
        &self,
        u: &Use,
        reexports: &BTreeMap<PathBuf, Vec<&Use>>,
        depth: usize,
    ) -> Option<PathBuf> {
        match self.target(u, reexports, depth)? {
            Target::Module(m) => self.file_of(&m),
            Target::File(f) => Some(f),
        }
    }

    /// What the path of `u` names: a module, or an item in a file.
    fn target(
        &self,
        u: &Use,
        reexports: &BTreeMap<PathBuf, Vec<&Use>>,
        depth: usize,
    ) -> Option<Target> {
        let mut segs = u.segments.iter().peekable();
        let mut base: Vec<String> = match segs.peek()?.as_str() {
            "crate" => Vec::new(),
            "self" => u.scope.clone(),
            "super" => parent(&u.scope)?,
            // `use child::X` names a module declared in scope.
            first => {
                let mut child = u.scope.clone();
                child.push(first.to_owned());
                if !self.modules.contains_key(&child) {
                    return None;
                }
                u.scope.clone()
            }
        };
        if matches!(
            segs.peek().map(|s| s.as_str()),
            Some("crate" | "self" | "super")
        ) {
            segs.next();
        }
        let mut rest: Vec<String> = segs.cloned().collect();
        while rest.first().is_some_and(|s| s == "super") {
            base = parent(&base)?;
            rest.remove(0);
        }
        self.walk(base, &rest, reexports, depth)
    }

    /// Follows `segs` down from module `cur`: through child modules, and
    /// through re-exports (of a module, the walk goes on inside it).
    fn walk(
        &self,
        mut cur: Vec<String>,
        segs: &[String],
        reexports: &BTreeMap<PathBuf, Vec<&Use>>,
        depth: usize,
    ) -> Option<Target> {
        for (i, seg) in segs.iter().enumerate() {
            let mut next = cur.clone();
            next.push(seg.clone());
            if self.modules.contains_key(&next) {
                cur = next;
                continue;
            }
            let file = self.file_of(&cur)?;
            if depth < 8 {
                for r in reexports.get(&file).into_iter().flatten() {
                    if r.name() != Some(seg.as_str()) {
                        continue;
                    }
                    match self.target(r, reexports, depth + 1) {
                        Some(Target::Module(m)) => {
                            return self.walk(m, &segs[i + 1..], reexports, depth + 1);
                        }
                        Some(found) => return Some(found),
                        None => {}
                    }
                }
            }
            return Some(Target::File(file));
        }
        Some(Target::Module(cur))
    }

    /// The file of module `m`; an inline module (`mod tests { … }`) lives
    /// in its parent's.
    fn file_of(&self, m: &[String]) -> Option<PathBuf> {
        let mut cur = m.to_vec();
        while !self.modules.contains_key(&cur) {
            cur = parent(&cur)?;
        }
        self.modules.get(&cur).cloned()
    }
}

/// What a path names.
enum Target {
    Module(Vec<String>),
    File(PathBuf),
}

fn parent(m: &[String]) -> Option<Vec<String>> {
    (!m.is_empty()).then(|| m[..m.len() - 1].to_vec())
}

/// `dist/peers.rs` → `["dist", "peers"]`; `lib.rs` → `[]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut segs: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if segs.last().is_some_and(|s| s == "mod" || s == "lib") {
        segs.pop();
    }
    segs
}

/// One path a file names, with the module it is written in.
#[derive(Debug, Clone)]
struct Use {
    segments: Vec<String>,
    /// The module the path is written in: the file's, or an inline
    /// module's inside it.
    scope: Vec<String>,
    line: usize,
    /// A `pub use` (of any visibility but private): a re-export.
    public: bool,
    /// `use a::B as C`: `C`.
    alias: Option<String>,
}

impl Use {
    /// The name this path brings into scope.
    fn name(&self) -> Option<&str> {
        self.alias
            .as_deref()
            .or_else(|| self.segments.last().map(String::as_str))
    }
}

/// The source with comments and the contents of string and char literals
/// blanked (newlines kept, so lines still count).
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, s: &[u8]| {
        for &c in s {
            out.push(if c == b'\n' { '\n' } else { ' ' });
        }
    };
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            let end = b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| i + p);
            blank(&mut out, &b[i..end]);
            i = end;
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            let start = i;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            blank(&mut out, &b[start..i.min(b.len())]);
        } else if b[i] == b'r'
            && (b[i..].starts_with(b"r\"") || b[i..].starts_with(b"r#"))
            && (i == 0 || !is_ident(b[i - 1]))
        {
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            if b.get(i + 1 + hashes) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            let body = i + 2 + hashes;
            let end = b[body..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(b.len(), |p| body + p + close.len());
            blank(&mut out, &b[i..end]);
            i = end;
        } else if b[i] == b'"' {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
            blank(&mut out, &b[start..i]);
        } else if b[i] == b'\'' {
            // A char literal ('a', '\n', '\u{..}'), else a lifetime.
            let lit = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map(|p| i + 3 + p)
            } else if b.get(i + 2) == Some(&b'\'') {
                Some(i + 3)
            } else {
                std::str::from_utf8(&b[i + 1..])
                    .ok()
                    .and_then(|s| s.chars().next())
                    .filter(|c| !c.is_ascii())
                    .and_then(|c| {
                        (b.get(i + 1 + c.len_utf8()) == Some(&b'\'')).then(|| i + 2 + c.len_utf8())
                    })
            };
            match lit {
                Some(end) => {
                    blank(&mut out, &b[i..end]);
                    i = end;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let ch = text[i..].chars().next().expect("char boundary");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Tokens: identifiers, `::`, and single punctuation characters, each with
/// its line.
fn tokens(text: &str) -> Vec<(String, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if is_ident(c) || c == b'$' {
            let start = i;
            i += 1;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            out.push((text[start..i].to_owned(), line));
        } else if b[i..].starts_with(b"::") {
            out.push(("::".to_owned(), line));
            i += 2;
        } else {
            let ch = text[i..].chars().next().expect("char boundary");
            out.push((ch.to_string(), line));
            i += ch.len_utf8();
        }
    }
    out
}

/// Every path starting with `crate`, `super` or `self` in the stripped
/// source, `use` trees expanded, each with the module it is written in.
fn paths_in(text: &str) -> Vec<Use> {
    let toks = tokens(text);
    let mut out = Vec::new();
    // Inline modules: (name, brace depth at which they close).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let scope_of = |inline: &[(String, usize)]| -> Vec<String> {
        inline.iter().map(|(n, _)| n.clone()).collect()
    };
    while i < toks.len() {
        let t = toks[i].0.as_str();
        match t {
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            "mod" if toks.get(i + 2).is_some_and(|n| n.0 == "{") => {
                inline.push((toks[i + 1].0.clone(), depth));
                depth += 1;
                i += 3;
                continue;
            }
            "use" => {
                let public = i > 0
                    && (toks[i - 1].0 == "pub"
                        || (toks[i - 1].0 == ")"
                            && toks[..i].iter().rev().take(5).any(|t| t.0 == "pub")));
                let end = toks[i..]
                    .iter()
                    .position(|t| t.0 == ";")
                    .map_or(toks.len(), |p| i + p);
                let scope = scope_of(&inline);
                let mut trees = Vec::new();
                use_tree(&toks[i + 1..end], Vec::new(), &mut trees);
                for (segments, alias, line) in trees {
                    out.push(Use {
                        segments,
                        scope: scope.clone(),
                        line,
                        public,
                        alias,
                    });
                }
                i = end + 1;
                continue;
            }
            "crate" | "super" | "self"
                if toks.get(i + 1).is_some_and(|n| n.0 == "::")
                    && (i == 0 || (toks[i - 1].0 != "::" && toks[i - 1].0 != "$")) =>
            {
                let line = toks[i].1;
                let mut segments = vec![t.to_owned()];
                let mut j = i + 1;
                while j + 1 < toks.len() && toks[j].0 == "::" && toks[j + 1].0.bytes().all(is_ident)
                {
                    segments.push(toks[j + 1].0.clone());
                    j += 2;
                }
                out.push(Use {
                    segments,
                    scope: scope_of(&inline),
                    line,
                    public: false,
                    alias: None,
                });
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Expands one `use` tree (`a::{b, c::{d as e}}`) into its paths.
fn use_tree(
    toks: &[(String, usize)],
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>, usize)>,
) {
    let mut segs = prefix;
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i].0.as_str();
        match t {
            "::" => {}
            "{" => {
                // Split the group at top-level commas.
                let mut d = 0;
                let mut start = i + 1;
                for j in i + 1..toks.len() {
                    match toks[j].0.as_str() {
                        "{" => d += 1,
                        "}" if d == 0 => {
                            use_tree(&toks[start..j], segs.clone(), out);
                            return;
                        }
                        "}" => d -= 1,
                        "," if d == 0 => {
                            use_tree(&toks[start..j], segs.clone(), out);
                            start = j + 1;
                        }
                        _ => {}
                    }
                }
                return;
            }
            "as" => {
                let alias = toks.get(i + 1).map(|t| t.0.clone());
                out.push((segs, alias, toks[i].1));
                return;
            }
            "*" => {
                out.push((segs, None, toks[i].1));
                return;
            }
            _ if t.bytes().all(is_ident) => {
                if t == "self" && !segs.is_empty() {
                    // `a::{self}` names `a`.
                } else {
                    segs.push(t.to_owned());
                }
            }
            _ => {}
        }
        i += 1;
    }
    if !segs.is_empty() {
        let line = toks.first().map_or(0, |t| t.1);
        out.push((segs, None, line));
    }
}

fn tarjan(adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct T<'a> {
        adj: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(t: &mut T<'_>, v: usize) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        for &w in &t.adj[v] {
            match t.index[w] {
                None => {
                    visit(t, w);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(iw) if t.on[w] => t.low[v] = t.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(t.low[v]) == t.index[v] {
            let mut c = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on[w] = false;
                c.push(w);
                if w == v {
                    break;
                }
            }
            t.out.push(c);
        }
    }
    let n = adj.len();
    let mut t = T {
        adj,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            visit(&mut t, v);
        }
    }
    t.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(src: &str) -> Vec<String> {
        paths_in(&strip(src))
            .into_iter()
            .map(|u| format!("{}@{}", u.segments.join("::"), u.scope.join("::")))
            .collect()
    }

    #[test]
    fn use_trees_expand() {
        assert_eq!(
            paths("use super::{a, b::{C, d::E as F}};\nuse crate::x::Y;"),
            [
                "super::a@",
                "super::b::C@",
                "super::b::d::E@",
                "crate::x::Y@"
            ]
        );
        assert_eq!(
            paths("use super::a::{self, B};"),
            ["super::a@", "super::a::B@"]
        );
    }

    #[test]
    fn inline_paths_and_inline_modules() {
        let src = "fn f() { crate::a::b(); let s = \"crate::no::x\"; }\n\
                   // crate::comment::y\n\
                   mod tests { use super::*; fn g() { super::c::D::new(); } }\n\
                   fn h() { self::e::F; }";
        assert_eq!(
            paths(src),
            [
                "crate::a::b@",
                "super@tests",
                "super::c::D::new@tests",
                "self::e::F@"
            ]
        );
    }

    #[test]
    fn lifetimes_and_chars_do_not_hide_code() {
        let src = "fn f<'a>(x: &'a str) -> char { let c = '\"'; crate::z::w(); 'x' }";
        assert_eq!(paths(src), ["crate::z::w@"]);
    }

    #[test]
    fn reexports_are_followed_and_cycles_found() {
        let dir = std::env::temp_dir().join(format!("imports-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("d")).unwrap();
        let write = |p: &str, s: &str| std::fs::write(dir.join(p), s).unwrap();
        write("lib.rs", "mod a; mod b; mod d; pub use a::A;\n");
        write("a.rs", "use crate::d::x::X;\npub struct A;\n");
        write("b.rs", "use crate::A;\n");
        write("d.rs", "mod x; mod y; pub(crate) use y::Y;\n");
        write("d/x.rs", "use super::Y;\npub struct X;\n");
        write("d/y.rs", "use crate::a::A;\npub struct Y;\n");
        let g = ImportGraph::read(&dir);
        let edges: Vec<String> = g
            .imports()
            .map(|i| format!("{} -> {}", i.from.display(), i.to.display()))
            .collect();
        assert_eq!(
            edges,
            [
                "a.rs -> d/x.rs",
                "b.rs -> a.rs",
                "d/x.rs -> d/y.rs",
                "d/y.rs -> a.rs"
            ]
        );
        let cycles = g.cycles(|_| true);
        assert_eq!(cycles.len(), 1);
        assert_eq!(
            cycles[0],
            ["a.rs", "d/x.rs", "d/y.rs"].map(PathBuf::from).to_vec()
        );
        assert_eq!(g.explain(&cycles[0]).len(), 3);
        assert!(g.cycles(|p| p.starts_with("d")).len() == 1);
        assert!(g.cycles(|p| p == Path::new("b.rs")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_reexported_module_is_walked_into() {
        let dir = std::env::temp_dir().join(format!("imports-mod-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("k/p")).unwrap();
        let write = |p: &str, s: &str| std::fs::write(dir.join(p), s).unwrap();
        write("lib.rs", "mod k;\npub(crate) use self::k::{p, q};\n");
        write("k.rs", "pub(crate) mod p;\npub(crate) mod q;\n");
        write("k/p.rs", "mod c;\npub(crate) use c::C;\n");
        write("k/p/c.rs", "pub struct C;\n");
        write("k/q.rs", "use crate::p::C;\n");
        let g = ImportGraph::read(&dir);
        let edges: Vec<String> = g
            .imports()
            .map(|i| format!("{} -> {}", i.from.display(), i.to.display()))
            .collect();
        assert_eq!(edges, ["k/q.rs -> k/p/c.rs"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
