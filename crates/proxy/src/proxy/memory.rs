//! Giving memory back once connections are gone.
//!
//! Connections allocate and free in the heap of the thread that serves them (`crate::alloc`:
//! mimalloc, one heap per thread). A heap keeps freed memory for reuse and returns it to the
//! kernel only when its thread next calls the allocator, so after a burst (thousands of clients
//! at once, an attack of silent connections) an idle worker would stay at its peak size. Every
//! second, each worker and the main thread return what their heap holds unused ([`tick`]): a
//! walk of the heap's pages, tens of microseconds on a busy worker (measured in
//! docs/benchmark-notes.md, step 9), nothing on an idle one.

use std::time::Duration;

/// How often each thread gives its unused memory back.
pub(crate) const EVERY: Duration = Duration::from_secs(1);

/// Returns the calling thread's unused memory to the kernel (called every [`EVERY`] by each
/// thread that serves connections, on that thread).
pub(crate) fn tick() {
    crate::alloc::give_back(true);
}
