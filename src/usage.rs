//! Per-key usage: counted in memory, added up in the database (docs/decisions.md).
//!
//! A use of an API key (a token exchange, an introspection of the key) is counted in this
//! server's memory, which costs a request a lock and a hash look-up and never a write. A task
//! adds what was counted to the key's row for the day every [`USAGE_FLUSH_INTERVAL_MS`], one
//! transaction for every key, and once more as the server stops. The rows are added to,
//! never overwritten, so any number of servers count the same key. A write that fails keeps
//! the counts for the next one, within [`USAGE_MAX_PENDING_ENTRIES`]; nothing here ever fails
//! a request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock::UtcDay;
use crate::config::{
    USAGE_FINAL_FLUSH_TIMEOUT_SECS, USAGE_FLUSH_INTERVAL_MS, USAGE_MAX_PENDING_ENTRIES,
};
use crate::ids::ApiKeyId;
use crate::store::Store;
use crate::store::api_key_usage::UsageIncrement;

/// What a key was used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// Exchanged for a token at `/token`, by a caller at this address (the peer: a proxy's,
    /// behind one).
    Exchange { from: Option<IpAddr> },
    /// Introspected at `/introspect`. The caller is the resource server, not the key holder,
    /// so its address is not kept.
    Introspection,
}

/// This server's uses of API keys since it last wrote them, and the task that writes them.
pub struct UsageCounter {
    pending: Arc<Mutex<Pending>>,
    flusher: Mutex<Option<Flusher>>,
}

struct Flusher {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Counts not yet written.
#[derive(Default)]
struct Pending {
    /// By key id: the days it was used on (one, or two around midnight).
    keys: HashMap<String, Vec<Counted>>,
    /// Keys-and-days held: at most [`USAGE_MAX_PENDING_ENTRIES`].
    entries: usize,
    /// Uses not counted, for want of room, since the log last said so.
    dropped: u64,
}

/// One key's uses on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counted {
    day: UtcDay,
    exchanges: u64,
    introspections: u64,
    last_used_at: i64,
    /// When, and from where, the key was last exchanged.
    last_exchange: Option<(i64, Option<IpAddr>)>,
}

impl Counted {
    fn one(key_use: KeyUse, now: i64) -> Self {
        let exchange = matches!(key_use, KeyUse::Exchange { .. });
        Self {
            day: UtcDay::of(now),
            exchanges: u64::from(exchange),
            introspections: u64::from(!exchange),
            last_used_at: now,
            last_exchange: match key_use {
                KeyUse::Exchange { from } => Some((now, from.map(|ip| ip.to_canonical()))),
                KeyUse::Introspection => None,
            },
        }
    }

    /// Adds `other` (of the same day): the later use wins the times and the address.
    fn add(&mut self, other: &Self) {
        self.exchanges = self.exchanges.saturating_add(other.exchanges);
        self.introspections = self.introspections.saturating_add(other.introspections);
        self.last_used_at = self.last_used_at.max(other.last_used_at);
        self.last_exchange = match (self.last_exchange, other.last_exchange) {
            (Some(mine), Some(theirs)) if mine.0 > theirs.0 => Some(mine),
            (mine, None) => mine,
            (_, theirs) => theirs,
        };
    }

    fn uses(&self) -> u64 {
        self.exchanges.saturating_add(self.introspections)
    }

    fn increment(&self, key_id: &str) -> UsageIncrement {
        UsageIncrement {
            api_key_id: ApiKeyId::from(key_id),
            day: self.day,
            exchanges: self.exchanges,
            introspections: self.introspections,
            last_used_at: self.last_used_at,
            last_exchange_at: self.last_exchange.map(|(at, _)| at),
            last_exchange_ip: self
                .last_exchange
                .and_then(|(_, ip)| ip)
                .map(|ip| ip.to_string()),
        }
    }
}

impl Pending {
    /// Counts `counted` for `key_id`, unless that needs a new entry and there is no room.
    fn add(&mut self, key_id: &str, counted: &Counted) {
        // Looked up by &str: a key already counted costs no allocation.
        if let Some(days) = self.keys.get_mut(key_id) {
            if let Some(same_day) = days.iter_mut().find(|c| c.day == counted.day) {
                same_day.add(counted);
                return;
            }
            if self.entries < USAGE_MAX_PENDING_ENTRIES {
                days.push(counted.clone());
                self.entries += 1;
                return;
            }
        } else if self.entries < USAGE_MAX_PENDING_ENTRIES {
            self.keys.insert(key_id.to_owned(), vec![counted.clone()]);
            self.entries += 1;
            return;
        }
        self.dropped = self.dropped.saturating_add(counted.uses());
    }
}

