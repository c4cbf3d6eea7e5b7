//! The article's eventually consistent counter, twice.
//!
//! 1. As the article writes it ([`MapCounter`]): a map of counts by node,
//!    merged by taking each node's maximum. Replicated here the simplest
//!    way that works: every node's `article_counter` process sends its
//!    whole map to the others' every 200 ms, and merges what it receives.
//! 2. With the library: a [`GCounter`] (the same idea, with a node's
//!    incarnation in its identity) replicated as deltas with anti-entropy
//!    ([`Replica`]), and the article's `DeltaCrdt.AWLWWMap` snippet, a
//!    replicated [`AWLWWMap`] where each node puts its count under
//!    `["hits", node]`.
//!
//! ```elixir
//! def increment(counter, node_name), do: update_in(counter, [:by_node, node_name], fn nil -> 1; c -> c + 1 end)
//! def value(counter), do: counter.by_node |> Map.values() |> Enum.sum()
//! def merge(c1, c2), do: %{by_node: Map.merge(c1.by_node, c2.by_node, fn _k, a, b -> max(a, b) end)}
//! ```

use clustertop_runtime::app::crdt::{AWLWWMap, GCounter};
use clustertop_runtime::app::replica::{Replica, ReplicaConfig, ReplicaError};
use clustertop_runtime::{Node, Pid, Received, SpawnOptions};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The article's `DistributedCounter.CRDT`: counts by node, max-merged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapCounter {
    by_node: BTreeMap<String, u64>,
}

impl MapCounter {
    /// `new/0`.
    pub fn new() -> Self {
        Self::default()
    }

    /// `increment/2`: one more for `node`.
    pub fn increment(&mut self, node: &str) {
        *self.by_node.entry(node.to_owned()).or_default() += 1;
    }

    /// `value/1`: the sum over nodes.
    pub fn value(&self) -> u64 {
        self.by_node.values().sum()
    }

    /// `merge/2`: each node's larger count.
    pub fn merge(&mut self, other: &MapCounter) {
        for (node, &count) in &other.by_node {
            let mine = self.by_node.entry(node.clone()).or_default();
            *mine = (*mine).max(count);
        }
    }
}

/// The registered name of each node's article counter process.
pub const ARTICLE: &str = "article_counter";
/// The replicated GCounter's name.
pub const HITS: &str = "hits";
/// The replicated AWLWWMap's name.
pub const MAP: &str = "hits_map";

/// What the article counter process takes.
#[derive(Debug, Serialize, Deserialize)]
pub enum ArticleMsg {
    /// One more here.
    Increment,
    /// Another node's whole map.
    State(MapCounter),
    /// Tell the value to the given process.
    #[serde(skip)]
    Value(Pid<u64>),
}

/// The three counters of one node.
#[derive(Debug, Clone)]
pub struct Counters {
    node: Node,
    article: Pid<ArticleMsg>,
    /// The library's grow-only counter.
    pub gcounter: Replica<GCounter>,
    /// The article's DeltaCrdt snippet: `["hits", node] => count`.
    pub map: Replica<AWLWWMap<(String, String), u64>>,
}

impl Counters {
    /// Starts this node's part of all three.
    ///
    /// # Errors
    /// A name is taken on this node.
    pub fn start(node: &Node) -> Result<Counters, ReplicaError> {
        let article = node.spawn_opts::<ArticleMsg, _, _>(
            SpawnOptions::new().behaviour("MapCounter"),
            |mut ctx| async move {
                let me = ctx.node().name().to_owned();
                let mut counter = MapCounter::new();
                let mut gossip = tokio::time::interval(Duration::from_millis(200));
                loop {
                    tokio::select! {
                        got = ctx.recv() => match got {
                            Received::Msg(ArticleMsg::Increment) => counter.increment(&me),
                            Received::Msg(ArticleMsg::State(theirs)) => counter.merge(&theirs),
                            Received::Msg(ArticleMsg::Value(to)) => to.send(counter.value()),
                            _ => {}
                        },
                        _ = gossip.tick() => {
                            for other in ctx.node().nodes() {
                                let msg = ArticleMsg::State(counter.clone());
                                let _ = ctx.node().dist().send_named_on(&other, ARTICLE, msg);
                            }
                        }
                    }
                }
            },
        );
        article.enable_remote();
        node.register(ARTICLE, article.id())
            .map_err(|reason| ReplicaError::Register {
                name: ARTICLE.to_owned(),
                reason,
            })?;
        Ok(Counters {
            node: node.clone(),
            article,
            gcounter: Replica::start(node, HITS, ReplicaConfig::default())?,
            map: Replica::start(node, MAP, ReplicaConfig::default())?,
        })
    }

    /// One more, on all three.
    pub fn increment(&self) {
        self.article.send(ArticleMsg::Increment);
        self.gcounter.mutate(|c, me| c.increment(me, 1));
        let key = ("hits".to_owned(), self.node.name().to_owned());
        self.map.mutate(|m, me| {
            let next = m.get(&key).copied().unwrap_or(0) + 1;
            m.put(me, key.clone(), next, clustertop_proto::time::unix_us())
        });
    }

    /// The three values: (article's map counter, GCounter, AWLWWMap sum).
    pub async fn values(&self) -> (u64, u64, u64) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let asker = self.node.spawn::<u64, _, _>(move |mut ctx| async move {
            if let Received::Msg(v) = ctx.recv().await {
                let _ = tx.send(v);
            }
        });
        self.article.send(ArticleMsg::Value(asker));
        let article = rx.recv().await.unwrap_or(0);
        let gcounter = self.gcounter.read(GCounter::value);
        let map = self.map.read(|m| {
            m.iter()
                .filter(|((tag, _), _)| tag == "hits")
                .map(|(_, v)| *v)
                .sum()
        });
        (article, gcounter, map)
    }
}

#[cfg(test)]
mod tests {
    use super::MapCounter;

    #[test]
    fn the_article_counter_merges_by_maximum_per_node() {
        let mut a = MapCounter::new();
        let mut b = MapCounter::new();
        a.increment("a");
        a.increment("a");
        b.increment("b");
        let stale = a.clone();
        a.increment("a");
        b.merge(&a);
        b.merge(&stale);
        a.merge(&b);
        assert_eq!(a, b);
        assert_eq!(a.value(), 4);
    }
}
