//! Human-sized numbers and one-line renderings shared by the views and the
//! plain commands: `48,211`, `1.2k/s`, `41.2s`, `212 MB`.

use clustertop_proto::{LogLevel, LogRecord, NodeStatus, PidRef, ProcessRow, Warning, WarningKind};

/// `48211` → `48,211`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate with a k/M suffix: `950`, `14.2k`, `1.82M`.
pub(crate) fn rate(per_s: f64) -> String {
    let a = per_s.abs();
    if a >= 1e6 {
        format!("{:.2}M", per_s / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", per_s / 1e3)
    } else if a >= 1e3 {
        format!("{:.2}k", per_s / 1e3)
    } else {
        format!("{:.0}", per_s)
    }
}

/// A large count in few characters: `262k`, `1.0M`, `950`.
pub(crate) fn compact(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1}M", n as f64 / 1e6)
    } else if n >= 10_000 {
        format!("{}k", n / 1_000)
    } else {
        count(n)
    }
}

/// Mailbox growth: `+1.2k/s`, `-40/s`, `0`.
pub(crate) fn growth(per_s: i64) -> String {
    match per_s {
        0 => "0".to_owned(),
        g if g > 0 => format!("+{}/s", rate(g as f64)),
        g => format!("{}/s", rate(g as f64)),
    }
}

/// A rate or share of a process: `text` once it is measured between two
/// readings, `–` before (a process first seen at the last sample).
pub(crate) fn measured(
    f: &clustertop_proto::ProcessFigures,
    text: impl FnOnce() -> String,
) -> String {
    if f.rates_known {
        text()
    } else {
        "–".to_owned()
    }
}

/// Bytes: `212 MB`, `1.4 GB`.
pub(crate) fn bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

/// A duration given in ms: `2ms`, `41.2s`, `5m12s`, `2h13m`, `3d4h`.
pub(crate) fn duration_ms(ms: u64) -> String {
    let s = ms / 1000;
    if ms < 1000 {
        format!("{ms}ms")
    } else if s < 60 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d{}h", s / 86_400, (s % 86_400) / 3600)
    }
}

/// A duration given in µs, for latencies: `0.9ms`, `120µs`.
pub(crate) fn micros(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{:.1}s", us as f64 / 1e6)
    } else if us >= 1_000 {
        format!("{:.1}ms", us as f64 / 1e3)
    } else {
        format!("{us}µs")
    }
}

/// A share of 1000: `31%`.
pub(crate) fn permille(p: u16) -> String {
    format!("{}%", (u32::from(p) + 5) / 10)
}

/// `<node.serial.creation>` as the runtime prints it, with the node's
/// short name.
pub(crate) fn pid(p: &PidRef) -> String {
    format!("<{}.{}>", short_node(&p.node), p.serial)
}

/// `demo-1@localhost` → `demo-1`.
pub(crate) fn short_node(node: &str) -> &str {
    node.split('@').next().unwrap_or(node)
}

/// A process's registered name, else its behaviour.
pub(crate) fn process_name(p: &ProcessRow) -> String {
    match &p.name {
        Some(n) => format!("{n}  {}", p.behaviour),
        None => p.behaviour.clone(),
    }
}

/// `up`, `slow`, `down`.
pub(crate) fn status(s: &NodeStatus) -> &'static str {
    match s {
        NodeStatus::Up => "up",
        NodeStatus::Slow => "slow",
        NodeStatus::Down { .. } => "down",
    }
}

/// The process a warning is about: `<demo-2.41> ChatSystem.MessageStore
/// (MessageStore)`, or its pid and behaviour when it has no name.
pub(crate) fn warning_process(w: &Warning) -> String {
    let Some(p) = &w.pid else {
        return String::new();
    };
    match (&w.name, &w.behaviour) {
        (Some(n), Some(b)) => format!("{} {n} ({b})", pid(p)),
        (Some(n), None) => format!("{} {n}", pid(p)),
        (None, Some(b)) => format!("{} {b}", pid(p)),
        (None, None) => pid(p),
    }
}

/// One line about a warning: what it is about, then why.
pub(crate) fn warning(w: &Warning) -> String {
    format!("{}: {}", warning_subject(w), warning_reason(w))
}

