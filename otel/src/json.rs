//! JSON log lines with the node, the process and the span path.

use serde_json::{Map, Value};
use std::io::Write;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Writes each event as one JSON object on one line.
pub(crate) struct JsonLayer<W> {
    node: String,
    writer: W,
}

impl<W> JsonLayer<W> {
    pub(crate) fn new(node: String, writer: W) -> Self {
        JsonLayer { node, writer }
    }
}

struct Fields<'a> {
    fields: &'a mut Map<String, Value>,
    message: &'a mut Option<String>,
}

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            *self.message = Some(text);
        } else {
            self.fields
                .insert(field.name().to_owned(), Value::String(text));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            *self.message = Some(value.to_owned());
        } else {
            self.fields
                .insert(field.name().to_owned(), Value::String(value.to_owned()));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.insert(field.name().to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.insert(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.insert(field.name().to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields.insert(field.name().to_owned(), value.into());
    }
}

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Map::new();
        let mut message = None;
        event.record(&mut Fields {
            fields: &mut fields,
            message: &mut message,
        });
        let mut timestamp = String::new();
        let _ = SystemTime.format_time(&mut Writer::new(&mut timestamp));
        let mut line = Map::new();
        line.insert("timestamp".into(), timestamp.into());
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        line.insert("message".into(), message.unwrap_or_default().into());
        line.insert("fields".into(), Value::Object(fields));
        line.insert("node".into(), self.node.clone().into());
        if let Some(p) = clustertop_runtime::current_process() {
            line.insert("pid".into(), p.id.to_string().into());
            let name = p.name.unwrap_or_else(|| p.behaviour.to_owned());
            line.insert("process".into(), name.into());
        }
        if let Some((trace_id, span_id)) = crate::traces::current_ids() {
            line.insert("trace_id".into(), trace_id.into());
            line.insert("span_id".into(), span_id.into());
        }
        if let Some(scope) = ctx.event_scope(event) {
            let spans: Vec<Value> = scope
                .from_root()
                .map(|s| Value::String(s.name().to_owned()))
                .collect();
            if !spans.is_empty() {
                line.insert("spans".into(), Value::Array(spans));
            }
        }
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        // One write per record, so lines from many threads never interleave.
        let _ = self.writer.make_writer().write_all(text.as_bytes());
    }
}
