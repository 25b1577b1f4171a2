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
        writer.write_str("{\"timestamp\":\"")?;
        Timestamp::now().write(&mut writer)?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(meta.level().as_str())?;
        writer.write_char('"')?;
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
            self.pair(field, |w| {
                w.write_str(ryu::Buffer::new().format_finite(value))
            });
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

/// A time as RFC 3339 in UTC with microseconds (`2026-12-04T22:39:53.123456Z`), as chrono
/// writes it, without formatting machinery: every log line starts with one.
struct Timestamp {
    /// Microseconds since the Unix epoch.
    micros: i64,
}

impl Timestamp {
    fn now() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            micros: i64::try_from(since.as_micros()).unwrap_or(i64::MAX),
        }
    }

    /// Writes the text; years outside 0 to 9999 go through chrono.
    fn write(&self, writer: &mut impl fmt::Write) -> fmt::Result {
        let (secs, micros) = (
            self.micros.div_euclid(1_000_000),
            self.micros.rem_euclid(1_000_000),
        );
        let (days, second_of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        if !(0..=9999).contains(&year) {
            let text = chrono::DateTime::from_timestamp_micros(self.micros)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
                .unwrap_or_default();
            return writer.write_str(&text);
        }
        let mut out = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, mut value: i64| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, second_of_day / 3600);
        put(14, 2, second_of_day / 60 % 60);
        put(17, 2, second_of_day % 60);
        put(20, 6, micros);
        writer.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

/// The proleptic Gregorian (year, month, day) of a day counted from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
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

    fn written(micros: i64) -> String {
        let mut text = String::new();
        Timestamp { micros }.write(&mut text).unwrap();
        text
    }

    fn chrono_text(micros: i64) -> String {
        chrono::DateTime::from_timestamp_micros(micros)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }

    #[test]
    fn timestamps_read_as_chrono_writes_them() {
        // Leap days, year and century ends, the epoch, before it, and the last year of four
        // digits.
        for text in [
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999999Z",
            "2000-02-29T12:00:00.5Z",
            "2026-12-31T23:59:59.999999Z",
            "2100-03-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
        ] {
            let micros = chrono::DateTime::parse_from_rfc3339(text)
                .unwrap()
                .timestamp_micros();
            assert_eq!(written(micros), chrono_text(micros), "{text}");
        }
        assert_eq!(written(0), "1970-01-01T00:00:00.000000Z");
        // Beyond four-digit years chrono writes the text.
        let far = chrono::DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z")
            .unwrap()
            .timestamp_micros()
            + 86_400_000_000;
        assert_eq!(written(far), chrono_text(far));
        let now = Timestamp::now().micros;
        assert_eq!(written(now), chrono_text(now));
    }

    proptest::proptest! {
        #[test]
        fn any_instant_reads_as_chrono_writes_it(micros in -62_167_219_200_000_000i64..253_402_300_800_000_000) {
            proptest::prop_assert_eq!(written(micros), chrono_text(micros));
        }
    }
}