/// What a warning is about: its node, and its process if it has one.
pub(crate) fn warning_subject(w: &Warning) -> String {
    let on = short_node(&w.node);
    match warning_process(w) {
        p if p.is_empty() => on.to_owned(),
        p => format!("{on} {p}"),
    }
}

/// Why a warning is raised, without its subject.
pub(crate) fn warning_reason(w: &Warning) -> String {
    match &w.kind {
        WarningKind::MailboxGrowing { len, growth_per_s } => {
            format!("mailbox {} growing {}", count(*len), growth(*growth_per_s))
        }
        WarningKind::Saturated {
            util_permille,
            len,
            growth_per_s,
        } => format!(
            "saturated, in handlers {} of the time, mailbox {} growing {}",
            permille(*util_permille),
            count(*len),
            growth(*growth_per_s)
        ),
        WarningKind::LongHandler { running_ms } => {
            format!("handler running for {}", duration_ms(*running_ms))
        }
        WarningKind::RestartStorm {
            restarts,
            max_restarts,
        } => format!("{restarts} restarts of at most {max_restarts}"),
        WarningKind::DeadLetters { per_s } => format!("{per_s} dead letters/s"),
        WarningKind::FlappingLink { peer, flaps } => {
            format!("link to {} went down {flaps} times", short_node(peer))
        }
        WarningKind::NodeDown => "node down".to_owned(),
        WarningKind::ReductionsHog { per_s } => format!("{} reductions/s", count(*per_s)),
        WarningKind::MemoryHog { bytes: b } => format!("holds {}", bytes(*b)),
    }
}

/// `INFO`, `WARN`, …
pub(crate) fn level(l: LogLevel) -> &'static str {
    match l {
        LogLevel::Trace => "TRACE",
        LogLevel::Debug => "DEBUG",
        LogLevel::Info => "INFO",
        LogLevel::Warn => "WARN",
        LogLevel::Error => "ERROR",
    }
}

/// `14:02:11.204` (UTC) of a time in µs since the Unix epoch.
pub(crate) fn clock(at_unix_us: u64) -> String {
    let ms = at_unix_us / 1000;
    let (h, m, s, milli) = (
        (ms / 3_600_000) % 24,
        (ms / 60_000) % 60,
        (ms / 1000) % 60,
        ms % 1000,
    );
    format!("{h:02}:{m:02}:{s:02}.{milli:03}")
}

/// One log record on one line: time, level, node, pid, process, message,
/// fields.
/// `text` with every control character (escape, newline, C1 codes...)
/// written as its escape sequence, so what a peer or a process put in a
/// name or a message cannot drive the terminal or fake a line.
pub(crate) fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A record after its time and level: node, pid, process, message and
/// fields, pids in one style (see [`screen_pids`]).
pub(crate) fn log_rest(r: &LogRecord) -> String {
    let mut line = format!(
        "{} {} {}  {}",
        r.node,
        r.pid.as_ref().map(pid).unwrap_or_else(|| "-".to_owned()),
        r.process.as_deref().unwrap_or("-"),
        screen_pids(&r.message, &r.node)
    );
    for (k, v) in &r.fields {
        line.push_str(&format!(" {k}={}", screen_pids(v, &r.node)));
    }
    printable(&line).into_owned()
}

/// One log record on one line: `12:01:02.345 INFO  node pid process  message k=v`.
pub(crate) fn log_line(r: &LogRecord) -> String {
    format!(
        "{} {:<5} {}",
        clock(r.at_unix_us),
        level(r.level),
        log_rest(r)
    )
}