impl UsageCounter {
    /// Starts the task that writes the counts every [`USAGE_FLUSH_INTERVAL_MS`] on the current
    /// tokio runtime; call [`Self::stop`] on the way out, which writes the last of them.
    pub fn start(store: Store) -> Self {
        let pending = Arc::new(Mutex::new(Pending::default()));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(flush_periodically(store, Arc::clone(&pending), stopped));
        Self {
            pending,
            flusher: Mutex::new(Some(Flusher { stop, task })),
        }
    }

    /// Counts a use of the key at `now`: in memory only, never failing.
    pub fn record(&self, key_id: &ApiKeyId, key_use: KeyUse, now: i64) {
        lock(&self.pending).add(key_id.as_str(), &Counted::one(key_use, now));
    }

    /// Stops the periodic writes and writes what was counted since the last one (trying for
    /// at most [`USAGE_FINAL_FLUSH_TIMEOUT_SECS`]). Call once no request can count any more.
    pub async fn stop(&self) {
        let flusher = self
            .flusher
            .lock()
            .expect("usage flusher lock poisoned")
            .take();
        if let Some(Flusher { stop, task }) = flusher {
            let _ = stop.send(());
            let _ = task.await;
        }
    }
}

fn lock(pending: &Mutex<Pending>) -> MutexGuard<'_, Pending> {
    pending.lock().expect("usage counter lock poisoned")
}

/// Writes the counts every interval until told to stop, then once more. A write that fails
/// puts its counts back for the next; the log says when writing fails and when it works again.
async fn flush_periodically(
    store: Store,
    pending: Arc<Mutex<Pending>>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut interval = tokio::time::interval(Duration::from_millis(USAGE_FLUSH_INTERVAL_MS));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is at once, with nothing to write yet.
    interval.tick().await;
    let mut failing = false;
    loop {
        // A write, once begun, is never cut short by the stop: it is awaited in the loop's
        // body, and the stop is seen at the next turn.
        tokio::select! {
            _ = interval.tick() => {}
            _ = &mut stopped => break,
        }
        match flush(&store, &pending).await {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("API key usage is written again");
            }
            Ok(_) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "could not write API key usage; the counts are kept for the next try");
            }
            Err(_) => {}
        }
    }
    let last = tokio::time::timeout(
        Duration::from_secs(USAGE_FINAL_FLUSH_TIMEOUT_SECS),
        flush(&store, &pending),
    )
    .await;
    let unwritten = lock(&pending)
        .keys
        .values()
        .flatten()
        .map(Counted::uses)
        .sum::<u64>();
    match last {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, unwritten, "stopping without writing the last API key usage")
        }
        Err(_) => tracing::warn!(
            "stopping: writing the last API key usage took over {USAGE_FINAL_FLUSH_TIMEOUT_SECS} s; some uses may not be counted"
        ),
    }
}

