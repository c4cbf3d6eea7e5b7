//! The Registry view's data: every node's part of the application layer's
//! registries, merged into one line per topic, name and group, with
//! message rates derived from the agents' monotonic counters.

use clustertop_proto::{NameScope, PidRef, Registry};
use std::collections::{BTreeMap, HashMap};

/// One PubSub topic, cluster-wide.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TopicLine {
    pub(crate) instance: String,
    pub(crate) topic: String,
    /// Subscribers per node, in node order.
    pub(crate) per_node: Vec<(String, u64)>,
    pub(crate) subscribers: u64,
    /// Broadcasts published on any node per second (`None` until two
    /// samples).
    pub(crate) published_per_s: Option<f64>,
    /// Messages put into subscribers' mailboxes per second, all nodes.
    pub(crate) delivered_per_s: Option<f64>,
}

/// One Presence topic, cluster-wide.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PresenceLine {
    pub(crate) instance: String,
    pub(crate) topic: String,
    /// Present processes (the largest count any node reports: a node that
    /// has not yet heard of the newest presences reports fewer).
    pub(crate) tracked: u64,
    pub(crate) keys: u64,
    /// Present processes per node, by the node they run on.
    pub(crate) per_node: Vec<(String, u64)>,
}

/// A registered name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NameLine {
    pub(crate) name: String,
    pub(crate) scope: NameScope,
    pub(crate) pid: PidRef,
    pub(crate) behaviour: Option<String>,
}

/// A process group, cluster-wide.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GroupLine {
    pub(crate) group: String,
    pub(crate) per_node: Vec<(String, u64)>,
    pub(crate) members: u64,
}

/// Counter rates per (instance, topic, node): published/s, delivered/s.
type Rates = HashMap<(String, String, String), (f64, f64)>;

/// The registry as last seen, and the rates between the last two.
#[derive(Debug, Default)]
pub(crate) struct RegistryState {
    pub(crate) last: Option<Registry>,
    rates: Rates,
    /// Why there is no registry (an agent older than the view).
    pub(crate) unavailable: Option<String>,
}

impl RegistryState {
    /// A new answer: rates from the counters' change since the previous
    /// answer, over each node's own sampling times.
    pub(crate) fn update(&mut self, new: Registry) {
        let mut rates = Rates::new();
        if let Some(old) = &self.last {
            for part in &new.nodes {
                let Some(before) = old.nodes.iter().find(|n| n.node == part.node) else {
                    continue;
                };
                let dt_ms = part
                    .sampled_at_unix_ms
                    .saturating_sub(before.sampled_at_unix_ms);
                if dt_ms == 0 {
                    continue;
                }
                let per_s =
                    |now: u64, then: u64| now.saturating_sub(then) as f64 * 1000.0 / dt_ms as f64;
                for t in &part.topics {
                    if let Some(b) = before
                        .topics
                        .iter()
                        .find(|b| b.instance == t.instance && b.topic == t.topic)
                    {
                        rates.insert(
                            (t.instance.clone(), t.topic.clone(), part.node.clone()),
                            (
                                per_s(t.published_total, b.published_total),
                                per_s(t.delivered_total, b.delivered_total),
                            ),
                        );
                    }
                }
            }
        }
        self.rates = rates;
        self.last = Some(new);
        self.unavailable = None;
    }

    /// PubSub topics: busiest (deliveries per second) first, then by name.
    pub(crate) fn topics(&self) -> Vec<TopicLine> {
        let Some(r) = &self.last else {
            return Vec::new();
        };
        let mut lines: BTreeMap<(String, String), TopicLine> = BTreeMap::new();
        for part in &r.nodes {
            for t in &part.topics {
                let line = lines
                    .entry((t.instance.clone(), t.topic.clone()))
                    .or_insert_with(|| TopicLine {
                        instance: t.instance.clone(),
                        topic: t.topic.clone(),
                        per_node: Vec::new(),
                        subscribers: 0,
                        published_per_s: None,
                        delivered_per_s: None,
                    });
                line.per_node.push((part.node.clone(), t.subscribers));
                line.subscribers += t.subscribers;
                if let Some((p, d)) =
                    self.rates
                        .get(&(t.instance.clone(), t.topic.clone(), part.node.clone()))
                {
                    *line.published_per_s.get_or_insert(0.0) += p;
                    *line.delivered_per_s.get_or_insert(0.0) += d;
                }
            }
        }
        let mut out: Vec<TopicLine> = lines.into_values().collect();
        out.sort_by(|a, b| {
            b.delivered_per_s
                .unwrap_or(0.0)
                .total_cmp(&a.delivered_per_s.unwrap_or(0.0))
                .then_with(|| a.topic.cmp(&b.topic))
        });
        out
    }

