//! Which databases the current thread holds a [`Snapshot`](super::Snapshot) of.
//!
//! A snapshot holds the state's read lock. A commit (or checkpoint, erasure, key rotation,
//! sync, verify) on the same thread would wait for that lock, or for a writer that waits for
//! it, forever; and parking_lot's fair lock makes a second read on the same thread wait
//! behind a writer queued between the two. So each thread counts its snapshots per database:
//! while it holds any, its reads take the lock recursively (also another database's: two
//! threads each holding a snapshot of one database and reading the other would otherwise
//! wait for each other's writers), and those operations on a database it holds a snapshot of
//! return [`Error::SnapshotHeld`] instead of hanging. A snapshot cannot move to another
//! thread (it is not `Send`, whatever parking_lot's features), so it is released on the
//! thread that counted it. This guards one thread only: a snapshot holder waiting for another
//! thread that commits still waits forever.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLockReadGuard;

use super::state::State;
use super::Inner;
use crate::error::{Error, Result};

thread_local! {
    /// One entry (the database's [`Inner::instance`]) per snapshot this thread holds.
    static HELD: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// A number no other `Inner` of this process has had.
pub(super) fn new_instance() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Whether this thread holds a snapshot of `inner`'s database (`false` during thread
/// teardown, when nothing is counted any more).
fn held(inner: &Inner) -> bool {
    HELD.try_with(|h| h.borrow().contains(&inner.instance)).unwrap_or(false)
}

/// Whether this thread holds a snapshot of any database.
fn held_any() -> bool {
    HELD.try_with(|h| !h.borrow().is_empty()).unwrap_or(false)
}

/// Counts a snapshot of `inner` taken by this thread.
pub(super) fn enter(inner: &Inner) {
    let _ = HELD.try_with(|h| h.borrow_mut().push(inner.instance));
}

/// Uncounts one snapshot of `inner` released by this thread.
pub(super) fn leave(inner: &Inner) {
    let _ = HELD.try_with(|h| {
        let mut h = h.borrow_mut();
        if let Some(i) = h.iter().rposition(|&k| k == inner.instance) {
            h.swap_remove(i);
        }
    });
}

impl Inner {
    /// The state's read lock, taken recursively when this thread holds a snapshot (a plain
    /// read would queue behind a waiting writer, which may wait for that snapshot).
    pub(crate) fn read_state(&self) -> RwLockReadGuard<'_, State> {
        if held_any() {
            self.state.read_recursive()
        } else {
            self.state.read()
        }
    }

    /// [`Error::ReadOnly`] for a database opened read-only; else as
    /// [`Self::refuse_while_reading`]: what every write calls first.
    pub(crate) fn refuse_write(&self, operation: &'static str) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly { path: self.dir.clone(), op: operation });
        }
        self.refuse_while_reading(operation)
    }

    /// [`Error::SnapshotHeld`] when this thread holds a snapshot of the database, for an
    /// `operation` that would wait for it.
    pub(crate) fn refuse_while_reading(&self, operation: &'static str) -> Result<()> {
        if held(self) {
            Err(Error::SnapshotHeld { operation })
        } else {
            Ok(())
        }
    }
}
