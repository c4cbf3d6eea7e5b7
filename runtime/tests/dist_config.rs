//! Settings that cannot work are refused when a node starts, with a typed
//! error naming the setting, instead of failing on every connection.

use clustertop_runtime::dist::{ConfigError, DistConfig};
use clustertop_runtime::{Node, NodeConfig, NodeError};
use std::process::Command;
use std::time::Duration;

fn start(dist: DistConfig) -> Result<Node, NodeError> {
    Node::start(NodeConfig::new("cfg@localhost").dist(dist.cookie("c")))
}

#[tokio::test]
async fn out_of_range_settings_are_refused_naming_the_setting() {
    let listen = "127.0.0.1:0".parse().unwrap();
    type Edit = fn(&mut DistConfig);
    let cases: [(&str, Edit); 5] = [
        ("tick_time", |d| d.tick_time = Duration::ZERO),
        ("tick_time", |d| d.tick_time = Duration::from_millis(1)),
        ("handshake_timeout", |d| {
            d.handshake_timeout = Duration::ZERO
        }),
        ("connect_timeout", |d| d.connect_timeout = Duration::ZERO),
        ("max_frame", |d| d.max_frame = 10),
    ];
    for (setting, edit) in cases {
        let mut dist = DistConfig::listen(listen);
        edit(&mut dist);
        match start(dist) {
            Err(NodeError::Config(ConfigError { setting: s, .. })) => assert_eq!(s, setting),
            other => panic!("{setting}: expected a config error, got {other:?}"),
        }
    }
    let mut dist = DistConfig::listen(listen);
    dist.busy_limit = 0;
    let e = start(dist).unwrap_err();
    assert!(e.to_string().contains("busy_limit"), "{e}");
    // The defaults start.
    start(DistConfig::listen(listen)).unwrap();
}

#[test]
fn a_zero_tick_on_the_command_line_is_one_line_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_clustertop-node"))
        .args(["--name", "z@localhost", "--listen", "127.0.0.1:0"])
        .args(["--cookie", "c", "--tick-ms", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("tick_time"), "{err}");
}