/// Pids inside text (log messages and fields, a message in a mailbox)
/// in the one form clustertop shows on screen, `<demo-2.7>` (the node's
/// short name and the serial): the agents write them in full,
/// `<demo-2@localhost.7.25731>` (what JSON carries); the runtime's own
/// form, `<0.7.25731>` (index 0: `node`, the record's node), is taken too.
/// Anything else between `<` and `>` stays as it is.
pub(crate) fn screen_pids<'a>(text: &'a str, node: &str) -> std::borrow::Cow<'a, str> {
    if !text.contains('<') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let short = after.find('>').and_then(|close| {
            // `who.serial.creation`, split from the right: a host may hold dots.
            let mut parts = after[..close].rsplitn(3, '.');
            let creation = parts.next()?;
            let serial = parts.next()?;
            let who = parts.next()?;
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if !digits(creation) || !digits(serial) {
                return None;
            }
            let name = match who {
                "0" => node,
                w if w.contains('@') && !w.contains(['<', ' ']) => w,
                _ => return None,
            };
            Some((format!("<{}.{serial}>", short_node(name)), close))
        });
        match short {
            Some((s, close)) => {
                out.push_str(&s);
                rest = &after[close + 1..];
                changed = true;
            }
            None => {
                out.push('<');
                rest = after;
            }
        }
    }
    if !changed {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// What an endpoint serves, in a word or two.
pub(crate) fn endpoint_kind(kind: clustertop_proto::EndpointKind) -> &'static str {
    use clustertop_proto::EndpointKind;
    match kind {
        EndpointKind::Prometheus => "prometheus",
        EndpointKind::OtlpTraces => "otlp traces",
        EndpointKind::OtlpMetrics => "otlp metrics",
        EndpointKind::OtlpLogs => "otlp logs",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_not_printed() {
        assert_eq!(printable("plain é"), "plain é");
        assert_eq!(
            printable("a\u{1b}]2;pwned\u{7}b\nc\u{9b}"),
            "a\\u{1b}]2;pwned\\u{7}b\\nc\\u{9b}"
        );
        let record = clustertop_proto::LogRecord {
            at_unix_us: 0,
            node: "a@host".into(),
            level: clustertop_proto::LogLevel::Warn,
            target: "t".into(),
            pid: None,
            process: Some("p\u{1b}[2J".into()),
            message: "two\nlines".into(),
            fields: vec![("k".into(), "v\r".into())],
            trace_id: None,
        };
        let line = log_line(&record);
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(!line.chars().any(char::is_control), "{line}");
    }

    #[test]
    fn pids_in_log_text_take_the_view_style() {
        let node = "demo-2@localhost";
        assert_eq!(
            screen_pids("child exited supervisor=<0.7.25731> pid=<0.12.25731>", node),
            "child exited supervisor=<demo-2.7> pid=<demo-2.12>"
        );
        // Another node's pid (an index only its node names), and text
        // that only looks like the start of one, stay as they are.
        assert_eq!(
            screen_pids("<3.5.9> <0.x> <0.5> a<0.", node),
            "<3.5.9> <0.x> <0.5> a<0."
        );
        assert!(matches!(
            screen_pids("no pids", node),
            std::borrow::Cow::Borrowed(_)
        ));
        // The full form the agents write, any node, a host with dots.
        assert_eq!(
            screen_pids(
                "Msg { from: <demo-3@localhost.8.40253>, to: <a@10.0.0.7.2.1>, x: Vec<u8> }",
                node
            ),
            "Msg { from: <demo-3.8>, to: <a.2>, x: Vec<u8> }"
        );
    }

    #[test]
    fn numbers_are_human_sized() {
        assert_eq!(count(48_211), "48,211");
        assert_eq!(count(0), "0");
        assert_eq!(count(1_000_000), "1,000,000");
        assert_eq!(rate(950.0), "950");
        assert_eq!(rate(1_234.0), "1.23k");
        assert_eq!(rate(14_200.0), "14.2k");
        assert_eq!(rate(1_820_000.0), "1.82M");
        assert_eq!(growth(1_200), "+1.20k/s");
        assert_eq!(growth(-40), "-40/s");
        assert_eq!(growth(0), "0");
        assert_eq!(bytes(212_000_000), "212 MB");
        assert_eq!(bytes(1_400_000_000), "1.4 GB");
        assert_eq!(duration_ms(2), "2ms");
        assert_eq!(duration_ms(41_200), "41.2s");
        assert_eq!(duration_ms(7_980_000), "2h13m");
        assert_eq!(micros(900), "900µs");
        assert_eq!(micros(4_100), "4.1ms");
        assert_eq!(permille(1000), "100%");
        assert_eq!(clock(3_723_004_000), "01:02:03.004");
    }
}
