//! Building and reading Erlang terms (eetf's [`Term`]) without ceremony:
//! constructors for what requests send, and lookups that answer `None`
//! for a term of another shape, so a reply that changed shape in some OTP
//! release shows as a missing figure, never as a panic.

pub use eetf::Term;
use eetf::{Atom, BigInteger, FixInteger, List, Tuple};

/// An atom.
pub(crate) fn atom(name: &str) -> Term {
    Term::Atom(Atom::from(name))
}

/// A tuple.
pub(crate) fn tuple(elements: Vec<Term>) -> Term {
    Term::Tuple(Tuple::from(elements))
}

/// A proper list.
pub(crate) fn list(elements: Vec<Term>) -> Term {
    Term::List(List::from(elements))
}

/// An integer.
pub(crate) fn int(n: i64) -> Term {
    match i32::try_from(n) {
        Ok(small) => Term::FixInteger(FixInteger::from(small)),
        Err(_) => Term::BigInteger(BigInteger::from(n)),
    }
}

/// The name of an atom.
pub(crate) fn as_atom(t: &Term) -> Option<&str> {
    match t {
        Term::Atom(a) => Some(&a.name),
        _ => None,
    }
}

/// A non-negative integer that fits a `u64`.
pub(crate) fn as_u64(t: &Term) -> Option<u64> {
    match t {
        Term::FixInteger(i) => u64::try_from(i.value).ok(),
        Term::BigInteger(b) => u64::try_from(&b.value).ok(),
        _ => None,
    }
}

/// The elements of a tuple.
pub(crate) fn as_tuple(t: &Term) -> Option<&[Term]> {
    match t {
        Term::Tuple(t) => Some(&t.elements),
        _ => None,
    }
}

/// The elements of a proper list (a string of small integers, which the
/// external format sends as bytes, included).
pub(crate) fn as_list(t: &Term) -> Option<Vec<&Term>> {
    match t {
        Term::List(l) => Some(l.elements.iter().collect()),
        _ => None,
    }
}

/// The elements of a proper list, taken.
pub(crate) fn into_list(t: Term) -> Option<Vec<Term>> {
    match t {
        Term::List(l) => Some(l.elements),
        Term::ByteList(b) => Some(
            b.bytes
                .into_iter()
                .map(|b| Term::FixInteger(FixInteger::from(i32::from(b))))
                .collect(),
        ),
        _ => None,
    }
}

/// A charlist (`"abc"`) or a binary (`<<"abc">>`) as text.
pub(crate) fn as_text(t: &Term) -> Option<String> {
    match t {
        Term::ByteList(b) => Some(String::from_utf8_lossy(&b.bytes).into_owned()),
        Term::Binary(b) => Some(String::from_utf8_lossy(&b.bytes).into_owned()),
        Term::List(l) if l.elements.is_empty() => Some(String::new()),
        Term::List(l) => l
            .elements
            .iter()
            .map(|c| as_u64(c).and_then(|c| char::from_u32(u32::try_from(c).ok()?)))
            .collect(),
        _ => None,
    }
}

/// The value under `key` in a proplist (`[{key, value}, ...]`).
pub(crate) fn prop<'a>(list: &'a Term, key: &str) -> Option<&'a Term> {
    let Term::List(l) = list else { return None };
    l.elements.iter().find_map(|e| match as_tuple(e) {
        Some([k, v]) if as_atom(k) == Some(key) => Some(v),
        _ => None,
    })
}

/// `{Tag, A, B}` whose first element is the atom `tag`: its other
/// elements.
pub(crate) fn tagged<'a>(t: &'a Term, tag: &str) -> Option<&'a [Term]> {
    match as_tuple(t) {
        Some([first, rest @ ..]) if as_atom(first) == Some(tag) => Some(rest),
        _ => None,
    }
}

