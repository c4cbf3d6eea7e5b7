//! The supervision tree of one node: the tree as answered, the selected
//! row, and the subtrees folded away.

use clustertop_proto::{PidRef, SupervisionTree, TreeNode};
use std::collections::HashSet;

/// The tree view's state.
#[derive(Debug, Default)]
pub(crate) struct TreeState {
    pub(crate) data: Option<SupervisionTree>,
    pub(crate) selected: usize,
    /// Folded subtrees, by node and serial.
    pub(crate) collapsed: HashSet<(String, u64)>,
}

impl TreeState {
    /// The rows as shown: (depth, node), folded subtrees left out, then
    /// what no supervisor started, so nothing is missing.
    pub(crate) fn rows(&self) -> Vec<(usize, &TreeNode)> {
        fn walk<'a>(
            collapsed: &HashSet<(String, u64)>,
            node: &str,
            n: &'a TreeNode,
            depth: usize,
            out: &mut Vec<(usize, &'a TreeNode)>,
        ) {
            out.push((depth, n));
            if !collapsed.contains(&(node.to_owned(), n.pid.serial)) {
                for c in &n.children {
                    walk(collapsed, node, c, depth + 1, out);
                }
            }
        }
        let mut out = Vec::new();
        if let Some(t) = &self.data {
            for r in &t.roots {
                walk(&self.collapsed, &t.node, r, 0, &mut out);
            }
            out.extend(t.unsupervised.iter().map(|n| (1, n)));
        }
        out
    }

    /// How many of [`TreeState::rows`] belong to the supervision trees
    /// (the rest are the processes outside them).
    pub(crate) fn rows_supervised(&self) -> usize {
        let unsupervised = self.data.as_ref().map_or(0, |t| t.unsupervised.len());
        self.rows().len() - unsupervised
    }

    /// Forgets the tree (another node is to be shown).
    pub(crate) fn clear(&mut self) {
        self.data = None;
        self.selected = 0;
    }

    pub(crate) fn move_by(&mut self, by: i64) {
        let len = self.rows().len();
        self.selected = if len == 0 {
            0
        } else {
            (self.selected as i64 + by).clamp(0, len as i64 - 1) as usize
        };
    }

    /// Enter on the selected row: a leaf's process, to open its detail;
    /// a supervisor's subtree is folded or unfolded instead.
    pub(crate) fn enter(&mut self) -> Option<PidRef> {
        let rows = self.rows();
        let ((_, n), t) = (rows.get(self.selected)?, self.data.as_ref()?);
        if n.children.is_empty() {
            return Some(n.pid.clone());
        }
        let key = (t.node.clone(), n.pid.serial);
        if !self.collapsed.remove(&key) {
            self.collapsed.insert(key);
        }
        None
    }

    pub(crate) fn on_tree(&mut self, t: SupervisionTree) {
        self.data = Some(t);
        let len = self.rows().len();
        if self.selected >= len {
            self.selected = len.saturating_sub(1);
        }
    }
}
