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

/// The longest a table cell gets before it is cut with `…`.
const MAX_CELL: usize = 120;

/// Every table cell goes through `cell`: no control character (from client text such as a model
/// name or an error message) reaches the terminal raw.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut b = Builder::default();
    b.push_record(header.iter().map(|h| h.to_string()));
    for r in rows {
        b.push_record(r.iter().map(|c| cell(c)));
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

/// A value made safe for a terminal: control characters shown escaped (`\u{1b}`, `\n`), and cut
/// with `…` past `MAX_CELL` characters.
pub fn cell(s: &str) -> String {
    let escaped: String =
        if s.chars().any(char::is_control) { s.chars().flat_map(EscapeControl::new).collect() } else { s.to_string() };
    clip(&escaped, MAX_CELL)
}

/// A character, or its escape when it is a control character.
enum EscapeControl {
    Plain(Option<char>),
    Escaped(std::char::EscapeDefault),
}

impl EscapeControl {
    fn new(c: char) -> Self {
        if c.is_control() { EscapeControl::Escaped(c.escape_default()) } else { EscapeControl::Plain(Some(c)) }
    }
}

impl Iterator for EscapeControl {
    type Item = char;
    fn next(&mut self) -> Option<char> {
        match self {
            EscapeControl::Plain(c) => c.take(),
            EscapeControl::Escaped(e) => e.next(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_escaped_and_cut() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a\u{1b}[31mred\nb\tc"), "a\\u{1b}[31mred\\nb\\tc");
        assert!(!cell("\u{7}\u{0}\r").chars().any(char::is_control));
        let long = cell(&"x".repeat(500));
        assert_eq!((long.chars().count(), long.ends_with('…')), (MAX_CELL, true));
        assert_eq!(cell("café ✓"), "café ✓", "printable text is kept");
    }
}
