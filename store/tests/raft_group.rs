//! A Raft group over three nodes of one process, talking over real TCP on
//! 127.0.0.1: the article's `ConsensusStore` (`set`, `get`).

use clustertop_runtime::Node;
use clustertop_store::{CommandError, Raft, RaftConfig, Role, Storage};
use std::time::Duration;

mod support;

use support::{Command, ConsensusStore, LIMIT, config, dist_node, group, mesh};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_from_any_member_are_applied_on_every_replica() {
    let nodes = mesh(&["a@localhost", "b@localhost", "c@localhost"]).await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let kv = group(&nodes, &dirs).await;

    // ConsensusStore.set / get, from each member in turn.
    for (i, r) in kv.iter().enumerate() {
        let key = format!("k{i}");
        assert_eq!(
            r.command(Command::Set(key.clone(), format!("v{i}"))).await,
            Ok(None)
        );
    }
    for r in &kv {
        assert_eq!(
            r.command(Command::Get("k1".into())).await,
            Ok(Some("v1".into()))
        );
        assert_eq!(r.read("k2".into()).await, Ok(Some("v2".into())));
    }
    // Every replica applies them (dirty reads see them once applied).
    let deadline = tokio::time::Instant::now() + LIMIT;
    while kv
        .iter()
        .any(|r| r.dirty_read("k0".into()) != Ok(Some("v0".into())))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not applied everywhere"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let leaders = kv
        .iter()
        .filter(|r| r.status().role == Role::Leader)
        .count();
    assert_eq!(leaders, 1);
}

/// A panic in the handler fails that command with its text, and the state
/// is as it was on every replica; the group goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_command_fails_and_leaves_every_replica_as_it_was() {
    let nodes = mesh(&["a@localhost", "b@localhost", "c@localhost"]).await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let kv = group(&nodes, &dirs).await;
    kv[0]
        .command(Command::Set("x".into(), "before".into()))
        .await
        .unwrap();
    match kv[1]
        .command(Command::SetThenPanic("x".into(), "half-way".into()))
        .await
    {
        Err(CommandError::Failed(why)) => {
            assert!(why.contains("a handler that fails half way"), "{why}")
        }
        other => panic!("the panic was not the command's error: {other:?}"),
    }
    assert_eq!(
        kv[2]
            .command(Command::Set("y".into(), "after".into()))
            .await,
        Ok(None)
    );
    for r in &kv {
        let deadline = tokio::time::Instant::now() + LIMIT;
        while r.dirty_read("y".into()) != Ok(Some("after".into())) {
            assert!(tokio::time::Instant::now() < deadline, "y not applied");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(r.dirty_read("x".into()), Ok(Some("before".into())));
    }
}

/// The leader's replica stops: the others elect a new leader, which
/// commits; the stopped member's commands fail within their timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leader_stops_the_others_elect_one_and_commit() {
    let nodes = mesh(&["a@localhost", "b@localhost", "c@localhost"]).await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let kv = group(&nodes, &dirs).await;
    kv[0]
        .command(Command::Set("k".into(), "1".into()))
        .await
        .unwrap();
    let leader = kv[0].status().leader.expect("a leader");
    let old = kv
        .iter()
        .position(|r| r.status().role == Role::Leader)
        .unwrap();
    assert_eq!(nodes[old].name(), leader);
    kv[old].stop().await;
    let other = (old + 1) % 3;

    assert_eq!(
        kv[other]
            .command(Command::Set("k".into(), "2".into()))
            .await,
        Ok(Some("1".into()))
    );
    let new_leader = kv[other].status().leader.expect("a new leader");
    assert_ne!(new_leader, leader);
}

/// Disc copies: replicas stopped and started again on the same files come
/// back with their state, and go on committing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_started_again_from_disc_has_its_state() {
    let nodes = mesh(&["a@localhost", "b@localhost", "c@localhost"]).await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let kv = group(&nodes, &dirs).await;
    for i in 0..20 {
        kv[i % 3]
            .command(Command::Set(format!("k{i}"), format!("v{i}")))
            .await
            .unwrap();
    }
    for r in &kv {
        r.stop().await;
    }
    drop(kv);
    // The group processes go with their replicas.
    let deadline = tokio::time::Instant::now() + LIMIT;
    let held = |n: &Node| {
        n.introspect()
            .registered()
            .iter()
            .any(|(name, _)| name == "raft:kv")
    };
    while nodes.iter().any(held) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the group processes stayed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let kv = group(&nodes, &dirs).await;
    assert_eq!(kv[1].read("k19".into()).await, Ok(Some("v19".into())));
    assert_eq!(
        kv[2]
            .command(Command::Set("k0".into(), "again".into()))
            .await,
        Ok(Some("v0".into()))
    );
}

