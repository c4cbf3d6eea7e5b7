//! How long each function of a source tree is, read from the text: a
//! function starts at a line whose code begins with `fn` (after `pub`,
//! `const`, `async`, `unsafe`) and ends at the first line after it that
//! is its own indentation followed by `}`. That is the shape `rustfmt`
//! gives every function of the workspace.

use std::path::{Path, PathBuf};

/// One function and its length in lines (signature to closing brace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FnLength {
    /// The file, relative to the tree read.
    pub file: PathBuf,
    /// 1-based line of its signature.
    pub line: usize,
    /// Its name.
    pub name: String,
    /// Lines from its signature to its closing brace, both included.
    pub lines: usize,
}

/// Every function under `dir` longer than `max` lines, longest first.
///
/// # Panics
/// When `dir` cannot be read.
pub fn longer_than(dir: &Path, max: usize) -> Vec<FnLength> {
    let files = crate::rust_files(dir);
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read source");
        let rel = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
        out.extend(
            functions(&text)
                .into_iter()
                .filter(|(_, _, n)| *n > max)
                .map(|(line, name, lines)| FnLength {
                    file: rel.clone(),
                    line,
                    name,
                    lines,
                }),
        );
    }
    out.sort_by(|a, b| b.lines.cmp(&a.lines).then(a.file.cmp(&b.file)));
    out
}

/// `(line, name, length)` of each function with a body in `text`.
fn functions(text: &str) -> Vec<(usize, String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let indent = &line[..line.len() - line.trim_start().len()];
        let mut rest = line.trim_start();
        for word in [
            "pub(crate) ",
            "pub(super) ",
            "pub ",
            "const ",
            "async ",
            "unsafe ",
        ] {
            rest = rest.strip_prefix(word).unwrap_or(rest);
        }
        let Some(sig) = rest.strip_prefix("fn ") else {
            continue;
        };
        let name: String = sig
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // A declaration without a body (in a trait) ends with `;` on its
        // signature's last line, at the signature's indentation.
        let mut end = None;
        for (j, l) in lines.iter().enumerate().skip(i) {
            let code = l.split("//").next().unwrap_or("").trim_end();
            let own_level = j == i || l.strip_prefix(indent).is_some_and(|r| !r.starts_with(' '));
            if own_level && code.ends_with(';') {
                break;
            }
            if *l == format!("{indent}}}") || (j == i && code.ends_with('}')) {
                end = Some(j);
                break;
            }
        }
        if let Some(end) = end {
            out.push((i + 1, name, end - i + 1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_of_functions_methods_and_one_liners() {
        let src = "fn a() {\n    1;\n}\n\nimpl X {\n    pub(crate) async fn b(\n        x: u8,\n    ) -> u8 {\n        x\n    }\n    fn c() {}\n}\ntrait T {\n    fn d(&self);\n    fn e(\n        &self,\n    ) -> u8;\n}\n";
        assert_eq!(
            functions(src),
            [(1, "a".into(), 3), (6, "b".into(), 5), (11, "c".into(), 1)]
        );
    }
}
