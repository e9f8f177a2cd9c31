//! Giving memory back after a burst of connections.
//!
//! Connections allocate and free in every worker's malloc arena. After a burst (thousands of
//! clients at once, an attack of silent connections) glibc keeps the freed memory: a few
//! allocations that outlive the burst pin the top of each arena, so it is never trimmed, and
//! the process stays at its peak size. When the number of open connections has fallen well
//! below its peak since the last look, the free pages inside every arena are returned to the
//! kernel (`malloc_trim`). That costs a walk of the heap, done at most once per look and only
//! after a burst has ended.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// A burst is this many connections above what is open now.
const BURST: usize = 1024;

/// The peak of open connections since the last look.
#[derive(Debug, Default)]
pub(crate) struct Peak(AtomicUsize);

impl Peak {
    /// Called with the number of open connections after each accept.
    pub(crate) fn saw(&self, open: usize) {
        self.0.fetch_max(open, Relaxed);
    }

    /// Called now and then (from the main thread): trims after a burst has passed.
    pub(crate) fn look(&self, open: usize) {
        let peak = self.0.swap(open, Relaxed);
        if peak >= open + BURST {
            trim();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim takes no pointers; it only returns free pages to the kernel.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
