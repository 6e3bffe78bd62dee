//! The limiter's arithmetic, the same in memory and in Redis (`redis.rs` runs it as a Lua
//! script): a request is let through when all three of a plan's limits allow it, and then
//! counts against all three; a refused request counts against none.
//! - **minute** and **day**: fixed windows on the clock (UTC days), counting requests;
//! - **burst**: GCRA (the generic cell rate algorithm, a leaky bucket kept as one time): at
//!   most `burst` requests at once, then one per `60 s / per_minute`. Without it a whole
//!   minute's allowance could be spent in the first millisecond of every minute.

use super::plan::Limits;

pub const MINUTE_MS: i64 = 60_000;
pub const DAY_MS: i64 = 86_400_000;

/// What is remembered of one key's or client's traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// GCRA's theoretical arrival time (ms): when the bucket would be empty again.
    pub tat_ms: i64,
    /// Which minute (ms since the epoch / 60,000) `minute_count` counts.
    pub minute: i64,
    pub minute_count: u32,
    /// Which UTC day `day_count` counts.
    pub day: i64,
    pub day_count: u32,
}

/// The answer for one request, and the state to report in headers and introspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The window nearest to running out: its size, what is left of it (at most what may be
    /// sent at once under the burst limit), and when it starts again (Unix seconds).
    pub limit: u32,
    pub remaining: u32,
    pub reset_at: i64,
    pub window: Window,
    /// What remains of the minute and of the day, each on its own.
    pub minute_remaining: u32,
    pub minute_reset_at: i64,
    pub day_remaining: Option<u32>,
    pub day_reset_at: i64,
    /// Requests the burst limit would let through right now (`u32::MAX` without one).
    pub at_once: u32,
    /// For a refused request: seconds until one would be let through.
    pub retry_after_secs: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Minute,
    Day,
}

impl Window {
    pub fn seconds(self) -> i64 {
        match self {
            Self::Minute => MINUTE_MS / 1000,
            Self::Day => DAY_MS / 1000,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Day => "day",
        }
    }
}

impl Limits {
    /// GCRA's emission interval: the time one request's share of the minute takes; 0 for a
    /// plan without a burst limit.
    pub fn interval_ms(&self) -> i64 {
        if self.burst.is_none() {
            return 0;
        }
        (MINUTE_MS / i64::from(self.per_minute.max(1))).max(1)
    }

    /// GCRA's tolerance: how far ahead of now the bucket may run.
    pub fn tolerance_ms(&self) -> i64 {
        self.interval_ms() * (i64::from(self.burst.unwrap_or(1).max(1)) - 1)
    }
}

impl Usage {
    /// Decides one request at `now_ms`, counting it if it is let through.
    pub fn take(&mut self, limits: Limits, now_ms: i64) -> Decision {
        let allowed = self.step(limits, now_ms);
        self.report(limits, now_ms, allowed)
    }

    /// The part that must be atomic, and all that Redis runs (`redis.rs` has it in Lua, line
    /// for line): moves to the current windows, and counts the request if all three limits
    /// allow it. True when they did.
    pub fn step(&mut self, limits: Limits, now_ms: i64) -> bool {
        let minute = now_ms.div_euclid(MINUTE_MS);
        if self.minute != minute {
            self.minute = minute;
            self.minute_count = 0;
        }
        let day = now_ms.div_euclid(DAY_MS);
        if self.day != day {
            self.day = day;
            self.day_count = 0;
        }
        let tat = self.tat_ms.max(now_ms);
        let interval = limits.interval_ms();
        let allowed = (interval == 0 || tat - limits.tolerance_ms() <= now_ms)
            && self.minute_count < limits.per_minute
            && limits
                .per_day
                .is_none_or(|per_day| self.day_count < per_day);
        if allowed && interval > 0 {
            self.tat_ms = tat + interval;
        }
        if allowed {
            self.minute_count += 1;
            self.day_count += 1;
        }
        allowed
    }

    /// What to tell the caller, from the state after [`Self::step`] and its answer.
    pub fn report(&self, limits: Limits, now_ms: i64, allowed: bool) -> Decision {
        let interval = limits.interval_ms();
        let tolerance = limits.tolerance_ms();
        let minute_reset_ms = (self.minute + 1) * MINUTE_MS;
        let day_reset_ms = (self.day + 1) * DAY_MS;
        let minute_remaining = limits.per_minute.saturating_sub(self.minute_count);
        let day_remaining = limits
            .per_day
            .map(|per_day| per_day.saturating_sub(self.day_count));
        let (window, limit, window_remaining, reset_ms) = match day_remaining {
            Some(day_remaining) if day_remaining < minute_remaining => (
                Window::Day,
                limits.per_day.unwrap_or_default(),
                day_remaining,
                day_reset_ms,
            ),
            _ => (
                Window::Minute,
                limits.per_minute,
                minute_remaining,
                minute_reset_ms,
            ),
        };
        // GCRA lets a request through while tat - tolerance <= now; a refused request left
        // the bucket as it was.
        let tat = self.tat_ms.max(now_ms);
        let burst_wait_ms = if interval == 0 {
            0
        } else {
            tat - tolerance - now_ms
        };
        let at_once = if interval == 0 {
            u32::MAX
        } else if burst_wait_ms > 0 {
            0
        } else {
            u32::try_from(-burst_wait_ms / interval + 1).unwrap_or(u32::MAX)
        };
        let retry_after_ms = if allowed {
            0
        } else {
            let mut wait = burst_wait_ms.max(0);
            if minute_remaining == 0 {
                wait = wait.max(minute_reset_ms - now_ms);
            }
            if day_remaining == Some(0) {
                wait = wait.max(day_reset_ms - now_ms);
            }
            wait
        };
        Decision {
            allowed,
            limit,
            remaining: if allowed {
                window_remaining.min(at_once)
            } else {
                0
            },
            reset_at: ceil_secs(reset_ms),
            window,
            minute_remaining,
            minute_reset_at: ceil_secs(minute_reset_ms),
            day_remaining,
            day_reset_at: ceil_secs(day_reset_ms),
            at_once,
            retry_after_secs: ceil_secs(retry_after_ms).max(i64::from(!allowed)),
        }
    }

