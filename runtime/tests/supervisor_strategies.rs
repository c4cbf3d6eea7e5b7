//! Supervisors: strategies, intensity, shutdown order, start failures,
//! dynamic supervisors and task supervisors.

mod support;

use clustertop_runtime::supervisor::{
    ChildSpec, Restart, Shutdown, Strategy, Supervisor, SupervisorPid,
};
use clustertop_runtime::task::{TaskError, TaskSupervisor};
use clustertop_runtime::{
    CallResult, ExitReason, Flow, GenServer, Node, ProcessId, ServerContext, StartError,
};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

type Log = Arc<Mutex<Vec<String>>>;

struct Worker {
    name: &'static str,
    log: Log,
}

#[derive(Debug)]
enum Cmd {
    Crash,
    Quit,
}

impl GenServer for Worker {
    type Args = (&'static str, Log, bool);
    type Call = ();
    type Reply = ();
    type Cast = Cmd;
    type Info = ();

    async fn init(
        (name, log, fail): Self::Args,
        ctx: &mut ServerContext<Self>,
    ) -> Result<Self, ExitReason> {
        if fail {
            return Err(ExitReason::custom("refused to start"));
        }
        ctx.trap_exit(true);
        log.lock().push(format!("start {name}"));
        Ok(Worker { name, log })
    }

    async fn handle_call(&mut self, _: (), _ctx: &mut ServerContext<Self>) -> CallResult<()> {
        CallResult::Reply(())
    }

    async fn handle_cast(&mut self, cmd: Cmd, _ctx: &mut ServerContext<Self>) -> Flow {
        match cmd {
            Cmd::Crash => panic!("{} crashed", self.name),
            Cmd::Quit => Flow::Stop(ExitReason::Normal),
        }
    }

    async fn terminate(&mut self, reason: &ExitReason, _ctx: &mut ServerContext<Self>) {
        self.log.lock().push(format!("stop {} {reason}", self.name));
    }
}

fn worker(name: &'static str, log: &Log) -> ChildSpec {
    ChildSpec::worker::<Worker>(name, (name, log.clone(), false))
}

async fn pids(sup: &SupervisorPid) -> Vec<Option<ProcessId>> {
    sup.which_children()
        .await
        .unwrap()
        .iter()
        .map(|c| c.pid)
        .collect()
}

async fn crash(node: &Node, pid: ProcessId) {
    let w = node
        .pid::<clustertop_runtime::gen_server::ServerMsg<Worker>>(pid)
        .unwrap();
    let exited = w.exited();
    w.cast(Cmd::Crash);
    exited.await;
}

async fn three(strategy: Strategy) -> (Node, Log, SupervisorPid, Vec<Option<ProcessId>>) {
    let node = support::node();
    let log = Log::default();
    let sup = Supervisor::new(strategy)
        .child(worker("a", &log))
        .child(worker("b", &log))
        .child(worker("c", &log))
        .start(&node)
        .await
        .unwrap();
    let before = pids(&sup).await;
    assert!(before.iter().all(Option::is_some));
    assert_eq!(*log.lock(), ["start a", "start b", "start c"]);
    log.lock().clear();
    (node, log, sup, before)
}

#[tokio::test(start_paused = true)]
async fn one_for_one_restarts_only_the_crashed_child() {
    let (node, log, sup, before) = three(Strategy::OneForOne).await;
    crash(&node, before[1].unwrap()).await;
    let after = pids(&sup).await;
    assert_eq!(after[0], before[0]);
    assert_ne!(after[1], before[1]);
    assert!(after[1].is_some());
    assert_eq!(after[2], before[2]);
    assert_eq!(*log.lock(), ["start b"]);
}

#[tokio::test(start_paused = true)]
async fn one_for_all_restarts_every_child_in_order() {
    let (node, log, sup, before) = three(Strategy::OneForAll).await;
    crash(&node, before[1].unwrap()).await;
    let after = pids(&sup).await;
    for i in 0..3 {
        assert_ne!(after[i], before[i], "child {i} must be restarted");
        assert!(after[i].is_some());
    }
    assert_eq!(
        *log.lock(),
        [
            "stop c shutdown",
            "stop a shutdown",
            "start a",
            "start b",
            "start c"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn rest_for_one_restarts_the_child_and_those_after_it() {
    let (node, log, sup, before) = three(Strategy::RestForOne).await;
    crash(&node, before[1].unwrap()).await;
    let after = pids(&sup).await;
    assert_eq!(after[0], before[0]);
    assert_ne!(after[1], before[1]);
    assert_ne!(after[2], before[2]);
    assert_eq!(*log.lock(), ["stop c shutdown", "start b", "start c"]);
}

#[tokio::test(start_paused = true)]
async fn transient_and_temporary_children_follow_their_policy() {
    let node = support::node();
    let log = Log::default();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(worker("t", &log).restart(Restart::Transient))
        .child(worker("tmp", &log).restart(Restart::Temporary))
        .start(&node)
        .await
        .unwrap();
    let before = pids(&sup).await;
    // A transient child that stops normally is not restarted, but kept.
    let t = node
        .pid::<clustertop_runtime::gen_server::ServerMsg<Worker>>(before[0].unwrap())
        .unwrap();
    let gone = t.exited();
    t.cast(Cmd::Quit);
    gone.await;
    // A temporary child is never restarted and is forgotten.
    crash(&node, before[1].unwrap()).await;
    let children = sup.which_children().await.unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(children[0].id, "t");
    assert_eq!(children[0].pid, None);
}

#[tokio::test(start_paused = true)]
async fn exceeding_intensity_stops_the_supervisor_with_shutdown() {
    let node = support::node();
    let log = Log::default();
    let sup = Supervisor::new(Strategy::OneForOne)
        .intensity(2, Duration::from_secs(5))
        .child(worker("a", &log))
        .child(worker("b", &log))
        .start(&node)
        .await
        .unwrap();
    let sup_exit = sup.exited();
    for _ in 0..2 {
        let b = pids(&sup).await[1].unwrap();
        crash(&node, b).await;
    }
    assert!(sup.is_alive(), "two restarts are within the intensity");
    let b = pids(&sup).await[1].unwrap();
    let a = pids(&sup).await[0].unwrap();
    crash(&node, b).await;
    assert_eq!(sup_exit.await, ExitReason::Shutdown);
    support::wait_dead(&node, a).await;
    assert_eq!(log.lock().last().unwrap(), "stop a shutdown");
}

#[tokio::test(start_paused = true)]
async fn restarts_outside_the_period_do_not_accumulate() {
    let node = support::node();
    let log = Log::default();
    let sup = Supervisor::new(Strategy::OneForOne)
        .intensity(1, Duration::from_secs(5))
        .child(worker("a", &log))
        .start(&node)
        .await
        .unwrap();
    for _ in 0..4 {
        let a = pids(&sup).await[0].unwrap();
        crash(&node, a).await;
        tokio::time::sleep(Duration::from_secs(6)).await;
    }
    assert!(sup.is_alive());
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_children_in_reverse_start_order() {
    let node = support::node();
    let log = Log::default();
    let inner = Supervisor::new(Strategy::OneForOne).child(worker("inner", &log));
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(worker("a", &log))
        .child(ChildSpec::supervisor("nested", inner))
        .child(worker("c", &log).shutdown(Shutdown::Timeout(Duration::from_secs(1))))
        .start(&node)
        .await
        .unwrap();
    let tree = node.introspect().supervision_tree();
    assert_eq!(tree.len(), 1);
    assert_eq!(tree[0].id, sup.id());
    assert_eq!(tree[0].children.len(), 3);
    assert_eq!(tree[0].children[1].children.len(), 1);
    log.lock().clear();
    sup.stop(ExitReason::Shutdown, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        *log.lock(),
        ["stop c shutdown", "stop inner shutdown", "stop a shutdown"]
    );
    assert_eq!(node.introspect().process_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_child_failing_init_fails_the_start_naming_it() {
    let node = support::node();
    let log = Log::default();
    let r = Supervisor::new(Strategy::OneForOne)
        .child(worker("a", &log))
        .child(ChildSpec::worker::<Worker>("b", ("b", log.clone(), true)))
        .child(worker("c", &log))
        .start(&node)
        .await;
    match r {
        Err(StartError::Init(ExitReason::FailedToStartChild(failure))) => {
            assert_eq!(failure.child, "b");
            assert_eq!(failure.reason, ExitReason::custom("refused to start"));
        }
        other => panic!("expected a failed child start, got {other:?}"),
    }
    assert_eq!(*log.lock(), ["start a", "stop a shutdown"]);
    assert_eq!(node.introspect().process_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn dynamic_supervisor_starts_and_terminates_children() {
    let node = support::node();
    let log = Log::default();
    let sup = Supervisor::dynamic().start(&node).await.unwrap();
    let a = sup.start_child(worker("a", &log)).await.unwrap();
    let b = sup.start_child(worker("b", &log)).await.unwrap();
    assert_eq!(pids(&sup).await, [Some(a), Some(b)]);
    assert!(sup.terminate_child(a.to_string()).await.unwrap());
    assert_eq!(pids(&sup).await, [Some(b)]);
    crash(&node, b).await;
    let now = pids(&sup).await;
    assert_eq!(now.len(), 1);
    assert_ne!(now[0], Some(b), "a permanent dynamic child is restarted");
    assert!(!sup.terminate_child("nope").await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn task_supervisor_runs_awaits_and_reports_crashes() {
    let node = support::node();
    let tasks = TaskSupervisor::start(&node).await.unwrap();
    let t = tasks.async_nolink(async { 6 * 7 }).await.unwrap();
    assert_eq!(t.await_timeout(Duration::from_secs(1)).await, Ok(42));

    let slow = tasks
        .async_nolink(async {
            tokio::time::sleep(Duration::from_secs(60)).await;
        })
        .await
        .unwrap();
    let slow_pid = slow.pid();
    assert_eq!(
        slow.await_timeout(Duration::from_secs(1)).await,
        Err(TaskError::Timeout)
    );
    support::wait_dead(&node, slow_pid).await;

    let bad = tasks
        .async_nolink(async {
            panic!("task failed");
        })
        .await
        .unwrap();
    let r: Result<(), _> = bad.await_timeout(Duration::from_secs(1)).await;
    assert_eq!(
        r,
        Err(TaskError::Exited(ExitReason::Panic("task failed".into())))
    );
    assert!(
        tasks.pid().is_alive(),
        "a crashed task does not take down its supervisor"
    );
    assert!(tasks.pid().which_children().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn linked_task_crash_reaches_the_caller() {
    let node = support::node();
    let tasks = TaskSupervisor::start(&node).await.unwrap();
    let caller = node.spawn::<(), _, _>(move |_ctx| async move {
        let t = tasks
            .async_task(async { panic!("linked task failed") })
            .await
            .unwrap();
        let _: Result<(), _> = t.await_timeout(Duration::from_secs(5)).await;
        std::future::pending::<()>().await;
    });
    assert_eq!(
        caller.exited().await,
        ExitReason::Panic("linked task failed".into())
    );
}

#[tokio::test(start_paused = true)]
async fn the_tree_shows_strategy_restarts_and_each_childs_last_exit() {
    let (node, _log, sup, before) = three(Strategy::RestForOne).await;
    let loner = node.spawn::<u8, _, _>(|mut ctx| async move {
        ctx.recv().await;
    });
    crash(&node, before[1].unwrap()).await;
    let after = pids(&sup).await;
    let tree = node.introspect().supervision_tree();
    let root = tree
        .iter()
        .find(|n| n.id == sup.id())
        .expect("the supervisor");
    assert_eq!(root.strategy, Some(Strategy::RestForOne));
    // b and c were restarted: two restarts within the period, of 3 in 5 s.
    assert_eq!(root.restarts, Some((2, 3, Duration::from_secs(5))));
    assert_eq!(root.restarts_total, Some(2));
    let child = |pid: Option<ProcessId>| {
        root.children
            .iter()
            .find(|c| Some(c.id) == pid)
            .and_then(|c| c.child.clone())
            .expect("a published child")
    };
    let a = child(after[0]);
    assert_eq!((a.id.as_str(), a.last_exit), ("a", None));
    let b = child(after[1]);
    assert_eq!(b.id, "b");
    assert_eq!(
        b.last_exit.map(|e| e.reason),
        Some(ExitReason::Panic("b crashed".into()))
    );
    // c did not crash: its supervisor stopped it, to restart it after b.
    let c = child(after[2]);
    assert_eq!(c.last_exit.map(|e| e.reason), Some(ExitReason::Shutdown));
    // A process no supervisor started is listed on its own.
    let (outside, total) = node.introspect().unsupervised(10);
    assert_eq!(total, 1);
    assert_eq!(outside[0].id, loner.id());
    // Past the period the restarts no longer count.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let tree = node.introspect().supervision_tree();
    assert_eq!(tree[0].restarts, Some((0, 3, Duration::from_secs(5))));
}
