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
//! The SQL of leases and acknowledgements, and a change's wait for them, are in
//! `store::credential_changes`.
//!
//! [`GenerationFence`]: super::fence::GenerationFence

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::fence::GenerationFence;
use super::observed::Observed;
use crate::config::CREDENTIAL_LEASE_RETRY_PAUSE_MS;
use crate::config::{
    CREDENTIAL_LEASE_MARGIN_MS, CREDENTIAL_LEASE_MS, CREDENTIAL_LEASE_RENEW_INTERVAL_MS,
};
use crate::store::{Store, StoreError};

const RENEW_INTERVAL: Duration = Duration::from_millis(CREDENTIAL_LEASE_RENEW_INTERVAL_MS);

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
    pub fn start(store: Store, fence: Arc<GenerationFence>) -> Arc<Self> {
        let watch = Arc::new(Self {
            id: crate::secrets::random_id("watcher_"),
            store,
            trust: Mutex::new(Trust::default()),
            task: Mutex::new(None),
        });
        let task = tokio::spawn(Arc::clone(&watch).follow(fence));
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
        if let Err(e) = self.store.release_credential_lease(&self.id).await {
            tracing::warn!(error = %e, "could not release the credential lease");
        }
    }

    async fn follow(self: Arc<Self>, fence: Arc<GenerationFence>) {
        loop {
            let reason = self.follow_while_leased(&fence).await;
            self.distrust();
            tracing::warn!(%reason, "reading the credential generation per request for now");
            tokio::time::sleep(Duration::from_millis(CREDENTIAL_LEASE_RETRY_PAUSE_MS)).await;
        }
    }

    /// Holds the lease and follows changes until something fails; returns why.
    async fn follow_while_leased(&self, fence: &Arc<GenerationFence>) -> String {
        // Listen before anything else: a change committed after this is notified.
        let (mut changes, _listening) = match self.listen().await {
            Ok(listening) => listening,
            Err(e) => return format!("cannot listen for changes: {e}"),
        };
        // Hold a lease before reading: a change committed after this waits for this server.
        if let Err(e) = self.store.take_credential_lease(&self.id).await {
            return format!("cannot take a lease: {e}");
        }
        loop {
            let observed = match fence.observe().await {
                Ok(observed) => observed,
                Err(e) => return format!("cannot read the credential generation: {e}"),
            };
            let published = self.publish(observed);
            let sent = boot_clock();
            let renewal = self
                .store
                .renew_credential_lease(&self.id, published.change_count);
            match renewal.await {
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

impl ChangeWatch {
    /// Listens for changes from a task of its own, which reports what it hears.
    async fn listen(
        &self,
    ) -> Result<(mpsc::UnboundedReceiver<ListenerEvent>, Listening), StoreError> {
        let listener = self.store.listen_for_credential_changes().await?;
        let (events, changes) = mpsc::unbounded_channel();
        Ok((changes, Listening(tokio::spawn(report(listener, events)))))
    }
}

async fn report(mut listener: PgListener, events: mpsc::UnboundedSender<ListenerEvent>) {
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
}