/// A term as Erlang's `~p` prints it on one line (atoms quoted only where
/// Erlang quotes them, printable lists and binaries as text), cut at
/// `max` characters: a huge term costs only what is printed.
pub(crate) fn show(t: &Term, max: usize) -> String {
    let mut out = String::new();
    print(t, &mut out, max.saturating_add(1));
    if out.chars().count() <= max {
        return out;
    }
    let mut cut: String = out.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Whether an atom prints without quotes.
fn bare_atom(name: &str) -> bool {
    const RESERVED: &[&str] = &[
        "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case",
        "catch", "cond", "div", "end", "fun", "if", "let", "maybe", "not", "of", "or", "orelse",
        "receive", "rem", "try", "when", "xor",
    ];
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@')
        && !RESERVED.contains(&name)
}

fn printable(bytes: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(bytes).ok()?;
    (!s.is_empty() && s.chars().all(|c| !c.is_control() || c == '\n' || c == '\t')).then_some(s)
}

/// Appends `t` to `out` until `out` holds `budget` characters.
fn print(t: &Term, out: &mut String, budget: usize) {
    if out.len() >= budget {
        return;
    }
    let seq = |items: &[Term], out: &mut String| {
        for (i, e) in items.iter().enumerate() {
            if out.len() >= budget {
                return;
            }
            if i > 0 {
                out.push(',');
            }
            print(e, out, budget);
        }
    };
    match t {
        Term::Atom(a) if bare_atom(&a.name) => out.push_str(&a.name),
        Term::Atom(a) => {
            out.push('\'');
            out.push_str(&a.name.replace('\\', "\\\\").replace('\'', "\\'"));
            out.push('\'');
        }
        Term::ByteList(b) => match printable(&b.bytes) {
            Some(s) => out.push_str(&format!("{s:?}")),
            None => {
                out.push('[');
                let items: Vec<String> = b.bytes.iter().map(u8::to_string).collect();
                out.push_str(&items.join(","));
                out.push(']');
            }
        },
        Term::Binary(b) => match printable(&b.bytes) {
            Some(s) => out.push_str(&format!("<<{s:?}>>")),
            None => {
                out.push_str("<<");
                for (i, byte) in b.bytes.iter().enumerate() {
                    if out.len() >= budget {
                        break;
                    }
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&byte.to_string());
                }
                out.push_str(">>");
            }
        },
        Term::List(l) => {
            match as_text(t).filter(|s| !s.is_empty() && printable(s.as_bytes()).is_some()) {
                Some(s) if l.elements.iter().all(|e| as_u64(e).is_some()) => {
                    out.push_str(&format!("{s:?}"))
                }
                _ => {
                    out.push('[');
                    seq(&l.elements, out);
                    out.push(']');
                }
            }
        }
        Term::ImproperList(l) => {
            out.push('[');
            seq(&l.elements, out);
            out.push('|');
            print(&l.last, out, budget);
            out.push(']');
        }
        Term::Tuple(tu) => {
            out.push('{');
            seq(&tu.elements, out);
            out.push('}');
        }
        Term::Map(m) => {
            out.push_str("#{");
            for (i, (k, v)) in m.map.iter().enumerate() {
                if out.len() >= budget {
                    break;
                }
                if i > 0 {
                    out.push(',');
                }
                print(k, out, budget);
                out.push_str(" => ");
                print(v, out, budget);
            }
            out.push('}');
        }
        Term::Pid(p) => out.push_str(&format!("<{}.{}.{}>", p.node.name, p.id, p.serial)),
        other => out.push_str(&other.to_string()),
    }
}

/// `{M, F, A}` as `m:f/a`.
pub(crate) fn mfa(t: &Term) -> Option<String> {
    match as_tuple(t)? {
        [m, f, a] => Some(format!(
            "{}:{}/{}",
            as_atom(m)?,
            as_atom(f)?,
            as_u64(a).unwrap_or_else(|| as_list(a).map_or(0, |l| l.len() as u64))
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_read_the_shapes_process_info_answers_with() {
        let info = list(vec![
            tuple(vec![atom("message_queue_len"), int(12)]),
            tuple(vec![atom("reductions"), int(5_000_000_000)]),
            tuple(vec![
                atom("current_function"),
                tuple(vec![atom("gen_server"), atom("loop"), int(7)]),
            ]),
        ]);
        assert_eq!(prop(&info, "message_queue_len").and_then(as_u64), Some(12));
        assert_eq!(
            prop(&info, "reductions").and_then(as_u64),
            Some(5_000_000_000)
        );
        assert_eq!(
            prop(&info, "current_function").and_then(mfa).as_deref(),
            Some("gen_server:loop/7")
        );
        assert_eq!(prop(&info, "memory"), None);
        assert_eq!(as_u64(&int(-1)), None, "a negative count is not a count");
        assert_eq!(
            tagged(&tuple(vec![atom("ok"), int(1)]), "ok").map(<[_]>::len),
            Some(1)
        );
        assert_eq!(tagged(&tuple(vec![atom("error"), int(1)]), "ok"), None);
    }

    #[test]
    fn text_comes_from_charlists_and_binaries_and_show_is_bounded() {
        let chars = Term::ByteList(eetf::ByteList::from(b"25".to_vec()));
        assert_eq!(as_text(&chars).as_deref(), Some("25"));
        let unicode = list(vec![int(0x3bb), int(b'x'.into())]);
        assert_eq!(as_text(&unicode).as_deref(), Some("λx"));
        let long = Term::Binary(eetf::Binary::from(vec![b'a'; 500]));
        let shown = show(&long, 40);
        assert_eq!(shown.chars().count(), 40);
        assert!(shown.ends_with('…'));
        // As Erlang prints: atoms quoted only where needed.
        let cast = tuple(vec![atom("$gen_cast"), atom("work")]);
        assert_eq!(show(&cast, 100), "{'$gen_cast',work}");
        let msg = list(vec![
            atom("ok"),
            atom("Caps"),
            atom("end"),
            Term::ByteList(eetf::ByteList::from(b"hi".to_vec())),
            int(7),
        ]);
        assert_eq!(show(&msg, 100), "[ok,'Caps','end',\"hi\",7]");
        // A huge list is printed only as far as shown.
        let huge = list((0..1_000_000).map(|_| atom("x")).collect());
        assert_eq!(show(&huge, 10).chars().count(), 10);
    }
}
