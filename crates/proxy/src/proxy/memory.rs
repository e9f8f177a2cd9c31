//! Giving memory back after a burst of connections.
//!
//! Connections allocate and free in every worker's malloc arena. After a burst (thousands of
//! clients at once, an attack of silent connections) glibc keeps the freed memory: a few
//! allocations that outlive the burst pin the top of each arena, so it is never trimmed, and
//! the process stays at its peak size. When the number of open connections has fallen well
//! below its peak since the last trim, the free pages inside every arena are returned to the
//! kernel (`malloc_trim`), and again at the next five looks unless connections rose again. That
//! costs a walk of the heap, done at most once per look and only after a burst.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// A burst is this many connections above what is open now.
const BURST: usize = 1024;

/// Looks after a burst's trim that trim again while no new burst has come: memory that the
/// last connections of a burst held is sometimes freed after the first trim.
const FOLLOW_UPS: usize = 5;

/// The peak of open connections since the last trim, and the trims still to do after it.
#[derive(Debug, Default)]
pub(crate) struct Peak {
    peak: AtomicUsize,
    /// Open connections at the last trim.
    level: AtomicUsize,
    follow_ups: AtomicUsize,
}

impl Peak {
    /// Called with the number of open connections after each accept.
    pub(crate) fn saw(&self, open: usize) {
        self.peak.fetch_max(open, Relaxed);
    }

    /// Called now and then (from the main thread): trims after a burst has passed, and at the
    /// next few looks while the level stays at or below the last trim's.
    pub(crate) fn look(&self, open: usize) {
        if self.peak.load(Relaxed) >= open + BURST {
            self.follow_ups.store(FOLLOW_UPS, Relaxed);
        } else if self.follow_ups.load(Relaxed) == 0 || open > self.level.load(Relaxed) {
            self.follow_ups.store(0, Relaxed);
            return;
        } else {
            self.follow_ups.fetch_sub(1, Relaxed);
        }
        trim();
        self.level.store(open, Relaxed);
        self.peak.store(open, Relaxed);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim takes no pointers; it only returns free pages to the kernel.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
