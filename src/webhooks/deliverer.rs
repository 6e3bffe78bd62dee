//! Sends queued deliveries. Every server runs one [`Deliverer`]; for each endpoint with
//! deliveries due, one of them takes the endpoint's lease (a conditional UPDATE, measured by
//! the database's clock) and, while it holds it, sends that endpoint's events one at a time,
//! oldest first: a later event waits until the endpoint has acknowledged (2xx) the one before.
//! A failed attempt is retried after an exponential, jittered delay, for as long as it takes.
//! A delivery is marked only after its 2xx, so a server that dies mid-attempt leaves it to be
//! sent again by whoever takes the lease next: at least once, deduplicated by `webhook-id`.

use std::collections::HashSet;
use std::error::Error as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, USER_AGENT};
use hyper_rustls::{ConfigBuilderExt, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::audit::{AuditEvent, format_rfc3339_ms};
use crate::clock::{unix_now, unix_now_ms};
use crate::config::{WEBHOOK_POLL_INTERVAL_MS, WebhookSettings};
use crate::ids::WebhookId;
use crate::store::Store;
use crate::store::webhooks::{LeasedEndpoint, PendingDelivery};

const POLL_INTERVAL: Duration = Duration::from_millis(WEBHOOK_POLL_INTERVAL_MS);
/// Most of a receiver's answer read (and then dropped), so that its connection can be reused.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Most of a refusal's body kept as the delivery's `last_error`, for the operator.
const MAX_ERROR_CHARS: usize = 200;

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// This server's deliverer: started with the server, stopped with it.
pub struct Deliverer {
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    /// How long [`Deliverer::stop`] waits for the attempts in flight.
    stop_wait: Duration,
}

/// What the deliverer and the task of each endpoint it holds share.
struct Shared {
    store: Store,
    /// Random per server: whose lease is whose.
    owner: String,
    client: HttpClient,
    timeout: Duration,
    first_retry_ms: u64,
    max_retry_delay_ms: u64,
    lease: Duration,
}

impl Deliverer {
    /// Starts looking for deliveries to make, in a task of its own.
    pub fn start(store: Store, settings: &WebhookSettings) -> Result<Self, rustls::Error> {
        let timeout = Duration::from_secs(settings.webhook_timeout_secs);
        let shared = Arc::new(Shared {
            store,
            owner: crate::secrets::random_id("deliverer_"),
            client: http_client(timeout)?,
            timeout,
            first_retry_ms: settings.webhook_first_retry_ms,
            max_retry_delay_ms: settings.webhook_max_retry_delay_secs.saturating_mul(1000),
            lease: Duration::from_secs(settings.webhook_lease_secs),
        });
        let (stop, stopping) = watch::channel(false);
        let task = tokio::spawn(look_for_work(shared, stopping));
        Ok(Self {
            stop,
            task: Mutex::new(Some(task)),
            stop_wait: timeout + Duration::from_secs(2),
        })
    }

    /// Starts no new attempt from now on; attempts in flight go on.
    pub fn begin_stopping(&self) {
        let _ = self.stop.send(true);
    }

    /// Lets the attempts in flight finish (within the delivery timeout), records them and
    /// releases this server's leases, so that another server takes over at once.
    pub async fn stop(&self) {
        self.begin_stopping();
        let task = self.task.lock().expect("deliverer lock poisoned").take();
        if let Some(mut task) = task
            && tokio::time::timeout(self.stop_wait, &mut task)
                .await
                .is_err()
        {
            // Dropping its tasks aborts them; their leases run out on their own.
            task.abort();
            let _ = task.await;
        }
    }
}

/// An HTTP/1.1 client over rustls with aws-lc-rs and Mozilla's roots (webpki-roots): https
/// for every endpoint but those on this machine. Redirects are not followed: a 3xx is a
/// failed attempt, like any answer but a 2xx.
fn http_client(timeout: Duration) -> Result<HttpClient, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_webpki_roots()
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(timeout));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// Every [`POLL_INTERVAL`], takes the lease of each endpoint with deliveries due that no
/// server works on, and works on it in a task of its own.
async fn look_for_work(shared: Arc<Shared>, mut stopping: watch::Receiver<bool>) {
    let mut working: JoinSet<WebhookId> = JoinSet::new();
    let mut held: HashSet<WebhookId> = HashSet::new();
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = poll.tick() => {}
            _ = stopping.changed() => break,
        }
        while let Some(done) = working.try_join_next() {
            if let Ok(id) = done {
                held.remove(&id);
            }
        }
        let due = match shared
            .store
            .webhook_endpoints_to_take(&shared.owner, unix_now_ms())
            .await
        {
            Ok(due) => {
                failing = false;
                due
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot look for webhook deliveries; trying again every second");
                }
                failing = true;
                continue;
            }
        };
        for id in due {
            if held.contains(&id) {
                continue;
            }
            let taken_at = Instant::now();
            match shared
                .store
                .take_webhook_lease(&id, &shared.owner, lease_ms(shared.lease))
                .await
            {
                Ok(Some(endpoint)) => {
                    held.insert(id);
                    let lease = Lease::taken(taken_at, shared.lease);
                    working.spawn(deliver_while_leased(
                        Arc::clone(&shared),
                        endpoint,
                        lease,
                        stopping.clone(),
                    ));
                }
                // Another server took it first.
                Ok(None) => {}
                Err(e) => tracing::warn!(endpoint = %id, error = %e, "cannot take a webhook lease"),
            }
        }
    }
    while working.join_next().await.is_some() {}
}

fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

/// This server's lease on one endpoint, as far as it knows: renewed every third of its
/// length, and given up for lost shortly before it would run out unrenewed (measured from
/// before the statement that took or renewed it was sent, so never later than the database's).
struct Lease {
    renewed_at: Instant,
    length: Duration,
}

impl Lease {
    fn taken(at: Instant, length: Duration) -> Self {
        Self {
            renewed_at: at,
            length,
        }
    }

    fn renewal_due_at(&self) -> Instant {
        self.renewed_at + self.length / 3
    }

    /// After this, another server may hold it: send nothing more.
    fn usable_until(&self) -> Instant {
        self.renewed_at + self.length * 5 / 6
    }

    fn is_usable(&self) -> bool {
        Instant::now() < self.usable_until()
    }

    /// Renews when due; false once it is lost, or could not be renewed in time.
    async fn keep(&mut self, shared: &Shared, endpoint: &WebhookId) -> bool {
        if Instant::now() < self.renewal_due_at() {
            return true;
        }
        let sent = Instant::now();
        let renewal =
            shared
                .store
                .renew_webhook_lease(endpoint, &shared.owner, lease_ms(self.length));
        // A renewal still unanswered when the lease may have run out is no renewal.
        match tokio::time::timeout_at(self.usable_until(), renewal).await {
            Ok(Ok(true)) => {
                self.renewed_at = sent;
                true
            }
            Ok(Ok(false)) => false,
            Ok(Err(e)) => {
                tracing::warn!(endpoint = %endpoint, error = %e, "cannot renew a webhook lease");
                self.is_usable()
            }
            Err(_) => false,
        }
    }

    /// Renews it as long as it can; returns once it is lost. For the time an attempt takes.
    async fn hold(&mut self, shared: &Shared, endpoint: &WebhookId) {
        loop {
            let next = self.renewal_due_at().min(self.usable_until());
            tokio::time::sleep_until(next.max(Instant::now() + Duration::from_millis(100))).await;
            if !self.keep(shared, endpoint).await {
                return;
            }
        }
    }
}

/// Sends the endpoint's deliveries in order while this server holds its lease, until none is
/// left or the server stops; then releases the lease. Returns the endpoint's id.
async fn deliver_while_leased(
    shared: Arc<Shared>,
    endpoint: LeasedEndpoint,
    mut lease: Lease,
    mut stopping: watch::Receiver<bool>,
) -> WebhookId {
    let id = endpoint.id.clone();
    let release = loop {
        if *stopping.borrow() {
            break true;
        }
        if !lease.keep(&shared, &id).await {
            tracing::info!(endpoint = %id, "lost the lease on a webhook endpoint");
            break false;
        }
        let pending = match shared.store.next_webhook_delivery(&id).await {
            Ok(Some(pending)) => pending,
            Ok(None) => break true,
            Err(e) => {
                tracing::warn!(endpoint = %id, error = %e, "cannot read the next webhook delivery");
                if pause(POLL_INTERVAL, &mut stopping).await {
                    break true;
                }
                continue;
            }
        };
        let wait_ms = pending.next_attempt_at_ms - unix_now_ms();
        if wait_ms > 0 {
            // Not yet; wake up in time to renew the lease, too.
            let until_renewal = lease
                .renewal_due_at()
                .saturating_duration_since(Instant::now());
            let wait = Duration::from_millis(wait_ms as u64).min(until_renewal);
            if pause(wait, &mut stopping).await {
                break true;
            }
            continue;
        }
        if !lease.is_usable() {
            // Reading took long; renew (or find it lost) before sending anything.
            continue;
        }
        let outcome = tokio::select! {
            outcome = shared.attempt(&endpoint, &pending.event) => outcome,
            () = lease.hold(&shared, &id) => {
                tracing::warn!(endpoint = %id, "lost the lease on a webhook endpoint during an attempt");
                break false;
            }
        };
        shared.record(&id, &pending, outcome).await;
    };
    if release && let Err(e) = shared.store.release_webhook_lease(&id, &shared.owner).await {
        tracing::warn!(endpoint = %id, error = %e, "cannot release a webhook lease");
    }
    id
}

/// Sleeps for `wait`; true if the server began stopping meanwhile.
async fn pause(wait: Duration, stopping: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(wait) => *stopping.borrow(),
        _ = stopping.changed() => true,
    }
}

