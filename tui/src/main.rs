//! The `clustertop` binary; everything is in the library (see `lib.rs`).

fn main() -> std::process::ExitCode {
    clustertop_tui::main()
}
