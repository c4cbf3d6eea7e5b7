//! Repeated warnings and errors of the OpenTelemetry SDK and exporters,
//! throttled: an export that keeps failing (a collector that is down, or
//! one that refuses a signal) says so once, then once a window with how
//! many times it repeated, instead of a line per attempt.
//!
//! # Cost
//! Events of other targets pass after one comparison of the target's
//! first bytes. An SDK event at warn or error level takes a short lock and
//! a map lookup by callsite; the map holds one entry per SDK callsite that
//! has fired (a set fixed by the SDK's code, so bounded).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::callsite::Identifier;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

/// How often a repeating SDK warning or error is let through.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// The target the repeat counts are logged under.
const TARGET: &str = "clustertop_otel";

/// The layer (see the module docs). Its counts are logged by
/// [`Throttle::flush`], which `init` calls once a window from a thread of
/// its own: an event cannot be logged from inside the dispatch of another.
#[derive(Clone)]
pub(crate) struct Throttle {
    window: Duration,
    seen: Arc<Mutex<HashMap<Identifier, Seen>>>,
}

struct Seen {
    /// When it last fired, passed or held.
    last_at: Instant,
    /// Held since the last flush.
    held: u64,
    target: &'static str,
    name: &'static str,
}

impl Throttle {
    pub(crate) fn new(window: Duration) -> Self {
        Throttle {
            window,
            seen: Arc::default(),
        }
    }

    /// Logs, for each SDK record held since the last call, how many times
    /// it repeated.
    pub(crate) fn flush(&self) {
        let held: Vec<(u64, &'static str, &'static str)> = self
            .seen
            .lock()
            .values_mut()
            .filter(|s| s.held > 0)
            .map(|s| (std::mem::take(&mut s.held), s.target, s.name))
            .collect();
        for (repeats, target, name) in held {
            tracing::warn!(
                target: TARGET,
                repeats,
                of = target,
                record = name,
                "an OpenTelemetry record repeated {repeats} more time{} since it was shown",
                if repeats == 1 { "" } else { "s" }
            );
        }
    }

    /// Flushes every window from a thread of its own, until `self`'s last
    /// other handle is dropped.
    pub(crate) fn flush_every_window(&self) {
        let weak = Arc::downgrade(&self.seen);
        let window = self.window;
        let _ = std::thread::Builder::new()
            .name("otel-throttle".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(window);
                    let Some(seen) = weak.upgrade() else { return };
                    Throttle { window, seen }.flush();
                }
            });
    }
}

impl<S: Subscriber> Layer<S> for Throttle {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let meta = event.metadata();
        // More verbose than warn, or not the SDK's: not ours to hold.
        if *meta.level() > Level::WARN || !meta.target().starts_with("opentelemetry") {
            return true;
        }
        let now = Instant::now();
        let mut seen = self.seen.lock();
        match seen.get_mut(&meta.callsite()) {
            None => {
                seen.insert(
                    meta.callsite(),
                    Seen {
                        last_at: now,
                        held: 0,
                        target: meta.target(),
                        name: meta.name(),
                    },
                );
                true
            }
            // Quiet for a window and nothing held: news again.
            Some(s) if s.held == 0 && now.duration_since(s.last_at) >= self.window => {
                s.last_at = now;
                true
            }
            Some(s) => {
                s.last_at = now;
                s.held += 1;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    /// Keeps the target and message of every event it is shown.
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<(String, String)>>>);

    impl<S: Subscriber> Layer<S> for Seen {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            struct Message(String);
            impl tracing::field::Visit for Message {
                fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                    if f.name() == "message" {
                        self.0 = format!("{v:?}");
                    }
                }
            }
            let mut m = Message(String::new());
            event.record(&mut m);
            self.0
                .lock()
                .push((event.metadata().target().to_owned(), m.0));
        }
    }

    fn export_failed(n: u32) {
        tracing::error!(target: "opentelemetry_sdk", n, "export failed: Unimplemented");
    }

    #[test]
    fn a_repeating_sdk_error_passes_once_a_window_with_its_count() {
        let seen = Seen::default();
        let throttle = Throttle::new(Duration::from_millis(200));
        let subscriber = tracing_subscriber::registry()
            .with(throttle.clone())
            .with(seen.clone());
        tracing::subscriber::with_default(subscriber, || {
            for n in 0..50 {
                export_failed(n);
                // Other targets, and the SDK's info, are never held.
                tracing::warn!(target: "app", "app warning");
                tracing::info!(target: "opentelemetry_sdk", "sdk info");
            }
            // The window's count, then nothing held: a flush says nothing.
            throttle.flush();
            throttle.flush();
            // Still failing within a window of the last: held.
            std::thread::sleep(Duration::from_millis(100));
            export_failed(50);
            throttle.flush();
            // Quiet for a window: the next one is news, shown again.
            std::thread::sleep(Duration::from_millis(250));
            export_failed(51);
        });
        let seen = seen.0.lock();
        let sdk: Vec<&(String, String)> = seen
            .iter()
            .filter(|(t, m)| t == "opentelemetry_sdk" && m.contains("export failed"))
            .collect();
        assert_eq!(
            sdk.len(),
            2,
            "once, then once after a quiet window: {seen:?}"
        );
        let counts: Vec<&String> = seen
            .iter()
            .filter(|(t, _)| t == TARGET)
            .map(|(_, m)| m)
            .collect();
        assert_eq!(counts.len(), 2, "{seen:?}");
        assert!(counts[0].contains("repeated 49 more times"), "{counts:?}");
        assert!(counts[1].contains("repeated 1 more time "), "{counts:?}");
        assert_eq!(seen.iter().filter(|(t, _)| t == "app").count(), 50);
        assert_eq!(
            seen.iter().filter(|(_, m)| m.contains("sdk info")).count(),
            50
        );
    }
}
