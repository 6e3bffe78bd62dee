//! Whether the database answers, for readiness probes.

use std::time::Duration;

use super::{Store, StoreError};

impl Store {
    /// Runs a trivial query, failing when it takes longer than `within`: a probe must answer
    /// quickly, not wait out the pool's acquire timeout.
    pub async fn ping(&self, within: Duration) -> Result<(), PingError> {
        let query = sqlx::query("SELECT 1").execute(&self.pool);
        match tokio::time::timeout(within, query).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(PingError::Failed(e.into())),
            Err(_) => Err(PingError::TimedOut(within)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PingError {
    #[error("{0}")]
    Failed(StoreError),
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
}
