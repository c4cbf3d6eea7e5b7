//! `clustertop-node`: a standalone node, for trying a cluster out and for
//! tests that need nodes in separate OS processes.
//!
//! ```text
//! clustertop-node --name a@localhost --listen 127.0.0.1:4370 [--cookie C]
//!                 [--connect HOST:PORT]... [--tick-ms N] [--global NAME]
//!                 [--workload]
//! ```
//!
//! `--workload` runs the soak test's workload (see `soak.rs`).
//!
//! The `--connect` members are kept: a static formation strategy connects
//! to them again whenever the connection is lost (a partition, a paused
//! node).
//!
//! It registers two services. `echo`: send it `(reply_to: Pid<String>,
//! text)` and it answers `"<node>: <text>"`. `sleeper`: send it a
//! `Pid<Pid<u64>>` and it answers with the pid of a long-lived idle process,
//! to link to or monitor. `--global NAME` also registers `echo` under
//! the global name `NAME`. It prints `listening <addr>` once up, logs node
//! events to stderr, and runs until killed.

mod soak;

use clustertop_runtime::dist::{DistConfig, Static};
use clustertop_runtime::{Node, NodeConfig, Pid, Received};
use std::process::ExitCode;
use std::time::Duration;

struct Args {
    name: String,
    listen: std::net::SocketAddr,
    cookie: Option<String>,
    connect: Vec<String>,
    tick: Option<Duration>,
    global: Option<String>,
    workload: bool,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut name, mut listen, mut cookie, mut connect, mut tick, mut global) =
        (None, None, None, vec![], None, None);
    let mut workload = false;
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--name" => name = Some(value()?),
            "--listen" => listen = Some(value()?.parse().map_err(|e| format!("--listen: {e}"))?),
            "--cookie" => cookie = Some(value()?),
            "--connect" => connect.push(value()?),
            "--global" => global = Some(value()?),
            "--workload" => workload = true,
            "--tick-ms" => {
                let ms: u64 = value()?.parse().map_err(|e| format!("--tick-ms: {e}"))?;
                tick = Some(Duration::from_millis(ms));
            }
            "--help" | "-h" => {
                return Err(
                    "usage: clustertop-node --name NAME@HOST --listen ADDR [--cookie C] \
                            [--connect HOST:PORT]... [--tick-ms N] [--global NAME] [--workload]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        name: name.ok_or("--name is required")?,
        listen: listen.ok_or("--listen is required")?,
        cookie,
        connect,
        tick,
        global,
        workload,
    })
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("clustertop-node: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let mut dist = DistConfig::listen(args.listen);
        dist.cookie = args.cookie;
        if let Some(t) = args.tick {
            dist.tick_time = t;
        }
        let node = match Node::start(NodeConfig::new(&args.name).dist(dist)) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("clustertop-node: {e}");
                return ExitCode::FAILURE;
            }
        };
        let echo = node.spawn::<(Pid<String>, String), _, _>(|mut ctx| async move {
            while let Received::Msg((reply_to, text)) = ctx.recv().await {
                reply_to.send(format!("{}: {text}", ctx.node().name()));
            }
        });
        echo.enable_remote();
        node.register("echo", echo.id()).expect("echo is free");
        // A long-lived process to link to or monitor, and a service that
        // hands out its pid.
        let sleeper = node.spawn::<u64, _, _>(|mut ctx| async move {
            while ctx.recv().await.into_msg().is_some() {}
        });
        sleeper.enable_remote();
        let sleeper_service = node.spawn::<Pid<Pid<u64>>, _, _>(move |mut ctx| async move {
            while let Received::Msg(reply_to) = ctx.recv().await {
                reply_to.send(sleeper.clone());
            }
        });
        sleeper_service.enable_remote();
        node.register("sleeper", sleeper_service.id())
            .expect("sleeper is free");
        if args.workload {
            // The soak workload takes the global name for its counter.
            if let Err(e) = soak::start(&node, args.global.as_deref()).await {
                eprintln!("clustertop-node: {e}");
                return ExitCode::FAILURE;
            }
        } else if let Some(name) = &args.global {
            if let Err(e) = node.global().register(name, &echo).await {
                eprintln!("clustertop-node: global name {name}: {e}");
                return ExitCode::FAILURE;
            }
        }
        for addr in &args.connect {
            if let Err(e) = node.connect(addr).await {
                eprintln!("clustertop-node: connect {addr}: {e}");
            }
        }
        // Keep the members: connect again whenever a connection is lost.
        let _formation = (!args.connect.is_empty())
            .then(|| node.dist().start_cluster(Static::new(args.connect.clone())));
        println!(
            "listening {}",
            node.dist().listen_addr().expect("listening")
        );
        let mut events = node.dist().node_events().expect("distributed");
        while let Ok(event) = events.recv().await {
            eprintln!("{event:?}");
        }
        ExitCode::SUCCESS
    })
}
