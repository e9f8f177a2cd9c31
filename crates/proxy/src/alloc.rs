//! The allocator: mimalloc, for Rust's allocations and OpenSSL's alike.
//!
//! A TLS handshake is allocation-heavy: OpenSSL makes about 220 allocations for a full TLS 1.3
//! handshake on the server (counted with a uprobe on `malloc`, the same in nginx). With glibc's
//! allocator `malloc` and `free` took ≈ 8% of the proxy's CPU over an SNI spread; with
//! mimalloc for both the proxy did ≈ 9% more handshakes per CPU-second (docs/benchmark-notes.md,
//! step 9). OpenSSL is pointed at it with `CRYPTO_set_mem_functions`, which must run before
//! OpenSSL allocates anything: [`route_openssl`] is the first thing `main` does.
//!
//! Without the `mimalloc` feature (on by default) both use the C library's malloc, and
//! [`give_back`] trims its heap (`malloc_trim`).
//!
//! Either way OpenSSL's ASYNC job stacks are guarded (`edgetls_tls::job_stack`): 256 KiB with
//! a `PROT_NONE` page below instead of 32 KiB from the heap, so an overflow on a job faults
//! there instead of overwriting the allocator's neighbouring blocks.

#[cfg(not(feature = "mimalloc"))]
pub(crate) use with_libc::{give_back, route_openssl};
#[cfg(feature = "mimalloc")]
pub(crate) use with_mimalloc::{give_back, route_openssl};

#[cfg(not(feature = "mimalloc"))]
mod with_libc {
    /// OpenSSL keeps the C library's malloc, with guarded job stacks.
    pub(crate) fn route_openssl() -> bool {
        edgetls_tls::job_stack::install_with_libc()
    }

    /// Returns the heap's free pages to the kernel (all arenas: `force` is for mimalloc).
    pub(crate) fn give_back(_force: bool) {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim takes no pointers; it only returns free pages to the kernel.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

#[cfg(feature = "mimalloc")]
mod with_mimalloc {
    use libmimalloc_sys::{mi_collect, mi_free, mi_malloc, mi_realloc};
    use std::ffi::{c_char, c_int, c_void};

    #[global_allocator]
    static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

    unsafe extern "C" fn openssl_malloc(
        n: usize,
        file: *const c_char,
        _line: c_int,
    ) -> *mut c_void {
        // SAFETY: OpenSSL passes null or its __FILE__.
        if let Some(stack) = unsafe { edgetls_tls::job_stack::malloc_hook(n, file) } {
            return stack; // an ASYNC job's stack (OpenSSL 3.0/3.1): guarded
        }
        // SAFETY: mi_malloc takes any size and returns null or a block of at least `n` bytes.
        unsafe { mi_malloc(n) }
    }

    unsafe extern "C" fn openssl_realloc(
        p: *mut c_void,
        n: usize,
        _file: *const c_char,
        _line: c_int,
    ) -> *mut c_void {
        // SAFETY: OpenSSL passes null or a block it got from openssl_malloc/openssl_realloc.
        unsafe { mi_realloc(p, n) }
    }

    unsafe extern "C" fn openssl_free(p: *mut c_void, file: *const c_char, _line: c_int) {
        // SAFETY: OpenSSL passes null or its __FILE__.
        if unsafe { edgetls_tls::job_stack::free_hook(p, file) } {
            return; // a guarded job stack, unmapped
        }
        // SAFETY: as for realloc; mi_free accepts null.
        unsafe { mi_free(p) }
    }

    /// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (include/mimalloc.h; the crate
    /// names only the older options).
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    /// How long freed pages wait before they go back to the kernel.
    const PURGE_DELAY_MS: std::ffi::c_long = 100;
    /// `mi_option_allow_thp` in the same enum.
    const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

    /// Makes OpenSSL allocate with mimalloc, its job stacks guarded. Returns false when OpenSSL had
    /// already allocated (it then keeps the C library's allocator, which is correct, only slower).
    pub(crate) fn route_openssl() -> bool {
        // Freed pages go back to the kernel 100 ms after they are freed (mimalloc's default is
        // 1 s), so a proxy that went idle after a burst shrinks by the next per-second
        // collection. 0 (at once) cost ≈ 4-10% of handshakes per CPU-second over a 10k-name
        // spread: pages a busy worker frees and takes again within milliseconds were given back
        // and faulted in again each time (docs/benchmark-notes.md, step 9).
        // SAFETY: sets an integer option; called first in main, before any other thread.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
        no_huge_pages();
        // SAFETY: a consistent allocator: free and realloc take what malloc and realloc return
        // (guarded stacks are recognised by free and never reallocated by OpenSSL).
        let routed = unsafe {
            edgetls_tls::job_stack::set_allocator(openssl_malloc, openssl_realloc, openssl_free)
        };
        edgetls_tls::job_stack::install(routed);
        routed
    }

    /// No transparent huge pages for this process. With them (the kernel's `madvise` mode and
    /// mimalloc's default) the heap grew in 2 MiB pages: the proxy idled at 36 MiB resident
    /// instead of 21 MiB on AWS-LC, and after 10,000 silent connections stayed 2–4 MiB above
    /// its size before them, as a huge page with one block still in use cannot be given back
    /// in part. mimalloc reads its option when it starts (before `main`), so the kernel is told
    /// directly as well (`PR_SET_THP_DISABLE`: no huge page is faulted in from now on).
    fn no_huge_pages() {
        // SAFETY: sets an integer option; called first in main, before any other thread.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0) };
        #[cfg(target_os = "linux")]
        // SAFETY: prctl with integer arguments only; it changes a flag of this process.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }

    /// Returns the calling thread's unused memory to the kernel (each thread has its own heap: the
    /// workers call this on their own threads). Without `force`, what has been unused for a while
    /// (mimalloc's purge delay); with it, everything, at the cost of a walk of the whole heap.
    pub(crate) fn give_back(force: bool) {
        // SAFETY: takes no pointers; frees what the calling thread's heap holds unused.
        unsafe { mi_collect(force) }
    }
}
