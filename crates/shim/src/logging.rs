//! husk's log lines, in the two formats runc (logrus) writes and podman/containerd read.
//!
//! - json: `{"level":"error","msg":"...","time":"2026-11-25T15:04:05.123456789Z"}`, one a line.
//! - text: `time="2026-11-25T15:04:05.123456789Z" level=error msg="..."`.
//!
//! A tracing layer formats each event into one line and writes it with a single `write` to the
//! destination (the `--log` file opened with O_APPEND, or stderr). No threads, no buffering.

use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::cli::LogFormat;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("opening log file {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("installing the logger: {0}")]
    Install(#[from] tracing::subscriber::SetGlobalDefaultError),
}

/// Where log lines go.
#[derive(Debug)]
pub enum Destination {
    Stderr,
    File(File),
}

impl Destination {
    /// Open `--log FILE` (O_APPEND|O_CREAT, 0644, close-on-exec), or stderr without one.
    pub fn open(path: Option<&Path>) -> Result<Self, LogError> {
        let Some(path) = path else {
            return Ok(Destination::Stderr);
        };
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .open(path)
            .map(Destination::File)
            .map_err(|source| LogError::Open {
                path: path.to_path_buf(),
                source,
            })
    }

    pub fn is_stderr(&self) -> bool {
        matches!(self, Destination::Stderr)
    }

    /// Write one whole line with one call; a log failure is not worth failing the command for.
    fn write_line(&self, line: &str) {
        let _ = match self {
            Destination::Stderr => io::stderr().lock().write_all(line.as_bytes()),
            Destination::File(f) => (&*f).write_all(line.as_bytes()),
        };
    }
}

/// The logger: formats events as `format` and writes them to `dest`.
#[derive(Debug)]
pub struct Logger {
    format: LogFormat,
    max: Level,
    dest: Destination,
}

impl Logger {
    pub fn new(format: LogFormat, debug: bool, dest: Destination) -> Self {
        let max = if debug { Level::DEBUG } else { Level::INFO };
        Logger { format, max, dest }
    }

    /// Format one line (with its newline) in this logger's format, timestamped now.
    fn line(&self, level: Level, msg: &str, fields: &[(&'static str, String)]) -> String {
        let time = husk_runtime::state::now_rfc3339();
        match self.format {
            LogFormat::Json => format_json_line(level, &msg_with_fields(msg, fields), &time),
            LogFormat::Text => format_text_line(level, msg, fields, &time),
        }
    }
}

impl<S: Subscriber> Layer<S> for Logger {
    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        *metadata.level() <= self.max
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > self.max {
            return;
        }
        let mut v = FieldCollector::default();
        event.record(&mut v);
        self.dest
            .write_line(&self.line(level, &v.message, &v.fields));
    }
}

/// Install `logger` as the process-wide tracing subscriber.
pub fn install(logger: Logger) -> Result<(), LogError> {
    let subscriber = tracing_subscriber::registry().with(logger);
    tracing::subscriber::set_global_default(subscriber)?;
    Ok(())
}

/// The event's `message` and its other fields, values rendered as text.
#[derive(Default)]
struct FieldCollector {
    message: String,
    fields: Vec<(&'static str, String)>,
}

impl Visit for FieldCollector {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields.push((field.name(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields.push((field.name(), format!("{value:?}")));
        }
    }
}

/// logrus's level names ("warning", not "warn").
pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// `msg key=value key=value`: how the JSON format keeps to its three keys.
fn msg_with_fields(msg: &str, fields: &[(&'static str, String)]) -> String {
    let mut out = msg.to_string();
    for (k, v) in fields {
        let _ = write!(out, " {k}={v}");
    }
    out
}

/// `{"level":"...","msg":"...","time":"..."}\n`: exactly these keys, in this order (logrus's).
pub fn format_json_line(level: Level, msg: &str, time: &str) -> String {
    format!(
        "{{\"level\":{},\"msg\":{},\"time\":{}}}\n",
        json_string(level_name(level)),
        json_string(msg),
        json_string(time)
    )
}

fn json_string(s: &str) -> String {
    // Serializing a str cannot fail; fall back to an empty string rather than panic.
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

/// `time="..." level=... msg="..." key=value\n`, quoting values as logrus's text formatter does.
pub fn format_text_line(
    level: Level,
    msg: &str,
    fields: &[(&'static str, String)],
    time: &str,
) -> String {
    let mut out = format!(
        "time={} level={} msg={}",
        logfmt_value(time),
        level_name(level),
        logfmt_value(msg)
    );
    for (k, v) in fields {
        let _ = write!(out, " {k}={}", logfmt_value(v));
    }
    out.push('\n');
    out
}

/// A value as logrus writes it: bare if it only has `[A-Za-z0-9-._/@^+]`, else Go-quoted.
pub fn logfmt_value(s: &str) -> String {
    let bare = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._/@^+".contains(c));
    if bare {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2026-11-25T15:04:05.123456789Z";

    #[test]
    fn json_line_has_three_keys_in_order() {
        assert_eq!(
            format_json_line(Level::ERROR, "container \"x\" does not exist", T),
            "{\"level\":\"error\",\"msg\":\"container \\\"x\\\" does not exist\",\"time\":\"2026-11-25T15:04:05.123456789Z\"}\n"
        );
        let line = format_json_line(Level::WARN, "a\nb\\c\u{1}", T);
        assert!(
            line.ends_with('\n') && line.matches('\n').count() == 1,
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["level"], "warning");
        assert_eq!(v["msg"], "a\nb\\c\u{1}");
        assert_eq!(v["time"], T);
        assert_eq!(v.as_object().map(|o| o.len()), Some(3));
    }

    #[test]
    fn json_fields_go_into_msg() {
        let msg = msg_with_fields("started", &[("pid", "42".into()), ("id", "c1".into())]);
        assert_eq!(msg, "started pid=42 id=c1");
        assert_eq!(msg_with_fields("plain", &[]), "plain");
    }

    #[test]
    fn text_line_like_logrus() {
        assert_eq!(
            format_text_line(Level::ERROR, "container not found", &[], T),
            "time=\"2026-11-25T15:04:05.123456789Z\" level=error msg=\"container not found\"\n"
        );
        assert_eq!(
            format_text_line(Level::INFO, "ok", &[("pid", "42".into())], T),
            "time=\"2026-11-25T15:04:05.123456789Z\" level=info msg=ok pid=42\n"
        );
        assert_eq!(
            format_text_line(Level::DEBUG, "say \"hi\"\n", &[("path", "/a b".into())], T),
            "time=\"2026-11-25T15:04:05.123456789Z\" level=debug msg=\"say \\\"hi\\\"\\n\" path=\"/a b\"\n"
        );
    }

    #[test]
    fn logfmt_quoting() {
        assert_eq!(logfmt_value("abc-1.2/x@y^z+w_"), "abc-1.2/x@y^z+w_");
        assert_eq!(logfmt_value("a:b"), "\"a:b\"");
        assert_eq!(logfmt_value("tab\there"), "\"tab\\there\"");
        assert_eq!(logfmt_value("\u{7f}"), "\"\\x7f\"");
        assert_eq!(logfmt_value("é"), "\"é\"");
        assert_eq!(logfmt_value(""), "");
    }

    #[test]
    fn level_names() {
        assert_eq!(level_name(Level::WARN), "warning");
        assert_eq!(level_name(Level::TRACE), "trace");
    }

    #[test]
    fn debug_controls_max_level() {
        assert_eq!(
            Logger::new(LogFormat::Text, false, Destination::Stderr).max,
            Level::INFO
        );
        assert_eq!(
            Logger::new(LogFormat::Json, true, Destination::Stderr).max,
            Level::DEBUG
        );
    }
}
