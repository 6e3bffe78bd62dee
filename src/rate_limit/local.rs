//! Counters in this process: all there is without Redis, and the stand-in while Redis cannot
//! be reached.

use std::collections::HashMap;
use std::sync::Mutex;

use super::counter::{Decision, Usage};
use super::plan::Limits;

/// Below this many subjects the map is never swept.
const SWEEP_FLOOR: usize = 1024;

#[derive(Default)]
pub struct LocalCounters {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// By subject, with when its state stops mattering (ms).
    usage: HashMap<String, (Usage, i64)>,
    /// Sweep forgettable entries when the map grows past this.
    sweep_at_len: usize,
}

impl LocalCounters {
    pub fn take(&self, subject: &str, limits: Limits, now_ms: i64) -> Decision {
        let mut inner = self
            .inner
            .lock()
            .expect("rate-limit counters lock poisoned");
        if inner.usage.len() >= inner.sweep_at_len.max(SWEEP_FLOOR) {
            // Only authenticated keys and clients are counted, so the map is bounded by how
            // many there are; this keeps it to those seen in the last day.
            inner.usage.retain(|_, (_, forget_at)| *forget_at > now_ms);
            inner.sweep_at_len = inner.usage.len() * 2;
        }
        let (usage, forget_at) = match inner.usage.get_mut(subject) {
            Some(entry) => entry,
            None => inner
                .usage
                .entry(subject.to_owned())
                .or_insert((Usage::default(), 0)),
        };
        let decision = usage.take(limits, now_ms);
        *forget_at = usage.forgettable_at(limits);
        decision
    }
}
