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

/// A whole list: `{"<field>": [view of each item]}` for scripts, else a table of `row`s under
/// `header`, or `empty` when there are none.
pub struct Listing<'a, T> {
    pub field: &'a str,
    pub header: &'a [&'a str],
    pub empty: &'a str,
    pub view: fn(&T) -> Value,
    pub row: fn(&T) -> Vec<String>,
}

impl<T> Listing<'_, T> {
    pub fn print(&self, items: &[T], as_json: bool) {
        if as_json {
            let listed: Vec<Value> = items.iter().map(self.view).collect();
            let mut out = serde_json::Map::new();
            out.insert(self.field.to_owned(), listed.into());
            json(&Value::Object(out));
        } else {
            table(
                self.header,
                items.iter().map(self.row).collect(),
                self.empty,
            );
        }
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

/// What a command that changes something says it did: a sentence for people, `value` for
/// scripts.
pub fn done(as_json: bool, sentence: &str, value: Value) {
    if as_json {
        json(&value);
    } else {
        println!("{sentence}");
    }
}