    /// When this state no longer matters (ms): its day, its minute and its bucket are over.
    pub fn forgettable_at(&self, limits: Limits) -> i64 {
        let window_end = if limits.per_day.is_some() {
            (self.day + 1) * DAY_MS
        } else {
            (self.minute + 1) * MINUTE_MS
        };
        window_end.max(self.tat_ms)
    }
}

fn ceil_secs(ms: i64) -> i64 {
    ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_minute: u32, per_day: Option<u32>, burst: Option<u32>) -> Limits {
        Limits {
            per_minute,
            per_day,
            burst,
        }
    }

    /// A minute boundary, so that tests do not straddle one by accident.
    const T0: i64 = 1_800_000_000_000 - 1_800_000_000_000 % DAY_MS + 5 * MINUTE_MS;

    #[test]
    fn lets_through_exactly_the_minute_limit_then_says_when() {
        let plan = limits(5, None, None);
        let mut usage = Usage::default();
        for left in (0..5).rev() {
            let d = usage.take(plan, T0 + 10);
            assert!(d.allowed);
            assert_eq!((d.limit, d.remaining), (5, left));
            assert_eq!(d.reset_at, (T0 + MINUTE_MS) / 1000);
        }
        let refused = usage.take(plan, T0 + 1_000);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.retry_after_secs, 59);
        // Refused requests do not count: the next minute starts afresh.
        let next = usage.take(plan, T0 + MINUTE_MS);
        assert!(next.allowed);
        assert_eq!(next.remaining, 4);
    }

    #[test]
    fn the_burst_spreads_the_minute() {
        // 60/min, burst 10: ten at once, then one a second.
        let plan = limits(60, None, Some(10));
        let mut usage = Usage::default();
        for _ in 0..10 {
            assert!(usage.take(plan, T0).allowed);
        }
        let refused = usage.take(plan, T0);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs, 1);
        assert!(!usage.take(plan, T0 + 999).allowed);
        let after_a_second = usage.take(plan, T0 + 1_000);
        assert!(after_a_second.allowed);
        // The window still has 49, but only the burst's spare capacity may go at once.
        assert_eq!(after_a_second.minute_remaining, 49);
        assert_eq!(after_a_second.remaining, 0);
        let later = usage.take(plan, T0 + 6_000);
        assert!(later.allowed);
        assert_eq!(later.remaining, 4);
    }

    #[test]
    fn the_day_limit_binds_when_it_is_nearer() {
        let plan = limits(10, Some(12), None);
        let mut usage = Usage::default();
        for _ in 0..10 {
            assert!(usage.take(plan, T0).allowed);
        }
        let d = usage.take(plan, T0 + MINUTE_MS);
        assert!(d.allowed);
        assert_eq!((d.window, d.limit, d.remaining), (Window::Day, 12, 1));
        assert!(usage.take(plan, T0 + MINUTE_MS).allowed);
        let refused = usage.take(plan, T0 + 2 * MINUTE_MS);
        assert!(!refused.allowed);
        let day_end = (T0.div_euclid(DAY_MS) + 1) * DAY_MS;
        assert_eq!(
            refused.retry_after_secs,
            (day_end - T0 - 2 * MINUTE_MS) / 1000
        );
        assert!(usage.take(plan, day_end).allowed);
    }

    #[test]
    fn any_sixty_seconds_hold_at_most_a_burst_plus_a_minute() {
        let plan = limits(30, None, Some(5));
        let mut usage = Usage::default();
        let mut allowed_at = Vec::new();
        for step in 0..3_000 {
            let now = T0 + step * 97;
            if usage.take(plan, now).allowed {
                allowed_at.push(now);
            }
        }
        for (i, start) in allowed_at.iter().enumerate() {
            let within = allowed_at[i..]
                .iter()
                .take_while(|t| **t < start + MINUTE_MS)
                .count();
            // GCRA's bound: the burst, plus one per interval.
            assert!(within <= 5 + 30, "{within} in a minute from {start}");
            // And a minute on the clock never holds more than its limit.
            let minute = start / MINUTE_MS;
            let in_minute = allowed_at
                .iter()
                .filter(|t| **t / MINUTE_MS == minute)
                .count();
            assert!(in_minute <= 30, "{in_minute} in the minute from {start}");
        }
    }
}
