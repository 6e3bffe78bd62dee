//! SQLite's own signal that a database has changed: the header of its WAL index, in the
//! shared memory every connection to a WAL database maps (the `-shm` file; format in
//! <https://sqlite.org/walformat.html>). Every commit, by any connection in any process,
//! rewrites this header before the commit returns; so do restarts of the log and recoveries,
//! which only costs a needless read. Each connection compares it with the copy it last saw to
//! decide whether its page cache is stale. The whole header never comes back to an earlier
//! value: the frame count only grows, and each restart of the log changes its salts. Reading it
//! is a few loads from memory, where a read transaction takes and releases file locks.
//!
//! The header is read through SQLite's own mapping of the index (the VFS's `xShmMap`) and in
//! the way SQLite reads it: copy 0, a barrier, then copy 1, which writers update in the reverse
//! order; copies that differ mean a commit is under way.

use std::ffi::{c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering, fence};

use rusqlite::{Connection, ffi};

/// 32-bit words in one copy of the header (`WalIndexHdr`, 48 bytes).
const HEADER_WORDS: usize = 12;
/// The size SQLite maps the index in; a caller must ask for regions of the same size.
const REGION_BYTES: c_int = 32 * 1024;
/// `iVersion`, the header's first word: the one version this layout describes.
const INDEX_VERSION: u32 = 3_007_000;
/// `isInit` is the first byte of the fourth word; it is 1 once the header is written.
const IS_INIT_WORD: usize = 3;

/// One copy of the header, as read.
pub type WalIndexHeader = [u32; HEADER_WORDS];

/// SQLite's mapping of the WAL index of one connection's database.
pub struct WalIndex {
    /// The index's first region, in shared memory.
    region: *mut u32,
}

// SAFETY: the region is shared memory that any thread may read; it is only read, atomically.
unsafe impl Send for WalIndex {}
unsafe impl Sync for WalIndex {}

impl WalIndex {
    /// The WAL index of `connection`'s main database, or None when it has none (not in WAL
    /// mode, or a VFS without shared memory).
    ///
    /// # Safety
    /// `connection` must have read from the database in WAL mode already and must stay open
    /// while this is used. An open WAL connection keeps a shared lock on the database, so no
    /// process can leave WAL mode or remove the index meanwhile, and SQLite keeps the region
    /// mapped until the connection closes.
    pub unsafe fn of(connection: &Connection) -> Option<Self> {
        let is_wal = connection
            .query_row("PRAGMA journal_mode", [], |row| row.get::<_, String>(0))
            .is_ok_and(|mode| mode.eq_ignore_ascii_case("wal"));
        if !is_wal {
            return None;
        }
        let mut file: *mut ffi::sqlite3_file = ptr::null_mut();
        let mut region: *mut c_void = ptr::null_mut();
        // SAFETY: the handle is live while `connection` is borrowed; the file pointer SQLite
        // hands back is the main database's, live as long as the connection. Region 0 is
        // mapped already (the connection has read in WAL mode), so this only returns it.
        unsafe {
            let found = ffi::sqlite3_file_control(
                connection.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_FILE_POINTER,
                (&raw mut file).cast(),
            );
            if found != ffi::SQLITE_OK || file.is_null() || (*file).pMethods.is_null() {
                return None;
            }
            let methods = &*(*file).pMethods;
            let map = methods.xShmMap.filter(|_| methods.iVersion >= 2)?;
            if map(file, 0, REGION_BYTES, 0, &raw mut region) != ffi::SQLITE_OK {
                return None;
            }
        }
        if region.is_null() {
            return None;
        }
        let index = Self {
            region: region.cast(),
        };
        // A layout other than the one described above: never rely on it.
        index.header().map(|_| index)
    }

    /// The header now, or None while a commit is writing it (or it is not one this code knows).
    pub fn header(&self) -> Option<WalIndexHeader> {
        let first = self.copy(0);
        fence(Ordering::SeqCst);
        let second = self.copy(1);
        let is_known = first[0] == INDEX_VERSION && first[IS_INIT_WORD].to_ne_bytes()[0] == 1;
        (first == second && is_known).then_some(first)
    }

    fn copy(&self, which: usize) -> WalIndexHeader {
        // SAFETY: the region is at least 32 KiB, aligned to a page, and mapped while `self`
        // is usable (see `of`); both copies lie in its first 96 bytes. SQLite writes them with
        // plain stores, a race the language cannot see across processes; as in SQLite's own
        // reader, the two copies and the barrier detect a header read mid-write.
        // Other processes write it too, so every load is atomic.
        std::array::from_fn(|word| unsafe {
            AtomicU32::from_ptr(self.region.add(which * HEADER_WORDS + word))
                .load(Ordering::Acquire)
        })
    }
}
