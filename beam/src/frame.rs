//! A check of a distribution frame before it is decoded: every length and
//! count a term claims must fit in the bytes that are left, and terms
//! nest at most [`MAX_DEPTH`] deep.
//!
//! The decoder (`eetf`) allocates what a term claims before reading it
//! (`Vec::with_capacity(count)` for a list of 4 billion elements in a
//! frame of ten bytes) and recurses once per level of nesting; either can
//! abort this process, which no `catch_unwind` stops. Checked first, such
//! a frame is an error that closes its connection instead.
//!
//! # Cost
//! One pass over the frame's bytes, without allocating beyond a stack of
//! at most [`MAX_DEPTH`] counters.

/// The deepest nesting accepted: far beyond what a reply of the calls
/// made here holds, far below what the decoder's recursion can take on a
/// thread's stack.
pub const MAX_DEPTH: usize = 1_000;

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A length or count beyond the bytes left, or a term cut short.
    #[error("a term claims more than the frame holds (at byte {0})")]
    Overrun(usize),
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("terms nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// A tag this side does not take (the atom cache, compressed terms,
    /// old funs) or does not know.
    #[error("term tag {tag} at byte {at} is not accepted")]
    Tag {
        /// The tag.
        tag: u8,
        /// Where.
        at: usize,
    },
    /// A term without its version byte (131).
    #[error("no version byte at byte {0}")]
    Version(usize),
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn left(&self) -> usize {
        self.buf.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&[u8], FrameError> {
        if n > self.left() {
            return Err(FrameError::Overrun(self.at));
        }
        let s = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<usize, FrameError> {
        Ok(usize::from(self.take(1)?[0]))
    }

    fn u16(&mut self) -> Result<usize, FrameError> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn u32(&mut self) -> Result<usize, FrameError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    /// `n` more terms follow: each takes at least one byte.
    fn terms(&self, n: usize) -> Result<usize, FrameError> {
        if n > self.left() {
            return Err(FrameError::Overrun(self.at));
        }
        Ok(n)
    }
}

/// Checks the terms of a frame's body (after its pass-through tag): one
/// or more terms, each with its version byte.
///
/// # Errors
/// The first [`FrameError`] found.
pub fn check(body: &[u8]) -> Result<(), FrameError> {
    let mut r = Reader { buf: body, at: 0 };
    while r.left() > 0 {
        if r.u8()? != 131 {
            return Err(FrameError::Version(r.at - 1));
        }
        term(&mut r)?;
    }
    Ok(())
}

/// One term and everything nested in it, without recursion: `pending`
/// holds, per open level, how many terms that level still has to read.
fn term(r: &mut Reader<'_>) -> Result<(), FrameError> {
    let mut pending: Vec<usize> = vec![1];
    while let Some(top) = pending.last_mut() {
        if *top == 0 {
            pending.pop();
            continue;
        }
        *top -= 1;
        let at = r.at;
        let nested = match r.u8()? as u8 {
            // NEW_FLOAT, SMALL_INTEGER, INTEGER, FLOAT (old, 31 bytes).
            70 => r.take(8).map(|_| 0)?,
            97 => r.take(1).map(|_| 0)?,
            98 => r.take(4).map(|_| 0)?,
            99 => r.take(31).map(|_| 0)?,
            // Atoms, strings, binaries: a length and the bytes.
            100 | 118 | 107 => {
                let n = r.u16()?;
                r.take(n).map(|_| 0)?
            }
            115 | 119 => {
                let n = r.u8()?;
                r.take(n).map(|_| 0)?
            }
            109 => {
                let n = r.u32()?;
                r.take(n).map(|_| 0)?
            }
            77 => {
                let n = r.u32()?;
                r.take(1 + n).map(|_| 0)?
            }
            110 => {
                let n = r.u8()?;
                r.take(1 + n).map(|_| 0)?
            }
            111 => {
                let n = r.u32()?;
                r.take(1 + n).map(|_| 0)?
            }
            106 => 0,
            // Pids, ports, references: a node atom, then fixed fields.
            103 => node_then(r, 9)?,
            88 => node_then(r, 12)?,
            102 => node_then(r, 5)?,
            89 => node_then(r, 8)?,
            120 => node_then(r, 12)?,
            101 => node_then(r, 5)?,
            114 | 90 => {
                let words = r.u16()?;
                let creation = if r.buf.get(at) == Some(&114) { 1 } else { 4 };
                node_then(r, creation + 4 * words)?
            }
            // Containers: the count of terms that follow.
            104 => {
                let n = r.u8()?;
                r.terms(n)?
            }
            105 => {
                let n = r.u32()?;
                r.terms(n)?
            }
            // A list: its elements and its tail.
            108 => {
                let n = r.u32()?;
                r.terms(n)?.checked_add(1).ok_or(FrameError::Overrun(at))?
            }
            116 => {
                let n = r.u32()?;
                r.terms(n.checked_mul(2).ok_or(FrameError::Overrun(at))?)?
            }
            // `fun M:F/A`: three terms.
            113 => 3,
            // A fun with its environment: its total size says where it
            // ends.
            112 => {
                let size = r.u32()?;
                r.take(size.checked_sub(4).ok_or(FrameError::Overrun(at))?)
                    .map(|_| 0)?
            }
            tag => return Err(FrameError::Tag { tag, at }),
        };
        if nested > 0 {
            if pending.len() >= MAX_DEPTH {
                return Err(FrameError::TooDeep);
            }
            pending.push(nested);
        }
    }
    Ok(())
}

/// A node atom (a term: an atom of any form), then `fixed` bytes.
fn node_then(r: &mut Reader<'_>, fixed: usize) -> Result<usize, FrameError> {
    let at = r.at;
    match r.u8()? as u8 {
        100 | 118 => {
            let n = r.u16()?;
            r.take(n)?;
        }
        115 | 119 => {
            let n = r.u8()?;
            r.take(n)?;
        }
        tag => return Err(FrameError::Tag { tag, at }),
    }
    r.take(fixed)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::term::{atom, int, list, tuple};
    use eetf::Term;

    fn encode(t: &Term) -> Vec<u8> {
        let mut out = Vec::new();
        t.encode(&mut out).unwrap();
        out
    }

    #[test]
    fn terms_of_every_shape_the_calls_answer_with_pass() {
        let pid = Term::Pid(eetf::Pid::new("a@h", 12, 0, 99));
        let reference = Term::Reference(Box::new(eetf::Reference {
            node: "a@h".into(),
            id: vec![1, 2, 3],
            creation: 7,
        }));
        let t = tuple(vec![
            atom("ok"),
            list(vec![int(1), int(-5), int(1 << 40), pid, reference]),
            Term::Binary(eetf::Binary::from(b"bytes".to_vec())),
            Term::ByteList(eetf::ByteList::from(b"chars".to_vec())),
            Term::Float(eetf::Float::try_from(1.5).unwrap()),
            Term::Map(eetf::Map::from([(atom("k"), list(vec![]))])),
            Term::ExternalFun(Box::new(eetf::ExternalFun {
                module: "erlang".into(),
                function: "whereis".into(),
                arity: 1,
            })),
        ]);
        let mut frame = encode(&t);
        frame.extend(encode(&atom("second")));
        assert_eq!(check(&frame), Ok(()));
    }

    #[test]
    fn a_count_beyond_the_frame_is_refused_before_anything_is_allocated() {
        // A list claiming 4 billion elements, in 6 bytes.
        let frame = [131, 108, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(check(&frame), Err(FrameError::Overrun(_))));
        // A binary claiming more bytes than follow.
        let frame = [131, 109, 0, 0, 1, 0, 1, 2];
        assert!(matches!(check(&frame), Err(FrameError::Overrun(_))));
        // A term cut short.
        let mut frame = encode(&tuple(vec![atom("a"), atom("b")]));
        frame.pop();
        assert!(check(&frame).is_err());
    }

    #[test]
    fn deep_nesting_and_unknown_tags_are_refused() {
        // [[[[...]]]] a million deep: 6 bytes a level.
        let mut frame = vec![131];
        for _ in 0..1_000_000 {
            frame.extend([108, 0, 0, 0, 1]);
        }
        frame.push(106);
        frame.extend(std::iter::repeat_n(106, 1_000_000));
        assert_eq!(check(&frame), Err(FrameError::TooDeep));
        // The atom cache and compressed terms are never taken.
        assert!(matches!(
            check(&[131, 82, 0]),
            Err(FrameError::Tag { tag: 82, .. })
        ));
        assert!(matches!(
            check(&[131, 80, 0, 0, 0, 1]),
            Err(FrameError::Tag { tag: 80, .. })
        ));
        assert!(matches!(check(&[7, 97, 1]), Err(FrameError::Version(0))));
    }
}
