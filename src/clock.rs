//! Wall-clock time as Unix seconds: the one unit stored in the database and put in tokens.
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
