//! Counters shared by every server through Redis: one Lua script per request, which Redis
//! runs atomically, so two replicas never both spend the last request of a window.
//!
//! Redis is an aid, never a dependency: while it cannot be reached (refused, timed out, not
//! yet connected) requests are counted in this process instead (`local.rs`), a background task
//! reconnects every second, and each change of state is logged once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Script};
use tokio::task::JoinHandle;

use super::counter::Usage;
use super::plan::Limits;
use crate::metrics;

/// `Usage::step` in Lua, with the state in one hash per subject that expires when it no longer
/// matters. KEYS[1]: the hash; ARGV: now (ms), per minute, per day (0: none), GCRA interval
/// (0: no burst limit) and tolerance (ms). Returns {allowed, tat, minute, minute count, day, day count}.
/// (Redis's Lua numbers are doubles: milliseconds since 1970 are exact in them.)
const STEP: &str = r"
local now = tonumber(ARGV[1])
local per_minute = tonumber(ARGV[2])
local per_day = tonumber(ARGV[3])
local interval = tonumber(ARGV[4])
local tolerance = tonumber(ARGV[5])
local s = redis.call('HMGET', KEYS[1], 'tat', 'm', 'mc', 'd', 'dc')
local tat = tonumber(s[1]) or 0
local m = tonumber(s[2]) or 0
local mc = tonumber(s[3]) or 0
local d = tonumber(s[4]) or 0
local dc = tonumber(s[5]) or 0
local minute = math.floor(now / 60000)
if m ~= minute then m = minute; mc = 0 end
local day = math.floor(now / 86400000)
if d ~= day then d = day; dc = 0 end
local allowed = 0
if (interval == 0 or math.max(tat, now) - tolerance <= now) and mc < per_minute and (per_day == 0 or dc < per_day) then
  allowed = 1
  if interval > 0 then tat = math.max(tat, now) + interval end
  mc = mc + 1
  dc = dc + 1
end
redis.call('HSET', KEYS[1], 'tat', tat, 'm', m, 'mc', mc, 'd', d, 'dc', dc)
local window_end = (m + 1) * 60000
if per_day > 0 then window_end = (d + 1) * 86400000 end
redis.call('PEXPIREAT', KEYS[1], math.max(window_end, tat))
return {allowed, tat, m, mc, d, dc}
";

/// Where counters live in Redis: `portcullis:rate:<subject>`.
const KEY_PREFIX: &str = "portcullis:rate:";
/// How often a server without a connection tries to make one.
const RECONNECT_INTERVAL: Duration = Duration::from_secs(1);

pub struct RedisCounters {
    shared: Arc<Shared>,
    reconnect: JoinHandle<()>,
    script: Script,
    timeout: Duration,
}

struct Shared {
    /// None while there is no working connection; the reconnect task fills it.
    connection: RwLock<Option<MultiplexedConnection>>,
    /// Whether Redis was last seen answering: each change is logged once.
    is_up: AtomicBool,
}

/// Redis did not answer in time, or answered with an error: count locally this time.
#[derive(Debug)]
pub struct Unavailable;

impl RedisCounters {
    /// Connects to `url` (waiting up to `timeout` for the first connection, so that a server
    /// starts counting in Redis), then keeps a connection in the background. Fails only for a
    /// URL that is not one.
    pub async fn start(url: &str, timeout: Duration) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("--redis-url: {e}"))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let shared = Arc::new(Shared {
            connection: RwLock::new(None),
            is_up: AtomicBool::new(false),
        });
        shared.connect(&client, &config).await;
        if !shared.is_up.load(Ordering::Relaxed) {
            tracing::warn!(
                "Redis is not reachable yet: counting rate limits in this process until it is"
            );
        }
        let reconnect = tokio::spawn(keep_connected(Arc::clone(&shared), client, config));
        Ok(Self {
            shared,
            reconnect,
            script: Script::new(STEP),
            timeout,
        })
    }

    /// Counts a request for `subject` under `limits` at `now_ms`, in Redis.
    pub async fn step(
        &self,
        subject: &str,
        limits: Limits,
        now_ms: i64,
    ) -> Result<(Usage, bool), Unavailable> {
        let Some(mut connection) = self.shared.current() else {
            return Err(Unavailable);
        };
        let mut invocation = self.script.key(format!("{KEY_PREFIX}{subject}"));
        invocation
            .arg(now_ms)
            .arg(limits.per_minute)
            .arg(limits.per_day.unwrap_or(0))
            .arg(limits.interval_ms())
            .arg(limits.tolerance_ms());
        let answer = tokio::time::timeout(
            self.timeout,
            invocation.invoke_async::<Vec<i64>>(&mut connection),
        )
        .await;
        match answer {
            Ok(Ok(values)) => parse(&values).ok_or_else(|| {
                tracing::error!(
                    ?values,
                    "Redis's rate-limit script answered in an unexpected shape"
                );
                Unavailable
            }),
            Ok(Err(e)) => {
                self.shared.lost(&e.to_string());
                Err(Unavailable)
            }
            Err(_) => {
                self.shared.lost("no answer in time");
                Err(Unavailable)
            }
        }
    }

    /// Whether requests are counted in Redis now.
    pub fn is_up(&self) -> bool {
        self.shared.is_up.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.reconnect.abort();
    }
}

