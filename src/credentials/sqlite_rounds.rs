//! SQLite freshness checks shared by the requests that wait at the same moment, in rounds.
//!
//! A check ([`SqliteGenerationReader::observe`]) costs a few microseconds, most of them the two
//! file-lock system calls of SQLite's read transaction: under load, a third of what an
//! introspection costs. Yet one check serves every request that asked before it began. So a
//! request asks for the next round and waits; one task runs rounds while anyone waits, and
//! each round's answer goes to every request that asked before the round began. On a busy
//! server one check answers the dozens of requests that arrived while the previous one ran; an
//! idle one pays a task switch.
//!
//! Why no answer predates its question: a request takes the number of the round after the
//! latest one started, under the lock that starting a round takes; the round with that number
//! starts (and its check begins) only after the request took it. Freshness stays that of a
//! check per request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::observed::Observed;
use super::sqlite::SqliteGenerationReader;
use crate::config::GENERATION_WAIT_TIMEOUT_MS;
use crate::store::StoreError;

pub struct SqliteRounds {
    shared: Arc<Shared>,
    runner: JoinHandle<()>,
}

struct Shared {
    reader: SqliteGenerationReader,
    /// The number of the latest round started.
    started: Mutex<u64>,
    /// Someone waits for a round not yet started.
    wanted: Notify,
    /// The latest round finished, and its answer (None: the check failed).
    finished: watch::Sender<(u64, Option<Observed>)>,
}

impl SqliteRounds {
    /// Starts the task that runs the rounds; call within the runtime.
    pub fn start(reader: SqliteGenerationReader) -> Self {
        let shared = Arc::new(Shared {
            reader,
            started: Mutex::new(0),
            wanted: Notify::new(),
            finished: watch::Sender::new((0, None)),
        });
        let runner = tokio::spawn(run_rounds(Arc::clone(&shared)));
        Self { shared, runner }
    }

    /// The generation, as seen by a check that began after this call.
    pub async fn observe(&self) -> Result<Observed, StoreError> {
        let mut finished = self.shared.finished.subscribe();
        let needed = *self.shared.lock() + 1;
        self.shared.wanted.notify_one();
        let answered = tokio::time::timeout(
            Duration::from_millis(GENERATION_WAIT_TIMEOUT_MS),
            finished.wait_for(|(round, _)| *round >= needed),
        )
        .await;
        match answered {
            Ok(Ok(answer)) => answer.1.ok_or_else(|| unavailable("the check failed")),
            // The runner stopped, or is stuck behind a lock: the request is worth retrying.
            _ => Err(unavailable("no check in time")),
        }
    }

    /// Rounds started so far.
    #[cfg(test)]
    fn rounds(&self) -> u64 {
        *self.shared.lock()
    }
}

impl Drop for SqliteRounds {
    fn drop(&mut self) {
        self.runner.abort();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        self.started.lock().expect("rounds lock poisoned")
    }
}

/// Runs a round whenever someone waits for one.
async fn run_rounds(shared: Arc<Shared>) {
    loop {
        shared.wanted.notified().await;
        // Behind the requests ready to run, so that those about to ask join this round.
        tokio::task::yield_now().await;
        let round = {
            let mut started = shared.lock();
            *started += 1;
            *started
        };
        let answer = match shared.reader.observe() {
            Ok(observed) => Some(observed),
            Err(e) => {
                tracing::warn!(error = %e, "cannot check the SQLite file for credential changes");
                None
            }
        };
        shared.finished.send_replace((round, answer));
    }
}

fn unavailable(why: &str) -> StoreError {
    StoreError::unavailable_because(format!("credential freshness: {why}"))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use rusqlite::Connection;

    use super::*;
    use crate::credentials::sqlite::tests::{commit_until, migrated};

    /// Requests asking at once, on two threads, while another connection commits at random
    /// moments: every answer includes every change committed before its question, and the
    /// questions share checks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_never_predate_questions_and_waiting_questions_share_a_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rounds.db");
        migrated(&path).await;
        let rounds = Arc::new(SqliteRounds::start(
            SqliteGenerationReader::open(&path).unwrap(),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = commit_until(&path, Arc::clone(&stop));
        const ASKERS: usize = 32;
        const QUESTIONS: usize = 300;
        let askers: Vec<_> = (0..ASKERS)
            .map(|_| {
                let (rounds, path) = (Arc::clone(&rounds), path.clone());
                tokio::spawn(async move {
                    let checker = Connection::open(&path).unwrap();
                    checker.busy_timeout(Duration::from_secs(5)).unwrap();
                    for _ in 0..QUESTIONS {
                        let before_question: i64 = checker
                            .query_row(
                                "SELECT change_count FROM credential_generation WHERE id = 1",
                                [],
                                |row| row.get(0),
                            )
                            .unwrap();
                        let answer = rounds.observe().await.unwrap();
                        assert!(
                            answer.change_count >= before_question,
                            "change {before_question} was committed before the question, the answer is {answer:?}"
                        );
                    }
                })
            })
            .collect();
        for asker in askers {
            asker.await.unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        assert!(writer.join().unwrap() > 100);
        let questions = (ASKERS * QUESTIONS) as u64;
        let checks = rounds.rounds();
        assert!(
            checks < questions / 2,
            "{checks} checks for {questions} questions"
        );
    }

    /// A request waits for a round in a runner that no longer runs: it is told the database
    /// is unavailable, not kept waiting.
    #[tokio::test]
    async fn a_stopped_runner_means_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stopped.db");
        migrated(&path).await;
        let rounds = SqliteRounds::start(SqliteGenerationReader::open(&path).unwrap());
        assert!(rounds.observe().await.is_ok());
        rounds.runner.abort();
        tokio::task::yield_now().await;
        assert!(matches!(
            rounds.observe().await,
            Err(StoreError::Unavailable(_))
        ));
    }
}
