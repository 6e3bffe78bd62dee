//! "What is the credential generation now?", answered with a read that started after the
//! question was asked, so an answer can never predate a change the asker already saw committed
//! (a revocation on another replica, or by the CLI). Questions asked while a read is running
//! share the next read, so under load one small query serves many requests. On PostgreSQL, a
//! server's reads for its lease go through it, and so do requests while it holds no lease
//! (see `leases`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::AnyConnection;
use tokio::sync::watch;

use super::observed::Observed;
use crate::config::{GENERATION_READ_TIMEOUT_MS, GENERATION_WAIT_TIMEOUT_MS};
use crate::store::credential_changes::{Generation, credential_generation_on};
use crate::store::{Store, StoreError};

/// Shares generation reads among concurrent requests without ever answering from a read that
/// started before the request did.
pub struct GenerationFence {
    store: Store,
    /// The shared reads' own connection, taken out of the pool: a pooled connection is
    /// checked with a round trip each time it is returned, which would double the cost.
    connection: tokio::sync::Mutex<Option<AnyConnection>>,
    reads: Mutex<Reads>,
    finished: watch::Sender<Finished>,
}

struct Reads {
    /// Number of the latest read started.
    started: u64,
    running: bool,
    /// Someone arrived during the running read and needs the next one.
    another_wanted: bool,
}

#[derive(Clone, Copy)]
struct Finished {
    read: u64,
    /// None when the read failed: its waiters are told the database is unavailable.
    generation: Option<Generation>,
}

impl GenerationFence {
    pub fn new(store: Store) -> Arc<Self> {
        Arc::new(Self {
            store,
            connection: tokio::sync::Mutex::new(None),
            reads: Mutex::new(Reads {
                started: 0,
                running: false,
                another_wanted: false,
            }),
            finished: watch::Sender::new(Finished {
                read: 0,
                generation: None,
            }),
        })
    }

    /// The generation, as seen by a read that started after this call.
    pub async fn observe(self: &Arc<Self>) -> Result<Observed, StoreError> {
        let mut finished = self.finished.subscribe();
        // The read under way when we arrived, if any.
        let mut joined = None;
        let needed = {
            let mut reads = self.reads.lock().expect("fence lock poisoned");
            if reads.running {
                // The running read may have started before we arrived: wait for the next.
                reads.another_wanted = true;
                joined = Some(reads.started);
                reads.started + 1
            } else {
                reads.running = true;
                reads.started += 1;
                // A task of its own, so that a cancelled request cannot strand the others.
                tokio::spawn(Arc::clone(self).read_until_nobody_waits(reads.started));
                reads.started
            }
        };
        // Only a read that started after we arrived may answer with a generation; but the
        // failure of the read under way when we arrived answers us too, so that in an outage
        // a request waits for one failed read, not two. (Not an older failure: that would
        // turn a blip long past into a 503 now.)
        let answers =
            |f: &Finished| f.read >= needed || (f.generation.is_none() && Some(f.read) == joined);
        let waited = tokio::time::timeout(
            Duration::from_millis(GENERATION_WAIT_TIMEOUT_MS),
            finished.wait_for(answers),
        );
        let done = match waited.await {
            Ok(Ok(finished)) => Some(*finished),
            _ => None,
        };
        match done {
            Some(Finished {
                read,
                generation: Some(seen),
            }) => Ok(Observed::new(read, seen)),
            Some(Finished {
                generation: None, ..
            }) => Err(StoreError::unavailable_because(
                "the credential generation could not be read",
            )),
            // The shared read is late: read alone, so any error is this request's own.
            None => {
                let seen = self.store.credential_generation().await?;
                Ok(Observed::new(needed, seen))
            }
        }
    }

    /// Runs read number `read`, then the next one for as long as someone arrived meanwhile.
    async fn read_until_nobody_waits(self: Arc<Self>, mut read: u64) {
        let mut in_charge = InCharge {
            fence: &self,
            read: Some(read),
        };
        loop {
            let generation = self.shared_read().await;
            self.finished.send_replace(Finished { read, generation });
            in_charge.read = None;
            // Let requests that are ready to run reach the fence first, so that the next read
            // serves them too.
            tokio::task::yield_now().await;
            let mut reads = self.reads.lock().expect("fence lock poisoned");
            if !reads.another_wanted {
                reads.running = false;
                return;
            }
            reads.another_wanted = false;
            reads.started += 1;
            read = reads.started;
            in_charge.read = Some(read);
        }
    }

    /// One read on the fence's own connection, which is made anew after any failure. None
    /// when the read failed (and was logged).
    async fn shared_read(&self) -> Option<Generation> {
        let mut connection = self.connection.lock().await;
        let read = tokio::time::timeout(Duration::from_millis(GENERATION_READ_TIMEOUT_MS), async {
            if connection.is_none() {
                *connection = Some(self.store.dedicated_connection().await?);
            }
            let live = connection.as_mut().expect("connected above");
            credential_generation_on(live).await
        });
        let failure = match read.await {
            Ok(Ok(generation)) => return Some(generation),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {GENERATION_READ_TIMEOUT_MS} ms"),
        };
        tracing::warn!(error = %failure, "could not read the credential generation");
        *connection = None;
        None
    }
}

/// Should the reading task stop without finishing its read (a panic, a runtime shutting down),
/// this lets the waiters know (they answer 503), and lets the next request start reads again.
struct InCharge<'a> {
    fence: &'a GenerationFence,
    /// The read under way, if any.
    read: Option<u64>,
}

impl Drop for InCharge<'_> {
    fn drop(&mut self) {
        let Some(read) = self.read else {
            return;
        };
        // Not `expect`: this may run while panicking.
        if let Ok(mut reads) = self.fence.reads.lock() {
            reads.running = false;
        }
        self.fence.finished.send_replace(Finished {
            read,
            generation: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under constant load (so that a shared read is nearly always running), every question
    /// asked after a change committed sees that change.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_answer_predates_the_question() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("fence.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let fence = GenerationFence::new(store.clone());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut load = Vec::new();
        for _ in 0..4 {
            let (fence, stop) = (Arc::clone(&fence), Arc::clone(&stop));
            load.push(tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    fence.observe().await.unwrap();
                }
            }));
        }
        let mut shared = 0;
        for _ in 0..100 {
            store.mark_credentials_changed().await.unwrap();
            let committed = store.credential_generation().await.unwrap().generation;
            let askers: Vec<_> = (0..4)
                .map(|_| {
                    let fence = Arc::clone(&fence);
                    tokio::spawn(async move { fence.observe().await.unwrap() })
                })
                .collect();
            let mut reads = Vec::new();
            for asker in askers {
                let observed = asker.await.unwrap();
                assert_eq!(observed.generation, committed, "{observed:?}");
                reads.push(observed.read);
            }
            reads.sort();
            reads.dedup();
            shared += 4 - reads.len();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for task in load {
            task.await.unwrap();
        }
        assert!(shared > 0, "concurrent questions share reads");
    }
}
