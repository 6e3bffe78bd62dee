//! What a server knows of the credential generation: a value, and which of its reads saw it.

use crate::store::credential_changes::Generation;

/// A generation, and which read saw it. Each source of reads (the fence, the SQLite reader)
/// numbers its reads in the order they started, so a higher `read` is a later view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    pub read: u64,
    pub generation: i64,
    pub change_count: i64,
}

impl Observed {
    pub fn new(read: u64, seen: Generation) -> Self {
        Self {
            read,
            generation: seen.generation,
            change_count: seen.change_count,
        }
    }
}