    /// Presence topics, by name.
    pub(crate) fn presences(&self) -> Vec<PresenceLine> {
        let Some(r) = &self.last else {
            return Vec::new();
        };
        let mut lines: BTreeMap<(String, String), PresenceLine> = BTreeMap::new();
        for part in &r.nodes {
            for p in &part.presences {
                let line = lines
                    .entry((p.instance.clone(), p.topic.clone()))
                    .or_insert_with(|| PresenceLine {
                        instance: p.instance.clone(),
                        topic: p.topic.clone(),
                        tracked: 0,
                        keys: 0,
                        per_node: Vec::new(),
                    });
                line.tracked = line.tracked.max(p.tracked);
                line.keys = line.keys.max(p.keys);
                if p.local > 0 {
                    line.per_node.push((part.node.clone(), p.local));
                }
            }
        }
        lines.into_values().collect()
    }

    /// Names, global first, then by name; those of system processes only
    /// with `system`.
    pub(crate) fn names(&self, system: bool) -> Vec<NameLine> {
        let Some(r) = &self.last else {
            return Vec::new();
        };
        let mut out: Vec<NameLine> = r
            .nodes
            .iter()
            .flat_map(|part| &part.names)
            .filter(|n| system || !n.system)
            .map(|n| NameLine {
                name: n.name.clone(),
                scope: n.scope,
                pid: n.pid.clone(),
                behaviour: n.behaviour.clone(),
            })
            .collect();
        out.sort_by(|a, b| {
            (a.scope != NameScope::Global, &a.name, &a.pid.node).cmp(&(
                b.scope != NameScope::Global,
                &b.name,
                &b.pid.node,
            ))
        });
        out
    }

    /// Groups, by name.
    pub(crate) fn groups(&self) -> Vec<GroupLine> {
        let Some(r) = &self.last else {
            return Vec::new();
        };
        let mut lines: BTreeMap<String, GroupLine> = BTreeMap::new();
        for part in &r.nodes {
            for g in &part.groups {
                let line = lines.entry(g.group.clone()).or_insert_with(|| GroupLine {
                    group: g.group.clone(),
                    per_node: Vec::new(),
                    members: 0,
                });
                line.per_node.push((part.node.clone(), g.members));
                line.members += g.members;
            }
        }
        lines.into_values().collect()
    }

    /// Nodes that did not answer the last time.
    pub(crate) fn missing(&self) -> &[String] {
        self.last.as_ref().map_or(&[], |r| r.missing.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clustertop_proto::{NodeRegistry, TopicRow};

    fn part(node: &str, at: u64, subs: u64, published: u64, delivered: u64) -> NodeRegistry {
        NodeRegistry {
            node: node.into(),
            sampled_at_unix_ms: at,
            topics: vec![TopicRow {
                instance: "ps".into(),
                topic: "room:1".into(),
                subscribers: subs,
                published_total: published,
                delivered_total: delivered,
            }],
            ..NodeRegistry::default()
        }
    }

    #[test]
    fn topic_rates_add_up_over_nodes_from_each_nodes_own_clock() {
        let mut s = RegistryState::default();
        s.update(Registry {
            nodes: vec![part("a", 1_000, 1, 0, 0), part("b", 1_500, 2, 0, 0)],
            missing: vec![],
        });
        let first = s.topics();
        assert_eq!(first[0].subscribers, 3);
        assert_eq!(first[0].delivered_per_s, None, "no rate from one sample");
        s.update(Registry {
            // a: 10 broadcasts, 10 deliveries in 1 s; b: 20 deliveries in 2 s.
            nodes: vec![part("a", 2_000, 1, 10, 10), part("b", 3_500, 2, 0, 20)],
            missing: vec![],
        });
        let line = &s.topics()[0];
        assert_eq!(line.per_node, [("a".to_owned(), 1), ("b".to_owned(), 2)]);
        assert_eq!(line.published_per_s, Some(10.0));
        assert_eq!(line.delivered_per_s, Some(20.0));
    }
}
