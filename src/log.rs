//! Diagnostics on stderr (stdout belongs to the protocol). The level comes from `RUST_LOG`
//! (a bare level such as `debug`; module filters are not supported, the last bare level wins;
//! default `warn`), and `LOG_FORMAT=json` writes one JSON object per line instead of text.
//! Secrets must never reach these functions; callers pass redacted text.

use std::sync::OnceLock;

/// Severity of a log line, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed.
    Error,
    /// Something odd that the process survives.
    Warn,
    /// Lifecycle events.
    Info,
    /// Details for developers.
    Debug,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        match word.trim().to_ascii_lowercase().as_str() {
            "error" | "off" => Some(Level::Error),
            "warn" | "warning" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" | "trace" => Some(Level::Debug),
            _ => None,
        }
    }
}

struct Settings {
    max: Level,
    json: bool,
}

fn settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let max = std::env::var("RUST_LOG")
            .ok()
            .and_then(|spec| spec.split(',').filter_map(Level::parse).next_back())
            .unwrap_or(Level::Warn);
        let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
        Settings { max, json }
    })
}

/// Whether a line at `level` would be written; lets callers skip building expensive messages.
pub fn enabled(level: Level) -> bool {
    level <= settings().max
}

/// Writes one line at `level` to stderr if the level is enabled. Never fails.
pub fn write(level: Level, message: &str) {
    if !enabled(level) {
        return;
    }
    let now_ms = crate::time::unix_millis();
    let line = if settings().json {
        serde_json::json!({"timestampMs": now_ms, "level": level.as_str(), "message": message})
            .to_string()
    } else {
        format!(
            "{} {:5} {message}",
            crate::time::rfc3339_millis(now_ms),
            level.as_str()
        )
    };
    // Unit tests: through the test harness's capture, shown only for a failing test (the
    // parsers' tests feed broken input on purpose and would fill the output with warnings).
    #[cfg(test)]
    eprintln!("{line}");
    #[cfg(not(test))]
    {
        use std::io::Write;
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{line}");
    }
}

/// Logs at error level.
pub fn error(message: &str) {
    write(Level::Error, message);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Logs at debug level.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}
