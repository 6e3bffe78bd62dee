//! What the CLI prints: tables with a header row for people, JSON for scripts.

use serde_json::Value;
use time::OffsetDateTime;
use time::macros::format_description;

/// Prints `rows` under `header`, each column as wide as its widest cell; `empty` when there
/// are no rows, so that nothing printed never means "something went wrong".
pub fn table(header: &[&str], rows: Vec<Vec<String>>, empty: &str) {
    if rows.is_empty() {
        println!("{empty}");
        return;
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_uppercase()).collect());
    for row in rows {
        line(row);
    }
}

/// `2026-12-01 16:14 UTC`, or `-` for none.
pub fn time(unix: Option<i64>) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    unix.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "-".to_owned())
}

/// One JSON document on one line.
pub fn json(value: &Value) {
    println!("{value}");
}

/// Fields of a record, one per line, labels aligned.
pub fn fields(pairs: &[(&str, String)]) {
    let width = pairs
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0)
        + 1;
    for (label, value) in pairs {
        println!("{:<width$} {value}", format!("{label}:"), width = width);
    }
}
