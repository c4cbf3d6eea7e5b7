//! What a node's agent answers about the application layer's registries:
//! its PubSub topics, Presence topics, names and groups, and one process's
//! share of them. The entry node gathers every node's part (`service`).
//!
//! Cost: one pass over each PubSub instance's topic table, each Presence
//! instance's visible entries, the node's registered names, the global
//! names and the node's groups, on request only (the TUI's Registry view
//! asks once per refresh while it is shown).

use crate::sampler::pid_ref;
use crate::state::State;
use clustertop_proto::time::unix_ms;
use clustertop_proto::{
    GroupRow, NameRow, NameScope, NodeRegistry, PidRef, PresenceRow, ProcessRegistry, TopicRow,
};
use clustertop_runtime::Node;
use clustertop_runtime::app::{presence, pubsub::PubSub};

/// This node's registries.
pub(crate) fn node_registry(state: &State) -> NodeRegistry {
    let node = &state.node;
    let mut topics = Vec::new();
    for instance in PubSub::instances(node) {
        topics.extend(instance.topics().into_iter().map(|t| TopicRow {
            instance: instance.name().to_owned(),
            topic: t.topic,
            subscribers: t.subscribers as u64,
            published_total: t.published,
            delivered_total: t.delivered,
        }));
    }
    let mut presences = Vec::new();
    for instance in presence::instances(node) {
        presences.extend(instance.topics().into_iter().map(|t| PresenceRow {
            instance: instance.name().to_owned(),
            topic: t.topic,
            tracked: t.tracked as u64,
            keys: t.keys as u64,
            local: t.local as u64,
        }));
    }
    let holder = |serial: u64| {
        let id = node.introspect().local_process_id(serial);
        let info = node.introspect().process_info(id);
        (
            info.as_ref().map(|i| i.behaviour.to_owned()),
            info.is_some_and(|i| i.system),
        )
    };
    let mut names: Vec<NameRow> = node
        .introspect()
        .registered()
        .into_iter()
        .map(|(name, id)| {
            let (behaviour, system) = holder(id.serial());
            NameRow {
                name,
                scope: NameScope::Local,
                pid: pid_ref(node, id),
                behaviour,
                system,
            }
        })
        .collect();
    names.extend(
        node.global()
            .holders()
            .into_iter()
            .filter(|h| h.node == node.name() && h.creation == node.creation())
            .map(|h| {
                let (behaviour, system) = holder(h.serial);
                NameRow {
                    name: h.name,
                    scope: NameScope::Global,
                    pid: PidRef {
                        node: h.node,
                        serial: h.serial,
                        creation: h.creation,
                    },
                    behaviour,
                    system,
                }
            }),
    );
    names.sort_by(|a, b| a.name.cmp(&b.name));
    let groups = node
        .groups()
        .names()
        .into_iter()
        .filter_map(|group| {
            let members = node.groups().local_members(&group).len() as u64;
            (members > 0).then_some(GroupRow { group, members })
        })
        .collect();
    NodeRegistry {
        node: node.name().to_owned(),
        sampled_at_unix_ms: unix_ms(),
        topics,
        presences,
        names,
        groups,
    }
}

/// What one of this node's processes is subscribed to and holds; `None`
/// when it is not a process of this node.
pub(crate) fn process_registry(state: &State, pid: &PidRef) -> Option<ProcessRegistry> {
    let node: &Node = &state.node;
    if pid.node != node.name() || pid.creation != node.creation() {
        return None;
    }
    let id = node.introspect().local_process_id(pid.serial);
    let info = node.introspect().process_info(id)?;
    let global_names = node
        .global()
        .holders()
        .into_iter()
        .filter(|h| h.node == node.name() && h.serial == pid.serial && h.creation == pid.creation)
        .map(|h| h.name)
        .collect();
    let groups = node
        .groups()
        .names()
        .into_iter()
        .filter(|g| node.groups().local_members(g).contains(&id))
        .collect();
    let mut subscriptions = Vec::new();
    for instance in PubSub::instances(node) {
        subscriptions.extend(
            instance
                .subscriptions(id)
                .into_iter()
                .map(|t| (instance.name().to_owned(), t)),
        );
    }
    let mut presences = Vec::new();
    for instance in presence::instances(node) {
        presences.extend(
            instance
                .tracked_by(id)
                .into_iter()
                .map(|(topic, key)| (instance.name().to_owned(), topic, key)),
        );
    }
    Some(ProcessRegistry {
        name: info.name,
        global_names,
        groups,
        subscriptions,
        presences,
    })
}
