#![doc = include_str!("../README.md")]

mod context;
mod counter;
mod id;
mod kernel;
mod lww;
mod map;
mod orset;

pub use context::CausalContext;
pub use counter::{GCounter, PNCounter};
pub use id::{Dot, ReplicaId};
pub use kernel::DotKernel;
pub use lww::{LWWRegister, Stamp};
pub use map::{AWLWWMap, Timestamped};
pub use orset::ORSet;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Digest as _;

/// What a CRDT of this crate may hold as an element, key or value: data
/// that can be cloned, printed, shipped between nodes and shared between
/// threads. Every such type is one (a blanket impl); the name only saves
/// the list of bounds.
pub trait Value:
    Clone + std::fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

impl<T> Value for T where
    T: Clone + std::fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

/// `Crdt` for a type that is a [`DotKernel`] in a field named `kernel`
/// and nothing else: join, split and bottom are the kernel's.
macro_rules! kernel_crdt {
    (impl<$($p:ident),*> for $ty:ty where $($bounds:tt)*) => {
        impl<$($p),*> $crate::Crdt for $ty
        where
            $($bounds)*
        {
            fn join_changed(&mut self, other: &Self) -> bool {
                self.kernel.join(&other.kernel)
            }

            fn split(&self, max_items: usize) -> Vec<Self> {
                self.kernel
                    .split(max_items)
                    .into_iter()
                    .map(|kernel| Self { kernel })
                    .collect()
            }

            fn is_bottom(&self) -> bool {
                self.kernel.is_bottom()
            }
        }
    };
}
use kernel_crdt;

/// A state-based CRDT whose mutators return deltas.
///
/// `join` is the least upper bound: commutative, associative and
/// idempotent, so replicas that have received the same deltas and states,
/// in any order and any number of times, hold equal states.
pub trait Crdt:
    Clone + Default + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// Joins `other` into `self`.
    fn join(&mut self, other: &Self) {
        self.join_changed(other);
    }

    /// Joins `other` into `self`; returns whether `self` changed. Every
    /// type of this crate answers without a copy of the state.
    fn join_changed(&mut self, other: &Self) -> bool;

    /// Splits the state into parts of at most `max_items` irreducible items
    /// each (a counter entry, a live dot, a range of removed dots). The join
    /// of all parts is `self`, and each part is below `self`; so the parts
    /// can be shipped as separate messages that may be lost, duplicated or
    /// reordered, and anything that arrives is safe to join.
    fn split(&self, max_items: usize) -> Vec<Self>;

    /// Whether this is the bottom state (nothing to ship).
    fn is_bottom(&self) -> bool;
}

/// Why a state could not be cut into messages.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    /// One irreducible item is larger than the limit on its own.
    #[error("one item of the state encodes to {size} bytes, over the {limit}-byte message limit")]
    ItemTooLarge {
        /// Its encoded size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The encoder failed.
    #[error("encoding the state: {0}")]
    Encode(#[from] postcard::Error),
}

/// Encodes `state` as messages of at most `max_bytes` each. A state that
/// fits is one message; a larger one is cut into its parts
/// ([`Crdt::split`]) in groups of up to 4,096 items, and the group size is
/// cut down by the overshoot until every message fits. An empty state yields
/// no message.
///
/// Cost: one encoding of the whole state, then one per attempted group size
/// (usually one).
pub fn encode_chunks<T: Crdt>(state: &T, max_bytes: usize) -> Result<Vec<Vec<u8>>, ChunkError> {
    if state.is_bottom() {
        return Ok(Vec::new());
    }
    let whole = postcard::to_allocvec(state)?;
    if whole.len() <= max_bytes {
        return Ok(vec![whole]);
    }
    let mut items = 4096usize;
    loop {
        let mut out = Vec::new();
        let mut over = None;
        for part in state.split(items) {
            let bytes = postcard::to_allocvec(&part)?;
            if bytes.len() > max_bytes {
                over = Some(bytes.len());
                break;
            }
            out.push(bytes);
        }
        let Some(size) = over else {
            return Ok(out);
        };
        if items == 1 {
            return Err(ChunkError::ItemTooLarge {
                size,
                limit: max_bytes,
            });
        }
        let shrink = size.div_ceil(max_bytes.max(1)).max(2);
        items = (items / shrink).max(1);
    }
}

/// Decodes one message made by [`encode_chunks`].
pub fn decode_chunk<T: Crdt>(bytes: &[u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// A digest of the state: SHA-256 of its encoding. Equal states have equal
/// digests (their encoding is canonical: maps are ordered), so two replicas
/// compare states by exchanging 32 bytes.
pub fn digest<T: Crdt>(state: &T) -> [u8; 32] {
    let bytes = postcard::to_allocvec(state).unwrap_or_default();
    sha2::Sha256::digest(&bytes).into()
}
