//! The panic hook. In its own test binary: the hook is process-wide and
//! tracing's callsite interest is shared, so other tests must not race it.

mod support;

/// Collects formatted log output in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<parking_lot::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn panic_hook_reports_process_panics_as_events() {
    clustertop_runtime::install_panic_hook();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let node = support::node();
    let pid = node.spawn::<(), _, _>(|_ctx| async { panic!("reported once") });
    pid.exited().await;
    let text = String::from_utf8(captured.0.lock().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("process panicked: reported once"))
        .unwrap_or_else(|| panic!("no panic event in:\n{text}"));
    assert!(line.contains("ERROR"));
    assert!(line.contains(&format!("pid={}", pid.id())));
    assert!(
        line.contains("tests/panic_hook.rs:"),
        "location missing: {line}"
    );
}
