//! Wall-clock time as Unix seconds: the one unit stored in the database and put in tokens
//! (and UTC days, which per-day counts are filed under).
//!
//! Every reading of the time goes through [`unix_now`] or [`unix_now_ms`]. They read the
//! system clock, plus the [`ClockOffset`] of the thread that asks, if it has one. Only tests
//! give threads one: a test that runs a server in-process installs an offset on every thread
//! of that server's runtime and moves it forward instead of sleeping until something expires.
//! Other servers in the same test process keep their own time, and `portcullis serve`, whose
//! threads have none, reads the system clock.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    system_now().as_secs() as i64 + ClockOffset::of_this_thread()
}

/// Milliseconds since the Unix epoch, where seconds are too coarse to order events.
pub fn unix_now_ms() -> i64 {
    system_now().as_millis() as i64 + ClockOffset::of_this_thread() * 1000
}

/// A UTC calendar day, as days since 1970-01-01: what per-day counts are filed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UtcDay(pub i64);

impl UtcDay {
    /// The day that Unix time `unix_secs` falls on.
    pub fn of(unix_secs: i64) -> Self {
        Self(unix_secs.div_euclid(86_400))
    }

    /// Today, by [`unix_now`].
    pub fn today() -> Self {
        Self::of(unix_now())
    }

    /// `days` days before this one.
    pub fn minus(self, days: i64) -> Self {
        Self(self.0 - days)
    }
}

/// `YYYY-MM-DD` (ISO 8601).
impl std::fmt::Display for UtcDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let date = time::OffsetDateTime::from_unix_timestamp(self.0.saturating_mul(86_400))
            .ok()
            .and_then(|at| at.date().format(&format).ok());
        match date {
            Some(date) => f.write_str(&date),
            None => write!(f, "day {}", self.0),
        }
    }
}

impl serde::Serialize for UtcDay {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

fn system_now() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Seconds added to the system clock on the threads it is installed on; clones share it, so
/// advancing one advances the time on all of them.
#[derive(Debug, Clone, Default)]
pub struct ClockOffset(Arc<AtomicI64>);

thread_local! {
    static THIS_THREAD: RefCell<Option<ClockOffset>> = const { RefCell::new(None) };
}

impl ClockOffset {
    /// Makes [`unix_now`] on the calling thread read the system clock plus this offset.
    pub fn install_on_this_thread(&self) {
        THIS_THREAD.with(|offset| *offset.borrow_mut() = Some(self.clone()));
    }

    /// Moves the time forward by `secs` on every thread this offset is installed on.
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    fn of_this_thread() -> i64 {
        THIS_THREAD.with(|offset| {
            offset
                .borrow()
                .as_ref()
                .map_or(0, |offset| offset.0.load(Ordering::SeqCst))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(UtcDay::of(0).to_string(), "1970-01-01");
        assert_eq!(UtcDay::of(86_399), UtcDay(0));
        assert_eq!(UtcDay::of(-1), UtcDay(-1), "before 1970, still whole days");
        // 2026-03-01 00:00:00 UTC, and the second before it.
        assert_eq!(UtcDay::of(1_772_323_200).to_string(), "2026-03-01");
        assert_eq!(UtcDay::of(1_772_323_199).to_string(), "2026-02-28");
        assert_eq!(UtcDay::of(1_772_323_200).minus(1).to_string(), "2026-02-28");
    }

    #[test]
    fn an_offset_moves_the_time_of_its_threads_only() {
        let offset = ClockOffset::default();
        let on_other_thread = offset.clone();
        let before = unix_now();
        let ahead = std::thread::spawn(move || {
            on_other_thread.install_on_this_thread();
            on_other_thread.advance(3600);
            (unix_now(), unix_now_ms())
        })
        .join()
        .unwrap();
        assert!(ahead.0 >= before + 3600 && ahead.0 < before + 3700);
        assert!((ahead.1 / 1000 - ahead.0).abs() <= 1, "{ahead:?}");
        assert!(
            unix_now() < before + 100,
            "this thread keeps the system time"
        );
    }
}