/// Writes everything counted so far in one transaction; returns how many keys-and-days. On
/// failure the counts go back, to be added to whatever was counted meanwhile.
async fn flush(store: &Store, pending: &Mutex<Pending>) -> Result<usize, crate::store::StoreError> {
    let taken = {
        let mut pending = lock(pending);
        let taken = std::mem::take(&mut pending.keys);
        pending.entries = 0;
        if pending.dropped > 0 {
            tracing::warn!(
                uses = pending.dropped,
                "API key uses went uncounted: more than {USAGE_MAX_PENDING_ENTRIES} keys and days were waiting to be written"
            );
            pending.dropped = 0;
        }
        taken
    };
    let increments: Vec<UsageIncrement> = taken
        .iter()
        .flat_map(|(key_id, days)| days.iter().map(|counted| counted.increment(key_id)))
        .collect();
    match store.add_api_key_usage(&increments).await {
        Ok(()) => Ok(increments.len()),
        Err(e) => {
            let mut pending = lock(pending);
            for (key_id, days) in &taken {
                for counted in days {
                    pending.add(key_id, counted);
                }
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOON: i64 = 1_772_366_400; // 2026-03-01 12:00:00 UTC

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn uses_add_up_per_key_and_day() {
        let mut pending = Pending::default();
        let exchange = |from| Counted::one(KeyUse::Exchange { from }, NOON);
        pending.add("key_a", &exchange(ip("203.0.113.7")));
        pending.add("key_a", &Counted::one(KeyUse::Introspection, NOON + 5));
        pending.add(
            "key_a",
            &Counted::one(
                KeyUse::Exchange {
                    from: ip("::ffff:198.51.100.1"),
                },
                NOON + 3,
            ),
        );
        pending.add("key_a", &Counted::one(KeyUse::Introspection, NOON + 86_400));
        pending.add("key_b", &exchange(None));
        assert_eq!(pending.entries, 3);
        let a = &pending.keys["key_a"];
        assert_eq!(a.len(), 2, "one entry per day");
        let increment = a[0].increment("key_a");
        assert_eq!((increment.exchanges, increment.introspections), (2, 1));
        assert_eq!(increment.last_used_at, NOON + 5);
        assert_eq!(increment.last_exchange_at, Some(NOON + 3));
        assert_eq!(
            increment.last_exchange_ip.as_deref(),
            Some("198.51.100.1"),
            "the latest exchange's address, IPv4 as IPv4"
        );
        assert_eq!(a[1].day, UtcDay::of(NOON + 86_400));
        assert_eq!(a[1].increment("key_a").last_exchange_at, None);
    }

    #[test]
    fn an_earlier_exchange_counted_later_keeps_the_later_address() {
        let mut later = Counted::one(
            KeyUse::Exchange {
                from: ip("203.0.113.9"),
            },
            NOON + 10,
        );
        later.add(&Counted::one(
            KeyUse::Exchange {
                from: ip("203.0.113.1"),
            },
            NOON,
        ));
        later.add(&Counted::one(KeyUse::Introspection, NOON + 20));
        assert_eq!(later.last_exchange, Some((NOON + 10, ip("203.0.113.9"))));
        assert_eq!(
            (later.exchanges, later.introspections, later.last_used_at),
            (2, 1, NOON + 20)
        );
    }

    #[test]
    fn memory_is_bounded_and_what_does_not_fit_is_told() {
        let mut pending = Pending::default();
        let one = Counted::one(KeyUse::Introspection, NOON);
        for i in 0..USAGE_MAX_PENDING_ENTRIES {
            pending.add(&format!("key_{i}"), &one);
        }
        pending.add("key_0", &one);
        assert_eq!(
            pending.dropped, 0,
            "a key and day already held still counts"
        );
        pending.add("key_new", &one);
        pending.add("key_0", &Counted::one(KeyUse::Introspection, NOON + 86_400));
        assert_eq!(pending.entries, USAGE_MAX_PENDING_ENTRIES);
        assert_eq!(pending.dropped, 2);
        assert_eq!(pending.keys["key_0"][0].introspections, 2);
    }

    /// A write that fails (here: the table is away) keeps the counts, and the next write adds
    /// them with what came meanwhile, once.
    #[tokio::test]
    async fn a_failed_write_keeps_the_counts_for_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.db");
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        // Another connection, as an operator's would be; off the runtime, which must keep
        // running (to close the connection a failed write leaves in doubt).
        let alter = |sql: &'static str| {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                let other = rusqlite::Connection::open(&path).unwrap();
                other.busy_timeout(Duration::from_secs(3)).unwrap();
                other.execute(sql, []).unwrap();
            })
        };
        let pending = Mutex::new(Pending::default());
        let from = ip("203.0.113.7");
        lock(&pending).add("key_a", &Counted::one(KeyUse::Introspection, NOON));

        alter("ALTER TABLE api_key_usage RENAME TO usage_elsewhere")
            .await
            .unwrap();
        assert!(flush(&store, &pending).await.is_err());
        lock(&pending).add("key_a", &Counted::one(KeyUse::Exchange { from }, NOON + 1));
        assert_eq!(
            lock(&pending).entries,
            1,
            "the kept counts and the new ones, together"
        );
        alter("ALTER TABLE usage_elsewhere RENAME TO api_key_usage")
            .await
            .unwrap();
        assert_eq!(flush(&store, &pending).await.unwrap(), 1);
        assert_eq!(
            flush(&store, &pending).await.unwrap(),
            0,
            "nothing left to write"
        );

        let today = UtcDay::of(NOON);
        let written = store
            .api_key_usage(&ApiKeyId::from("key_a"), today, today)
            .await
            .unwrap();
        assert_eq!(written.len(), 1);
        let day = &written[0];
        assert_eq!((day.exchanges, day.introspections, day.total), (1, 1, 2));
        assert_eq!(day.last_used_at, Some(NOON + 1));
        assert_eq!(day.last_exchange_ip.as_deref(), Some("203.0.113.7"));
        store.close().await;
    }
}