impl Shared {
    /// One POST of `event` to the endpoint, signed; Ok once it answered 2xx, else why not.
    async fn attempt(&self, endpoint: &LeasedEndpoint, event: &AuditEvent) -> Result<(), String> {
        // Standard Webhooks' payload: the event's type, when it happened, and the event.
        let body = json!({
            "type": event.action.as_str(),
            "timestamp": format_rfc3339_ms(event.at_ms),
            "data": event,
        })
        .to_string();
        let timestamp = unix_now();
        let signature = endpoint
            .secret
            .sign(event.id.as_str(), timestamp, body.as_bytes())
            .ok_or("the endpoint's secret is not whsec_ and base64")?;
        let request = hyper::Request::post(endpoint.url.as_str())
            .header(CONTENT_TYPE, "application/json")
            .header(
                USER_AGENT,
                concat!("portcullis/", env!("CARGO_PKG_VERSION")),
            )
            .header("webhook-id", event.id.as_str())
            .header("webhook-timestamp", timestamp)
            .header("webhook-signature", signature)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("cannot make a request to the endpoint's url: {e}"))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| describe(&e))?;
            let status = response.status();
            let answer = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map(|collected| collected.to_bytes())
                .unwrap_or_default();
            if status.is_success() {
                Ok(())
            } else {
                Err(refusal(status, &answer))
            }
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {} s", self.timeout.as_secs())),
        }
    }

    /// Marks the delivery done, or schedules its next attempt.
    async fn record(&self, id: &WebhookId, pending: &PendingDelivery, outcome: Result<(), String>) {
        let event_id = pending.event.id.as_str();
        let recorded = match outcome {
            Ok(()) => {
                tracing::debug!(endpoint = %id, event = event_id, "delivered a webhook");
                self.store
                    .mark_webhook_delivered(id, event_id, unix_now_ms())
                    .await
            }
            Err(why) => {
                let attempts = pending.attempts + 1;
                let delay_ms =
                    retry_delay_ms(self.first_retry_ms, self.max_retry_delay_ms, attempts);
                tracing::warn!(
                    endpoint = %id, event = event_id, attempts, error = %why,
                    "webhook delivery failed; trying again in {delay_ms} ms"
                );
                let next =
                    unix_now_ms().saturating_add(i64::try_from(delay_ms).unwrap_or(i64::MAX));
                self.store
                    .record_webhook_failure(id, event_id, &why, next)
                    .await
            }
        };
        // The delivery stays as it was: sent again, perhaps once more than needed.
        if let Err(e) = recorded {
            tracing::warn!(endpoint = %id, event = event_id, error = %e, "cannot record a webhook attempt");
        }
    }
}

/// After `attempts` failed attempts: the first retry delay, doubled for each further one up
/// to the longest delay, less a random part of up to half of it ("equal jitter"), so that
/// endpoints failing together do not all retry together.
fn retry_delay_ms(first_ms: u64, max_ms: u64, attempts: i64) -> u64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 40)).unwrap_or(40);
    let delay = first_ms
        .saturating_mul(1u64 << doublings)
        .min(max_ms.max(1));
    let mut random = [0u8; 8];
    let jitter = match aws_lc_rs::rand::fill(&mut random) {
        Ok(()) => u64::from_le_bytes(random) % (delay / 2 + 1),
        Err(_) => 0,
    };
    delay - jitter
}

/// A client error with its causes ("client error (Connect): tcp connect error: Connection
/// refused"): hyper's own message names only the stage.
fn describe(error: &hyper_util::client::legacy::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `HTTP 500: <the start of the body>`, without control characters.
fn refusal(status: hyper::StatusCode, body: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_ERROR_CHARS)
        .collect();
    if text.trim().is_empty() {
        format!("HTTP {}", status.as_u16())
    } else {
        format!("HTTP {}: {}", status.as_u16(), text.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_with_jitter_up_to_the_cap() {
        for _ in 0..100 {
            assert!((500..=1_000).contains(&retry_delay_ms(1_000, 600_000, 1)));
            assert!((1_000..=2_000).contains(&retry_delay_ms(1_000, 600_000, 2)));
            assert!((4_000..=8_000).contains(&retry_delay_ms(1_000, 600_000, 4)));
            assert!((300_000..=600_000).contains(&retry_delay_ms(1_000, 600_000, 30)));
            assert!((300_000..=600_000).contains(&retry_delay_ms(1_000, 600_000, i64::MAX)));
        }
        assert_eq!(retry_delay_ms(1, 1, 1), 1);
    }

    #[test]
    fn refusals_say_the_status_and_the_start_of_the_answer() {
        let status = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        assert_eq!(refusal(status, b""), "HTTP 500");
        assert_eq!(
            refusal(status, b" bad\nsignature "),
            "HTTP 500: badsignature"
        );
        assert_eq!(
            refusal(status, &[b'x'; 1000]).len(),
            "HTTP 500: ".len() + 200
        );
    }
}
