//! Output: aligned tables (tabled) for people, one JSON document for scripts. Writing to a closed
//! pipe (`gbctl ... | head -1`) ends the program successfully.

use std::io::Write;

use serde::Serialize;
use tabled::builder::Builder;
use tabled::settings::Style;

/// Writes to stdout; a broken pipe means the reader has all it wanted, which is success.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let result = out.write_all(text.as_bytes()).and_then(|_| out.flush());
    if let Err(e) = result {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("gbctl: writing output failed: {e}");
        std::process::exit(1);
    }
}

pub fn json<T: Serialize + ?Sized>(value: &T) {
    let mut text = serde_json::to_string_pretty(value).expect("serializable");
    text.push('\n');
    emit(&text);
}

/// One JSON object on one line (NDJSON, for `logs -f`).
pub fn json_line<T: Serialize>(value: &T) {
    let mut text = serde_json::to_string(value).expect("serializable");
    text.push('\n');
    emit(&text);
}

pub fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut b = Builder::default();
    b.push_record(header.iter().map(|h| h.to_string()));
    for r in rows {
        b.push_record(r);
    }
    let mut t = b.build();
    t.with(Style::blank());
    emit(&format!("{t}\n"));
}

pub fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// `1h 2m 3s`.
pub fn human_secs(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m"),
    }
}

/// Shortens a cell for a table (JSON output keeps everything).
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}
