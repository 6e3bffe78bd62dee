//! On PostgreSQL, how a credential change reaches every replica's cache before the change is
//! reported done, so that requests need not read the generation each time.
//!
//! - Each server holds a lease in `credential_watchers` and listens on a channel that every
//!   change notifies when it commits.
//! - On a notification, and every [`RENEW_INTERVAL`] anyway, the server reads the generation
//!   again, starts using it, and then, in one statement, acknowledges the change count it read
//!   and renews its lease. The renewal succeeds only while the lease is still live, so an
//!   acknowledged view was never out of reach of a change.
//! - A change is reported done (the admin API answers, the CLI returns) only once every replica
//!   with a live lease has acknowledged it.
//! - A server answers from its view alone until shortly before its lease would end by the
//!   database's clock; after that, or once it lost its channel, it reads the generation per
//!   request (the [`GenerationFence`]) until it holds a lease again.
//!
//! So a request that arrives after a change was reported done sees the change on every replica,
//! exactly as with a read per request. The price: a replica that dies without saying goodbye
//! holds up credential changes until its lease runs out.
//!
//! [`GenerationFence`]: super::generation::GenerationFence

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::transaction::WriteTx;
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::generation::{GenerationFence, Observed};
use super::{Store, StoreError};
use crate::config::{
    CREDENTIAL_LEASE_MARGIN_MS, CREDENTIAL_LEASE_MS, CREDENTIAL_LEASE_RENEW_INTERVAL_MS,
};

/// The PostgreSQL channel that credential changes notify.
const CHANNEL: &str = "portcullis_credential_changes";

/// Milliseconds since the Unix epoch by the database's clock, which all leases are measured by.
const DATABASE_NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

