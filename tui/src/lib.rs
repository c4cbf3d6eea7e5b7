//! `clustertop`: attach to a live cluster and watch it.
//!
//! ```text
//! clustertop [--node ADDR] [--cookie C] [--interval MS]     the interactive view
//! clustertop demo [--nodes 3] [--port 4370] [--stack]       a local demo cluster, attached
//! clustertop snapshot [--json]                              one overview, for scripts
//! clustertop logs [-f] [--node N] [--level L] [--grep TEXT] the cluster-wide log tail
//! ```
//!
//! Errors a user can hit (no node at the address, a wrong cookie, a
//! protocol version the node does not speak) print one line and exit with
//! status 1.

mod app;
pub mod bench;
mod cli;
mod demo;
mod error;
#[cfg(test)]
mod fixtures;
mod format;
mod keymap;
mod snapshot;
mod stack;
mod state;
mod target;
mod view;

use clap::Parser;
use std::process::ExitCode;

/// Runs the `clustertop` command line (the binary's `main`).
pub fn main() -> ExitCode {
    let args = cli::Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(cli::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clustertop: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("clustertop: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}