/// Snapshots keep the log bounded while commands keep coming, from many
/// callers at once: openraft's users report a race between a snapshot's
/// log purge and the apply of entries queued before it (openraft #2116).
/// A member whose files are wiped rejoins through a snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_bound_the_log_under_load_and_a_wiped_member_rejoins() {
    let nodes = mesh(&["a@localhost", "b@localhost", "c@localhost"]).await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let members: Vec<String> = nodes.iter().map(|n| n.name().to_owned()).collect();
    let small = || RaftConfig {
        snapshot_every: 20,
        keep_after_snapshot: 2,
        ..config()
    };
    let mut kv = Vec::new();
    for (node, dir) in nodes.iter().zip(&dirs) {
        kv.push(std::sync::Arc::new(
            Raft::<ConsensusStore>::start(
                node,
                "kv",
                &members,
                Storage::Disc(dir.path().into()),
                small(),
            )
            .await
            .unwrap(),
        ));
    }
    kv[0].wait_for_leader(LIMIT).await.expect("a leader");
    // 16 callers, 40 commands each, through all three members.
    let mut callers = Vec::new();
    for c in 0..16 {
        let r = kv[c % 3].clone();
        callers.push(tokio::spawn(async move {
            for i in 0..40 {
                r.command(Command::Set(format!("c{c}"), format!("{i}")))
                    .await
                    .expect("committed");
            }
        }));
    }
    for c in callers {
        c.await.unwrap();
    }
    for r in &kv {
        let s = r.status();
        let last = s.last_log_index.unwrap();
        let purged = s.purged_index.expect("the log was purged");
        assert!(s.snapshot_index.is_some(), "{s:?}");
        assert!(last - purged <= 20 + 2 + 40, "the log grows: {s:?}");
    }
    // c's files are wiped: it starts empty and catches up from a snapshot.
    // A follower: the leader has seen its log (a new leader might not have).
    let w = kv
        .iter()
        .position(|r| r.status().role != Role::Leader)
        .unwrap();
    let wiped = nodes[w].name().to_owned();
    kv[w].stop().await;
    let c = kv.remove(w);
    drop(c);
    let held = |n: &Node| {
        n.introspect()
            .registered()
            .iter()
            .any(|(name, _)| name == "raft:kv")
    };
    let deadline = tokio::time::Instant::now() + LIMIT;
    while held(&nodes[w]) {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    std::fs::remove_dir_all(dirs[w].path()).unwrap();
    for i in 0..30 {
        kv[i % 2]
            .command(Command::Set("late".into(), format!("{i}")))
            .await
            .unwrap();
    }
    // Started as a member again, it is refused: it forgot what it had
    // acknowledged, and must not vote.
    let storage = || Storage::Disc(dirs[w].path().into());
    match Raft::<ConsensusStore>::start(&nodes[w], "kv", &members, storage(), small()).await {
        Err(clustertop_store::StartError::Wiped { matched, .. }) => assert!(matched > 0),
        other => panic!("a wiped member was started: {other:?}"),
    }
    // Removed, joined and added again, it catches up from a snapshot.
    kv[0].remove_member(&wiped).await.expect("removed");
    let c = Raft::<ConsensusStore>::join(&nodes[w], "kv", storage(), small())
        .await
        .unwrap();
    kv[1].add_member(&wiped, LIMIT).await.expect("c added");
    let deadline = tokio::time::Instant::now() + LIMIT;
    while c.dirty_read("late".into()) != Ok(Some("29".into())) {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", c.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(c.dirty_read("c15".into()), Ok(Some("39".into())));
    assert!(
        c.status().snapshot_index.is_some(),
        "caught up without a snapshot"
    );
}

/// A group file that is not a database stops that replica's start with
/// one error naming the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_group_file_is_named_in_the_error() {
    let node = dist_node("a@localhost");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kv.redb");
    std::fs::write(&file, b"this is not a redb file, it is a test's garbage").unwrap();
    let members = vec![node.name().to_owned()];
    let err = Raft::<ConsensusStore>::start(
        &node,
        "kv",
        &members,
        Storage::Disc(dir.path().into()),
        config(),
    )
    .await
    .expect_err("a garbage file is refused");
    let text = err.to_string();
    assert!(text.contains(&file.display().to_string()), "{text}");
}

/// A fourth node joins at run time: added as a learner, it catches up and
/// becomes a voter; then a first member is removed, and the group goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_added_and_removed_at_run_time() {
    let nodes = mesh(&["a@localhost", "b@localhost", "c@localhost", "d@localhost"]).await;
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let kv = group(&nodes[..3], &dirs[..3]).await;
    for i in 0..10 {
        kv[i % 3]
            .command(Command::Set(format!("k{i}"), format!("v{i}")))
            .await
            .unwrap();
    }
    let d = Raft::<ConsensusStore>::join(
        &nodes[3],
        "kv",
        Storage::Disc(dirs[3].path().into()),
        config(),
    )
    .await
    .unwrap();
    kv[1]
        .add_member("d@localhost", LIMIT)
        .await
        .expect("d added");
    assert_eq!(d.dirty_read("k9".into()), Ok(Some("v9".into())));
    let members = kv[0].status().members;
    assert_eq!(members.len(), 4, "{members:?}");
    // d votes and takes commands.
    assert_eq!(
        d.command(Command::Set("from-d".into(), "1".into())).await,
        Ok(None)
    );
    kv[2].remove_member("a@localhost").await.expect("a removed");
    let deadline = tokio::time::Instant::now() + LIMIT;
    while d.status().members.len() != 3 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", d.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kv[0].stop().await;
    assert_eq!(
        kv[1]
            .command(Command::Set("k0".into(), "after".into()))
            .await,
        Ok(Some("v0".into()))
    );
}