const RENEW_INTERVAL: Duration = Duration::from_millis(CREDENTIAL_LEASE_RENEW_INTERVAL_MS);
/// How long a change waits for acknowledgements before it gives up with a warning. Leases run
/// out well before this, so it is reached only when a server renews without catching up.
const ACKNOWLEDGEMENT_WAIT_MAX: Duration = Duration::from_millis(2 * CREDENTIAL_LEASE_MS as u64);
/// After a failure, how long a server waits before it tries to hold a lease again.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Notifies the replicas of change number `change_count` when `tx` commits.
pub(super) async fn announce(tx: &mut WriteTx, change_count: i64) -> Result<(), StoreError> {
    // pg_notify returns void, which sqlx's Any driver cannot describe: select a number instead.
    sqlx::query("SELECT 1 FROM (SELECT pg_notify($1, $2)) AS notified")
        .bind(CHANNEL)
        .bind(change_count.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Returns once every replica with a live lease has acknowledged change number
/// `change_count`. The change is committed already, so this never fails: it logs.
pub(super) async fn await_acknowledgements(store: &Store, change_count: i64) {
    // Locking every row first makes the check wait for renewals still committing, so that a
    // lease renewed just before it ran out is not taken for one that ran out.
    let behind_query = format!(
        "WITH watchers AS (SELECT acked_count, lease_expires_ms FROM credential_watchers \
         FOR SHARE) SELECT COUNT(*) FROM watchers \
         WHERE acked_count < $1 AND lease_expires_ms > {DATABASE_NOW_MS}"
    );
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    let mut behind = None;
    loop {
        let remaining = ACKNOWLEDGEMENT_WAIT_MAX.saturating_sub(started.elapsed());
        let check = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(behind_query.as_str()))
            .bind(change_count)
            .fetch_one(store.pool());
        match tokio::time::timeout(remaining, check).await {
            Ok(Ok(0)) => return,
            Ok(Ok(count)) => behind = Some(count),
            // Leases cannot be renewed without the database either: waiting is still right.
            Ok(Err(e)) => tracing::debug!(error = %e, "cannot check acknowledgements yet"),
            Err(_) => {}
        }
        if started.elapsed() >= ACKNOWLEDGEMENT_WAIT_MAX {
            tracing::warn!(
                change_count,
                ?behind,
                "servers did not acknowledge a credential change in time; some may briefly \
                 keep using what it changed"
            );
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// One server's lease and the view of the generation it may answer from.
pub struct ChangeWatch {
    /// Random per process, so that a restarted server never inherits acknowledgements.
    id: String,
    store: Store,
    trust: Mutex<Trust>,
    task: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct Trust {
    /// The latest generation read, published before it is acknowledged.
    observed: Option<Observed>,
    /// Until when `observed` may be used without a read of one's own, by [`boot_clock`]:
    /// shortly before the lease ends. None while no lease is held.
    until: Option<Duration>,
}

/// Time since boot, including time suspended (CLOCK_BOOTTIME). `Instant` stops while a machine
/// sleeps, so a server waking up would think its lease still young.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn boot_clock() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Elsewhere (development machines), a monotonic clock: only a suspend goes unnoticed.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn boot_clock() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

impl ChangeWatch {
    /// Starts holding a lease and following changes, in a task of its own.
    pub fn start(store: Store, fence: Arc<GenerationFence>, url: String) -> Arc<Self> {
        let watch = Arc::new(Self {
            id: crate::secrets::random_id("watcher_"),
            store,
            trust: Mutex::new(Trust::default()),
            task: Mutex::new(None),
        });
        let task = tokio::spawn(Arc::clone(&watch).follow(fence, url));
        *watch.task.lock().expect("watch lock poisoned") = Some(task);
        watch
    }

    /// The generation this server may answer from without reading it, if any.
    pub fn trusted(&self) -> Option<Observed> {
        let trust = self.trust.lock().expect("watch lock poisoned");
        match trust.until {
            Some(until) if boot_clock() < until => trust.observed,
            _ => None,
        }
    }

    /// Stops following and gives up the lease, so that changes no longer wait for this server.
    pub async fn stop(&self) {
        let task = self.task.lock().expect("watch lock poisoned").take();
        if let Some(task) = task {
            task.abort();
            // Once it has ended, no renewal of its can land after the lease is given up.
            let _ = task.await;
        }
        self.distrust();
        let released = sqlx::query("DELETE FROM credential_watchers WHERE id = $1")
            .bind(&self.id)
            .execute(self.store.pool())
            .await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "could not release the credential lease");
        }
    }

    async fn follow(self: Arc<Self>, fence: Arc<GenerationFence>, url: String) {
        loop {
            let reason = self.follow_while_leased(&fence, &url).await;
            self.distrust();
            tracing::warn!(%reason, "reading the credential generation per request for now");
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// Holds the lease and follows changes until something fails; returns why.
    async fn follow_while_leased(&self, fence: &Arc<GenerationFence>, url: &str) -> String {
        // Listen before anything else: a change committed after this is notified.
        let (mut changes, _listening) = match listen(url).await {
            Ok(listening) => listening,
            Err(e) => return format!("cannot listen for changes: {e}"),
        };
        // Hold a lease before reading: a change committed after this waits for this server.
        if let Err(e) = self.take_lease().await {
            return format!("cannot take a lease: {e}");
        }
        loop {
            let observed = match fence.observe().await {
                Ok(observed) => observed,
                Err(e) => return format!("cannot read the credential generation: {e}"),
            };
            let published = self.publish(observed);
            let sent = boot_clock();
            match self.renew_and_acknowledge(published.change_count).await {
                Ok(true) => self.extend(sent),
                Ok(false) => return "the lease ran out".into(),
                Err(e) => return format!("cannot renew the lease: {e}"),
            }
            tokio::select! {
                event = changes.recv() => match event {
                    Some(ListenerEvent::Changed) => {
                        // One read serves every change notified so far.
                        while let Ok(ListenerEvent::Changed) = changes.try_recv() {}
                    }
                    Some(ListenerEvent::Lost) | None => {
                        return "lost the connection that listens for changes".into()
                    }
                },
                _ = tokio::time::sleep(RENEW_INTERVAL) => {}
            }
        }
    }

    /// Takes the lease, acknowledging every change so far: this server trusts nothing until it
    /// has read the generation after this, so nothing committed before can reach it late.
    async fn take_lease(&self) -> Result<(), StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO credential_watchers (id, lease_expires_ms, acked_count) \
             VALUES ($1, {DATABASE_NOW_MS} + $2, \
                     (SELECT change_count FROM credential_generation WHERE id = 1)) \
             ON CONFLICT (id) DO UPDATE SET lease_expires_ms = EXCLUDED.lease_expires_ms, \
                     acked_count = EXCLUDED.acked_count"
        )))
        .bind(&self.id)
        .bind(CREDENTIAL_LEASE_MS)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Acknowledges `change_count` and renews the lease, if the lease is still live; false
    /// when it ran out, since then a change may have gone by unacknowledged.
    async fn renew_and_acknowledge(&self, change_count: i64) -> Result<bool, StoreError> {
        let renewed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE credential_watchers SET lease_expires_ms = {DATABASE_NOW_MS} + $2, \
             acked_count = GREATEST(acked_count, $3) \
             WHERE id = $1 AND lease_expires_ms > {DATABASE_NOW_MS}"
        )))
        .bind(&self.id)
        .bind(CREDENTIAL_LEASE_MS)
        .bind(change_count)
        .execute(self.store.pool())
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    /// Starts answering from `observed`, if it is newer; this never extends the trust.
    /// Returns the view now published, which is what may be acknowledged.
    fn publish(&self, observed: Observed) -> Observed {
        let mut trust = self.trust.lock().expect("watch lock poisoned");
        match trust.observed {
            Some(held) if held.read >= observed.read => held,
            _ => *trust.observed.insert(observed),
        }
    }

    /// Trusts the published view until shortly before a lease renewed after `sent` ends.
    fn extend(&self, sent: Duration) {
        let lease =
            Duration::from_millis((CREDENTIAL_LEASE_MS - CREDENTIAL_LEASE_MARGIN_MS) as u64);
        self.trust.lock().expect("watch lock poisoned").until = Some(sent + lease);
    }

    fn distrust(&self) {
        self.trust.lock().expect("watch lock poisoned").until = None;
    }
}

enum ListenerEvent {
    Changed,
    Lost,
}

/// Ends the listening task when dropped.
struct Listening(JoinHandle<()>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Listens on the channel from a task of its own, which reports what it hears.
async fn listen(
    url: &str,
) -> Result<(mpsc::UnboundedReceiver<ListenerEvent>, Listening), sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    let (events, changes) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let event = match listener.try_recv().await {
                Ok(Some(_)) => ListenerEvent::Changed,
                // Notifications may have been missed while the connection was down.
                Ok(None) | Err(_) => ListenerEvent::Lost,
            };
            let lost = matches!(event, ListenerEvent::Lost);
            if events.send(event).is_err() || lost {
                return;
            }
        }
    });
    Ok((changes, Listening(task)))
}
