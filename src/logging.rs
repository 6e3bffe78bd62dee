//! Logging: which lines (`PORTCULLIS_LOG`, then `RUST_LOG`, else a default per command), in
//! which format (`--log-format`), and how they reach stderr.
//!
//! A server logs a line per request. Written one `write(2)` each, under stderr's lock, those
//! lines cost about as much as the introspection they describe (the two runtime threads queue
//! on the lock). So a server's lines are gathered in memory and written in batches: when
//! [`LOG_BATCH_BYTES`] have gathered, every [`LOG_FLUSH_INTERVAL_MS`], at once for a warning
//! or an error (with everything before it), and at exit (see docs/decisions.md). Commands
//! write each line as it comes.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::cli::Command;
use crate::config::{LOG_BATCH_BYTES, LOG_FLUSH_INTERVAL_MS, LogFormat};

/// Sets up logging for `command`. Keep the returned value until the program ends: dropping it
/// writes the lines still gathered.
pub fn init(command: &Command) -> FlushOnDrop {
    // What is logged when neither PORTCULLIS_LOG nor RUST_LOG is set: a server tells what it
    // does; a command prints its result, and logs only what went wrong.
    let (default_filter, format, is_server) = match command {
        Command::Serve(args) => ("info,sqlx=warn", args.log_format(), true),
        _ => ("warn", LogFormat::Text, false),
    };
    // PORTCULLIS_LOG, else RUST_LOG, the variable Rust programs usually read.
    let chosen = ["PORTCULLIS_LOG", "RUST_LOG"]
        .into_iter()
        .find_map(|name| Some((name, std::env::var(name).ok()?)));
    let (filter, invalid) = match chosen {
        None => (EnvFilter::new(default_filter), None),
        Some((name, directives)) => match EnvFilter::try_new(&directives) {
            Ok(filter) => (filter, None),
            Err(e) => (EnvFilter::new(default_filter), Some((name, e))),
        },
    };
    let writer = Stderr {
        is_batched: is_server && start_flushing(),
    };
    let logger = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => logger.with_ansi(std::io::stderr().is_terminal()).init(),
        // One object per line: the event's fields at the top level beside `message`, and the
        // request's span (its id, method and route) as `span`.
        LogFormat::Json => logger
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    if let Some((name, error)) = invalid {
        tracing::warn!("{name} is not a valid log filter ({error}); logging {default_filter}");
    }
    FlushOnDrop
}

/// Writes the gathered lines when dropped.
pub struct FlushOnDrop;

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        flush();
    }
}

/// Writes the lines gathered so far, if any: before something else is written to stderr.
pub fn flush() {
    if let Some(batch) = BATCH.get() {
        batch.flush();
    }
}

/// A server's gathered lines.
static BATCH: OnceLock<Batch> = OnceLock::new();

struct Batch {
    gathered: Mutex<Vec<u8>>,
    /// Held while a batch is written, taken before the batch is: batches go out in order.
    writing: Mutex<()>,
}

impl Batch {
    fn add(&self, line: &[u8], is_urgent: bool) {
        let is_full = {
            let mut gathered = self.gathered.lock().unwrap_or_else(PoisonError::into_inner);
            gathered.extend_from_slice(line);
            gathered.len() >= LOG_BATCH_BYTES
        };
        if is_full || is_urgent {
            self.flush();
        }
    }

    fn flush(&self) {
        let _writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let batch = {
            let mut gathered = self.gathered.lock().unwrap_or_else(PoisonError::into_inner);
            if gathered.is_empty() {
                return;
            }
            std::mem::replace(&mut *gathered, Vec::with_capacity(LOG_BATCH_BYTES))
        };
        // Nowhere left to say that stderr failed.
        let _ = std::io::stderr().write_all(&batch);
    }
}

/// Starts the thread that writes the gathered lines every [`LOG_FLUSH_INTERVAL_MS`]; false if
/// it cannot start, and then lines are written as they come.
fn start_flushing() -> bool {
    let mut is_new = false;
    BATCH.get_or_init(|| {
        is_new = true;
        Batch {
            gathered: Mutex::new(Vec::with_capacity(LOG_BATCH_BYTES)),
            writing: Mutex::new(()),
        }
    });
    if !is_new {
        return true;
    }
    std::thread::Builder::new()
        .name("log-flush".into())
        .spawn(|| {
            loop {
                std::thread::sleep(Duration::from_millis(LOG_FLUSH_INTERVAL_MS));
                flush();
            }
        })
        .is_ok()
}

/// stderr, gathered into batches or not.
#[derive(Clone, Copy)]
struct Stderr {
    is_batched: bool,
}

/// One line's writer: the formatter writes a whole line at once.
struct Line {
    is_batched: bool,
    /// A warning or an error: written at once, after everything gathered before it.
    is_urgent: bool,
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line {
            is_batched: self.is_batched,
            is_urgent: true,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line {
        Line {
            is_batched: self.is_batched,
            is_urgent: *meta.level() <= Level::WARN,
        }
    }
}

impl Write for Line {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        match BATCH.get() {
            Some(batch) if self.is_batched => batch.add(line, self.is_urgent),
            _ => std::io::stderr().write_all(line)?,
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
