//! Logging: JSON lines for machines or text for people (by default, text on a terminal),
//! filtered by `RUST_LOG`.
//!
//! A JSON line is one object: `timestamp`, `level`, the event's fields (`message` first),
//! `target`, and `spans` when the event happened inside spans (their names and fields). It is
//! written straight into the line's buffer: tracing-subscriber's own JSON formatter goes
//! through serde and checks every small write as UTF-8 again, which made the access line a
//! quarter of the work of a query answered from the cache.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{fmt as subscriber_fmt, EnvFilter};

use crate::config::LogFormat;

/// Sets up logging; returns whether lines are JSON, so that what the process prints for people
/// (the start-up banner) goes through the log instead, and every line stays JSON.
pub fn init(format: LogFormat) -> bool {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = subscriber_fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let _ = if json {
        // No colour codes in span fields.
        builder.with_ansi(false).event_format(JsonLines).try_init()
    } else {
        builder.try_init()
    };
    json
}

/// The JSON line format (see the module's documentation).
struct JsonLines;

impl<S> FormatEvent<S, DefaultFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, DefaultFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        write!(
            writer,
            "{{\"timestamp\":\"{now}\",\"level\":\"{}\"",
            meta.level()
        )?;
        let mut fields = JsonFields {
            writer: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str(",\"target\":")?;
        string(&mut writer, meta.target())?;
        if let Some(scope) = ctx.event_scope() {
            writer.write_str(",\"spans\":[")?;
            for (i, span) in scope.from_root().enumerate() {
                if i > 0 {
                    writer.write_char(',')?;
                }
                writer.write_str("{\"name\":")?;
                string(&mut writer, span.name())?;
                let extensions = span.extensions();
                if let Some(formatted) = extensions.get::<FormattedFields<DefaultFields>>() {
                    if !formatted.is_empty() {
                        writer.write_str(",\"fields\":")?;
                        string(&mut writer, formatted)?;
                    }
                }
                writer.write_char('}')?;
            }
            writer.write_char(']')?;
        }
        writer.write_str("}\n")
    }
}

/// Writes an event's fields as `,"name":value` pairs.
struct JsonFields<'w, 'b> {
    writer: &'w mut Writer<'b>,
    result: fmt::Result,
}

impl JsonFields<'_, '_> {
    fn pair(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = (|| {
                self.writer.write_char(',')?;
                string(self.writer, field.name())?;
                self.writer.write_char(':')?;
                value(self.writer)
            })();
        }
    }
}

impl Visit for JsonFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.pair(field, |w| string(w, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.pair(field, |w| write!(w, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.pair(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.pair(field, |w| write!(w, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinities; serde_json writes them as null too.
        if value.is_finite() {
            self.pair(field, |w| write!(w, "{value}"));
        } else {
            self.pair(field, |w| w.write_str("null"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.pair(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// `value` as a JSON string.
fn string(writer: &mut impl fmt::Write, value: &str) -> fmt::Result {
    writer.write_char('"')?;
    Escaped(&mut *writer).write_str(value)?;
    writer.write_char('"')
}

/// Escapes what it is given for the inside of a JSON string.
struct Escaped<'a, W: fmt::Write + ?Sized>(&'a mut W);

impl<W: fmt::Write + ?Sized> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&s[plain..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = i + 1;
        }
        self.0.write_str(&s[plain..])
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_one_json_object_with_the_fields_in_order() {
        let lines = Lines::default();
        let sink = lines.clone();
        let subscriber = subscriber_fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                target: "access",
                method = "POST",
                status = 200u16,
                latency_ms = 0.25,
                nan = f64::NAN,
                ok = true,
                delta = -3i64,
                quoted = "a \"b\"\\\n\u{1}é",
                debug = ?vec!["x"],
                "request"
            );
            let span = tracing::info_span!("invoke", operation = "PutItem");
            let _entered = span.enter();
            tracing::warn!("inside {}", "a span");
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let mut lines = text.lines();
        let line = lines.next().unwrap();
        let at = |key: &str| line.find(&format!("\"{key}\":")).unwrap();
        assert_eq!(at("timestamp"), 1, "{line}");
        assert!(
            at("level") < at("message") && at("message") < at("method"),
            "{line}"
        );
        assert!(at("debug") < at("target"), "{line}");
        let first: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["message"], "request");
        assert_eq!(first["method"], "POST");
        assert_eq!(first["status"], 200);
        assert_eq!(first["latency_ms"], 0.25);
        assert_eq!(first["nan"], serde_json::Value::Null);
        assert_eq!(first["ok"], true);
        assert_eq!(first["delta"], -3);
        assert_eq!(first["quoted"], "a \"b\"\\\n\u{1}é");
        assert_eq!(first["debug"], "[\"x\"]");
        assert_eq!(first["target"], "access");
        let stamp = first["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "{stamp}"
        );

        let second: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(second["message"], "inside a span");
        assert_eq!(second["spans"][0]["name"], "invoke");
        assert_eq!(second["spans"][0]["fields"], "operation=\"PutItem\"");
        assert!(lines.next().is_none());
    }
}
