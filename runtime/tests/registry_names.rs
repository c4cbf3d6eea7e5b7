//! Local names and process groups.

mod support;

use clustertop_runtime::{LookupError, RegistryError};
use tokio::sync::oneshot;

#[tokio::test(start_paused = true)]
async fn register_whereis_send_and_cleanup_on_exit() {
    let node = support::node();
    let (tx, rx) = oneshot::channel();
    let pid = node.spawn::<String, _, _>(move |mut ctx| async move {
        let got = ctx.recv().await.into_msg().unwrap();
        tx.send(got).unwrap();
    });
    node.register("echo", pid.id()).unwrap();
    assert_eq!(node.whereis("echo"), Some(pid.id()));
    assert_eq!(
        node.introspect()
            .process_info(pid.id())
            .unwrap()
            .name
            .as_deref(),
        Some("echo")
    );

    let other = node.spawn::<String, _, _>(|_ctx| std::future::pending::<()>());
    assert_eq!(
        node.register("echo", other.id()),
        Err(RegistryError::Taken {
            name: "echo".into(),
            holder: pid.id()
        })
    );
    assert_eq!(
        node.register("second", pid.id()),
        Err(RegistryError::AlreadyNamed("echo".into()))
    );
    assert_eq!(
        node.send_named("echo", 5u32),
        Err(LookupError::WrongType {
            expected: "u32",
            actual: "alloc::string::String"
        })
    );

    node.send_named("echo", "hello".to_string()).unwrap();
    assert_eq!(rx.await.unwrap(), "hello");
    pid.exited().await;
    assert_eq!(node.whereis("echo"), None, "the name is freed on exit");
    assert_eq!(
        node.send_named("echo", "late".to_string()),
        Err(LookupError::NotRegistered("echo".into()))
    );
    node.register("echo", other.id()).unwrap();
    node.unregister("echo").unwrap();
    assert_eq!(node.whereis("echo"), None);
    assert_eq!(
        node.unregister("echo"),
        Err(RegistryError::NotRegistered("echo".into()))
    );
}

#[tokio::test(start_paused = true)]
async fn registering_a_dead_process_fails() {
    let node = support::node();
    let dead = node.spawn::<(), _, _>(|_ctx| async {});
    dead.exited().await;
    assert_eq!(node.register("x", dead.id()), Err(RegistryError::NoProcess));
}

#[tokio::test(start_paused = true)]
async fn groups_join_leave_and_clean_up_on_exit() {
    let node = support::node();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let a = node.spawn::<(), _, _>(move |_ctx| async move {
        stop_rx.await.unwrap();
    });
    let b = node.spawn::<(), _, _>(|_ctx| std::future::pending::<()>());
    node.groups().join("room:lobby", a.id()).unwrap();
    node.groups().join("room:lobby", b.id()).unwrap();
    node.groups().join("room:lobby", b.id()).unwrap();
    node.groups().join("room:ops", b.id()).unwrap();
    assert_eq!(node.groups().members("room:lobby"), [a.id(), b.id()]);
    let mut groups = node.groups().names();
    groups.sort();
    assert_eq!(groups, ["room:lobby", "room:ops"]);

    node.groups().leave("room:ops", b.id());
    assert!(node.groups().members("room:ops").is_empty());
    assert_eq!(node.groups().names(), ["room:lobby"]);

    stop_tx.send(()).unwrap();
    a.exited().await;
    assert_eq!(node.groups().members("room:lobby"), [b.id()]);
}
