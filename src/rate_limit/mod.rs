//! Rate limits per API key and per client (docs/decisions.md, "Rate limits"): each is held to
//! a named plan (`plan`), counted by one arithmetic (`counter`) in Redis when the servers
//! share one (`redis`), in this process otherwise or meanwhile (`local`).
//!
//! Only authenticated callers are counted, so nobody can spend another's allowance by
//! presenting their id with a wrong secret.

pub mod counter;
mod local;
pub mod plan;
mod redis;

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use crate::clock::unix_now_ms;
use crate::metrics;
use crate::oauth::error::OAuthError;
use counter::{Decision, Window};
use local::LocalCounters;
use plan::{Limits, PlanName, Plans};
use redis::RedisCounters;

/// What is counted: an API key or a client, by id.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    ApiKey(&'a str),
    Client(&'a str),
}

impl Subject<'_> {
    /// Whose limit, as the metrics name it.
    pub fn scope(self) -> &'static str {
        match self {
            Self::ApiKey(_) => "api_key",
            Self::Client(_) => "client",
        }
    }

    fn key(self) -> String {
        match self {
            Self::ApiKey(id) => format!("key:{id}"),
            Self::Client(id) => format!("client:{id}"),
        }
    }
}

/// A request counted under a plan: whether it may go on, and what to tell the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub plan: PlanName,
    pub limits: Limits,
    pub decision: Decision,
}

impl Outcome {
    pub fn is_allowed(&self) -> bool {
        self.decision.allowed
    }

    /// The window nearest to running out, as `300/minute`.
    pub fn policy(&self) -> String {
        format!("{}/{}", self.decision.limit, self.decision.window.name())
    }

    /// The introspection answer's `rate_limit` member, which a resource server can copy into
    /// its own response headers.
    pub fn to_json(&self) -> Value {
        let d = &self.decision;
        json!({
            "limit": d.limit,
            "remaining": d.remaining,
            "reset": d.reset_at,
            "policy": self.policy(),
            "plan": self.plan,
            "exceeded": !d.allowed,
        })
    }

    /// Response header fields: the common `X-RateLimit-*` ones, and the IETF draft's
    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10 §§3-4:
    /// one item per window, `q` its quota, `w` its length, `r` what remains, `t` seconds to
    /// its reset). `Retry-After` (RFC 9110 §10.2.3) when refused.
    pub fn headers(&self, now: i64) -> Vec<(&'static str, String)> {
        let d = &self.decision;
        let mut policies = vec![format!(
            "\"minute\";q={};w={}",
            self.limits.per_minute,
            Window::Minute.seconds()
        )];
        let mut states = vec![format!(
            "\"minute\";r={};t={}",
            if d.allowed {
                d.minute_remaining.min(d.at_once)
            } else {
                0
            },
            (d.minute_reset_at - now).max(0)
        )];
        if let (Some(per_day), Some(day_remaining)) = (self.limits.per_day, d.day_remaining) {
            policies.push(format!("\"day\";q={per_day};w={}", Window::Day.seconds()));
            states.push(format!(
                "\"day\";r={};t={}",
                if d.allowed { day_remaining } else { 0 },
                (d.day_reset_at - now).max(0)
            ));
        }
        let mut headers = vec![
            ("x-ratelimit-limit", d.limit.to_string()),
            ("x-ratelimit-remaining", d.remaining.to_string()),
            ("x-ratelimit-reset", d.reset_at.to_string()),
            ("x-ratelimit-policy", self.policy()),
            ("ratelimit-policy", policies.join(", ")),
            ("ratelimit", states.join(", ")),
        ];
        if !d.allowed {
            headers.push(("retry-after", d.retry_after_secs.to_string()));
        }
        headers
    }
}

tokio::task_local! {
    /// The limit the request on this task counted its caller against, once it has.
    static CALLER_LIMIT: RefCell<Option<Outcome>>;
}

/// Runs `request`, and returns with its output the caller's limit if it counted one: what
/// every answer to a limited caller reports in its headers ([`Outcome::headers`]).
pub async fn reporting_caller_limit<F: Future>(request: F) -> (F::Output, Option<Outcome>) {
    CALLER_LIMIT
        .scope(RefCell::new(None), async {
            let output = request.await;
            let outcome = CALLER_LIMIT.with(|noted| noted.borrow_mut().take());
            (output, outcome)
        })
        .await
}

pub struct RateLimiter {
    plans: Plans,
    local: LocalCounters,
    shared: Option<RedisCounters>,
    /// Stored plan names this server does not define, each warned about once.
    unknown_plans_seen: Mutex<HashSet<PlanName>>,
}

impl RateLimiter {
    /// Counts in this process only.
    pub fn local(plans: Plans) -> Self {
        Self {
            plans,
            local: LocalCounters::default(),
            shared: None,
            unknown_plans_seen: Mutex::default(),
        }
    }

    /// Counts in Redis at `redis_url`, and in this process while Redis cannot be reached.
    pub async fn shared(plans: Plans, redis_url: &str, timeout: Duration) -> Result<Self, String> {
        let shared = RedisCounters::start(redis_url, timeout).await?;
        Ok(Self {
            shared: Some(shared),
            ..Self::local(plans)
        })
    }

    pub fn plans(&self) -> &Plans {
        &self.plans
    }

    /// Whether counts are shared through Redis right now: None without Redis.
    pub fn is_redis_up(&self) -> Option<bool> {
        self.shared.as_ref().map(RedisCounters::is_up)
    }

    /// Counts one request of `subject`, held to the plan it names (`named`) or else the
    /// default plan. None when no plan applies: the request is not limited.
    pub async fn take(&self, subject: Subject<'_>, named: Option<&PlanName>) -> Option<Outcome> {
        let (plan, limits) = self.plans.applicable(named)?;
        if let Some(named) = named
            && plan != named
        {
            self.warn_unknown(named);
        }
        let now_ms = unix_now_ms();
        let key = subject.key();
        let decision = match &self.shared {
            Some(redis) => match redis.step(&key, limits, now_ms).await {
                Ok((usage, allowed)) => usage.report(limits, now_ms, allowed),
                Err(_) => {
                    metrics::rate_limit_counted_locally();
                    self.local.take(&key, limits, now_ms)
                }
            },
            None => self.local.take(&key, limits, now_ms),
        };
        Some(Outcome {
            plan: plan.clone(),
            limits,
            decision,
        })
    }

    fn warn_unknown(&self, named: &PlanName) {
        let mut seen = self
            .unknown_plans_seen
            .lock()
            .expect("unknown plans lock poisoned");
        if seen.insert(named.clone()) {
            tracing::warn!(
                plan = %named,
                "a key or client names a rate-limit plan this server does not define: it gets the default plan; define it with --rate-limit-plan {named}=…"
            );
        }
    }

    /// Counts a request of its caller, which is refused when over its limit; the outcome is
    /// noted for the response's headers (see [`reporting_caller_limit`]).
    pub async fn admit(
        &self,
        subject: Subject<'_>,
        named: Option<&PlanName>,
    ) -> Result<(), OAuthError> {
        let Some(outcome) = self.take(subject, named).await else {
            return Ok(());
        };
        let refused = (!outcome.is_allowed()).then(|| {
            metrics::rate_limited(subject.scope());
            OAuthError::rate_limited(&outcome)
        });
        let _ = CALLER_LIMIT.try_with(|noted| *noted.borrow_mut() = Some(outcome));
        refused.map_or(Ok(()), Err)
    }

    /// Stops reconnecting to Redis.
    pub fn stop(&self) {
        if let Some(redis) = &self.shared {
            redis.stop();
        }
    }
}