fn parse(values: &[i64]) -> Option<(Usage, bool)> {
    let [allowed, tat_ms, minute, minute_count, day, day_count] = values else {
        return None;
    };
    let usage = Usage {
        tat_ms: *tat_ms,
        minute: *minute,
        minute_count: u32::try_from(*minute_count).ok()?,
        day: *day,
        day_count: u32::try_from(*day_count).ok()?,
    };
    Some((usage, *allowed == 1))
}

impl Shared {
    fn current(&self) -> Option<MultiplexedConnection> {
        self.connection
            .read()
            .expect("Redis connection lock poisoned")
            .clone()
    }

    /// Drops the connection after a failure; requests count locally until it is replaced.
    fn lost(&self, why: &str) {
        *self
            .connection
            .write()
            .expect("Redis connection lock poisoned") = None;
        metrics::rate_limit_redis_up(false);
        if self.is_up.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                error = why,
                "Redis stopped answering: counting rate limits in this process until it is back"
            );
        }
    }

    async fn connect(&self, client: &redis::Client, config: &AsyncConnectionConfig) {
        match client
            .get_multiplexed_async_connection_with_config(config)
            .await
        {
            Ok(connection) => {
                *self
                    .connection
                    .write()
                    .expect("Redis connection lock poisoned") = Some(connection);
                metrics::rate_limit_redis_up(true);
                if !self.is_up.swap(true, Ordering::Relaxed) {
                    tracing::info!("rate limits are counted in Redis, shared by every server");
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot connect to Redis"),
        }
    }
}

/// Replaces a lost connection, trying once a second.
async fn keep_connected(shared: Arc<Shared>, client: redis::Client, config: AsyncConnectionConfig) {
    let mut interval = tokio::time::interval(RECONNECT_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if shared.current().is_none() {
            shared.connect(&client, &config).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script and `Usage::step` are one arithmetic: the same requests at the same times
    /// leave the same state and the same answers, across windows, bursts and refusals. Needs
    /// the Redis at 127.0.0.1:6379 (`.ci/run` starts one where it is missing).
    #[tokio::test]
    async fn the_script_is_the_same_arithmetic_as_usage_step() {
        let counters = RedisCounters::start("redis://127.0.0.1:6379/", Duration::from_secs(2))
            .await
            .unwrap();
        assert!(counters.is_up(), "no Redis at 127.0.0.1:6379");
        let subject = format!("test:{}", crate::secrets::random_base62(16));
        let plans = [
            Limits {
                per_minute: 5,
                per_day: Some(7),
                burst: Some(2),
            },
            Limits {
                per_minute: 3,
                per_day: None,
                burst: None,
            },
            Limits {
                per_minute: 600,
                per_day: Some(100_000),
                burst: Some(1),
            },
        ];
        let mut local = Usage::default();
        // A day's end falls in the middle, and steps from 1 ms to several minutes.
        let mut now_ms = 1_800_000_000_000 - 1_800_000_000_000 % 86_400_000 - 200_000;
        let mut seed = 7_u64;
        for step in 0..400 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            now_ms += [1, 50, 400, 3_000, 61_000][(seed >> 33) as usize % 5];
            let limits = plans[step / 150];
            let allowed = local.step(limits, now_ms);
            let (shared, shared_allowed) = counters.step(&subject, limits, now_ms).await.unwrap();
            assert_eq!(
                (shared, shared_allowed),
                (local, allowed),
                "step {step} at {now_ms}"
            );
        }
        counters.stop();
    }
}
