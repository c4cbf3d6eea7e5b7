//! The node table: which small index stands for which remote node
//! incarnation in a [`ProcessId`](crate::ProcessId). Index 0 is the local
//! node. Entries are never reused, so an id keeps naming the same
//! incarnation for the node's lifetime (a restarted peer gets a new index,
//! and ids of its old incarnation stay dead).

use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Default)]
pub(crate) struct NodeTable {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Index i + 1 → (name, creation).
    nodes: Vec<(Arc<str>, u32)>,
    index: HashMap<(Arc<str>, u32), u32>,
}

impl NodeTable {
    /// The index for `name`/`creation`, adding it if new.
    pub(crate) fn intern(&self, name: &str, creation: u32) -> u32 {
        if let Some(i) = self.inner.read().index.get(&(Arc::from(name), creation)) {
            return *i;
        }
        let mut inner = self.inner.write();
        let key: (Arc<str>, u32) = (name.into(), creation);
        if let Some(i) = inner.index.get(&key) {
            return *i;
        }
        inner.nodes.push(key.clone());
        let i = inner.nodes.len() as u32;
        inner.index.insert(key, i);
        i
    }

    /// The node an index stands for.
    pub(crate) fn get(&self, index: u32) -> Option<(Arc<str>, u32)> {
        let i = index.checked_sub(1)? as usize;
        self.inner.read().nodes.get(i).cloned()
    }
}
