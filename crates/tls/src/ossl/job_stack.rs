//! Guarded stacks for OpenSSL's ASYNC jobs, a second line of defence behind "nothing heavy on a
//! job" ([`crate::retry`]).
//!
//! OpenSSL runs each job on a stack of its own: 32 KiB from `OPENSSL_malloc`, no guard page.
//! Under an allocator such as mimalloc an overflow writes into neighbouring heap blocks instead
//! of faulting. Here every job stack is a mapping of its own: [`STACK_BYTES`] usable, with a
//! `PROT_NONE` page below, so an overflow stops the process with SIGSEGV where it happens.
//!
//! - OpenSSL 3.2 and later: [`install`] hands OpenSSL a stack allocator
//!   (`ASYNC_set_mem_functions`), which also sets the size.
//! - OpenSSL 3.0 and 3.1: the stack is `OPENSSL_malloc(32768)` in `crypto/async/arch/async_posix.c`;
//!   a program's allocator hooks (`CRYPTO_set_mem_functions`) pass every allocation through
//!   [`malloc_hook`] / [`free_hook`], which recognise that call site and give it a guarded
//!   mapping whose top 32 KiB is what OpenSSL asked for (the stack grows down, into the rest of
//!   the mapping). [`install_with_libc`] sets such hooks over the C library's allocator.
//!
//! AWS-LC has no ASYNC jobs: there [`install`] and [`install_with_libc`] guard nothing and
//! return false.
//!
//! [`deepest_use`] reports the most any live job stack has used (pages are zero when mapped;
//! the lowest non-zero word marks the deepest frame).

pub use super::ffi::{FreeFn, MallocFn, ReallocFn};
use std::ffi::{c_char, c_int, c_void};
use std::sync::Mutex;
use std::sync::atomic::{
    AtomicBool, AtomicU16, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

/// Usable bytes of a guarded job stack (OpenSSL's own is 32 KiB).
pub const STACK_BYTES: usize = 256 * 1024;
/// What OpenSSL 3.0/3.1 ask `OPENSSL_malloc` for.
const OPENSSL_STACK: usize = 32 * 1024;

/// Live guarded stacks: (mapping base, mapping length). Held while a stack is scanned or
/// unmapped, so neither races the other.
static LIVE: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// OpenSSL 3.0/3.1: how many stacks handed out live at each address bucket (the pointer's 4 KiB
/// page number, modulo 256), so that a free only takes the lock when a stack may live there:
/// heap blocks are often page-aligned (mimalloc's larger size classes), stacks are few.
static HANDED_OUT: [AtomicU16; 256] = [const { AtomicU16::new(0) }; 256];

fn bucket(p: usize) -> &'static AtomicU16 {
    &HANDED_OUT[(p >> 12) & 255]
}

fn page() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf takes no pointers.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(p).unwrap_or(4096).max(4096)
    })
}

fn live() -> std::sync::MutexGuard<'static, Vec<(usize, usize)>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Maps a guard page and [`STACK_BYTES`] above it; the mapping's base, or None.
fn map() -> Option<usize> {
    let len = page() + STACK_BYTES;
    // SAFETY: an anonymous private mapping; no pointers are passed in.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: the first page of the mapping just made.
    if unsafe { libc::mprotect(base, page(), libc::PROT_NONE) } != 0 {
        // SAFETY: the mapping just made, of `len` bytes, used by nobody.
        unsafe { libc::munmap(base, len) };
        return None;
    }
    live().push((base as usize, len));
    Some(base as usize)
}

/// Unmaps the guarded stack at `base`, if it is one of ours.
fn unmap(base: usize) -> bool {
    let mut live = live();
    let Some(i) = live.iter().position(|&(b, _)| b == base) else {
        return false;
    };
    let (_, len) = live.swap_remove(i);
    // SAFETY: a mapping made by `map`, no longer used by OpenSSL (it is freeing it).
    unsafe { libc::munmap(base as *mut c_void, len) };
    true
}

/// OpenSSL 3.2+: a job stack (`ASYNC_stack_alloc_fn`): the usable bottom, size in `num`.
#[cfg(ossl320)]
unsafe extern "C" fn stack_alloc(num: *mut usize) -> *mut c_void {
    match map() {
        Some(base) => {
            // SAFETY: OpenSSL passes a valid pointer to the size it will use.
            unsafe { *num = STACK_BYTES };
            (base + page()) as *mut c_void
        }
        None => std::ptr::null_mut(),
    }
}

/// OpenSSL 3.2+: frees a stack from [`stack_alloc`] (`ASYNC_stack_free_fn`).
#[cfg(ossl320)]
unsafe extern "C" fn stack_free(addr: *mut c_void) {
    unmap(addr as usize - page());
}

/// Whether an allocation is OpenSSL 3.0/3.1's job stack.
///
/// # Safety
/// `file` is null or a NUL-terminated string (OpenSSL's `__FILE__`).
unsafe fn is_job_stack(n: usize, file: *const c_char) -> bool {
    if cfg!(any(ossl320, awslc)) || n != OPENSSL_STACK || file.is_null() {
        return false;
    }
    // SAFETY: OpenSSL passes its __FILE__, a NUL-terminated static string.
    let file = unsafe { std::ffi::CStr::from_ptr(file) };
    file.to_bytes().ends_with(b"async_posix.c")
}

/// For a program's `CRYPTO_set_mem_functions` malloc: a guarded stack when OpenSSL 3.0/3.1
/// allocates a job stack, else None (allocate as usual).
///
/// # Safety
/// `file` is what OpenSSL passed the hook: null or a NUL-terminated string.
#[inline]
pub unsafe fn malloc_hook(n: usize, file: *const c_char) -> Option<*mut c_void> {
    // Inlined into the program's hook: one comparison for every other allocation.
    if cfg!(any(ossl320, awslc)) || n != OPENSSL_STACK {
        return None;
    }
    // SAFETY: the caller's contract.
    unsafe { stack_for(n, file) }
}

/// A guarded stack if this 32 KiB allocation is `async_posix.c`'s.
///
/// # Safety
/// As for [`malloc_hook`].
#[cold]
#[inline(never)]
unsafe fn stack_for(n: usize, file: *const c_char) -> Option<*mut c_void> {
    // SAFETY: the caller's contract.
    if !unsafe { is_job_stack(n, file) } {
        return None;
    }
    // The top OPENSSL_STACK bytes of the mapping: OpenSSL's stack starts at its end and grows
    // down through the rest to the guard page.
    let p = map()? + page() + STACK_BYTES - OPENSSL_STACK;
    bucket(p).fetch_add(1, Release);
    Some(p as *mut c_void)
}

/// For a program's `CRYPTO_set_mem_functions` free: true when `p` was a guarded stack (now
/// unmapped), false when it is an ordinary block to free as usual. Cheap for ordinary blocks
/// (it runs on every free): a stack handed out by [`malloc_hook`] is page-aligned, which heap
/// blocks almost never are; only page-aligned blocks are looked up.
///
/// # Safety
/// `p` is null or a block OpenSSL allocated through the program's hooks.
#[inline]
pub unsafe fn free_hook(p: *mut c_void, _file: *const c_char) -> bool {
    // Inlined into the program's hook: a mask test for every other free (every page size is a
    // multiple of 4096, so a block that is not 4096-aligned is not page-aligned either).
    if cfg!(any(ossl320, awslc)) || p.is_null() || (p as usize) & 4095 != 0 {
        return false;
    }
    free_page_aligned(p as usize)
}

/// Unmaps the guarded stack at `p`, if it is one.
#[inline]
fn free_page_aligned(p: usize) -> bool {
    if bucket(p).load(Acquire) == 0 {
        return false;
    }
    unmap_stack(p)
}

/// Unmaps the stack handed out as `p`, if it is one.
#[cold]
#[inline(never)]
fn unmap_stack(p: usize) -> bool {
    if p % page() != 0 || !unmap(p.wrapping_sub(page() + STACK_BYTES - OPENSSL_STACK)) {
        return false;
    }
    bucket(p).fetch_sub(1, Release);
    true
}

/// Makes job stacks guarded: on OpenSSL 3.2+ now (before the first job); on 3.0/3.1 it only
/// records that the program's allocator hooks call [`malloc_hook`] / [`free_hook`] (see
/// [`install_with_libc`]). Returns whether job stacks are guarded.
pub fn install(hooks_in_place: bool) -> bool {
    #[cfg(ossl320)]
    {
        let _ = hooks_in_place;
        // SAFETY: two functions with the signatures OpenSSL declares; OpenSSL takes them only
        // before it has made a job.
        let ok =
            unsafe { super::ffi::ASYNC_set_mem_functions(Some(stack_alloc), Some(stack_free)) };
        INSTALLED.store(ok == 1, Relaxed);
    }
    #[cfg(all(not(ossl320), not(awslc)))]
    INSTALLED.store(hooks_in_place, Relaxed);
    #[cfg(awslc)]
    let _ = hooks_in_place;
    INSTALLED.load(Relaxed)
}

/// Whether job stacks are guarded in this process.
pub fn installed() -> bool {
    INSTALLED.load(Relaxed)
}

unsafe extern "C" fn libc_malloc(n: usize, file: *const c_char, _line: c_int) -> *mut c_void {
    // SAFETY: OpenSSL passes null or its __FILE__.
    match unsafe { malloc_hook(n, file) } {
        Some(p) => p,
        // SAFETY: malloc takes any size.
        None => unsafe { libc::malloc(n) },
    }
}

unsafe extern "C" fn libc_realloc(
    p: *mut c_void,
    n: usize,
    _file: *const c_char,
    _line: c_int,
) -> *mut c_void {
    // SAFETY: OpenSSL reallocates only ordinary blocks (never a job stack).
    unsafe { libc::realloc(p, n) }
}

unsafe extern "C" fn libc_free(p: *mut c_void, file: *const c_char, _line: c_int) {
    // SAFETY: OpenSSL passes null or its __FILE__.
    if !unsafe { free_hook(p, file) } {
        // SAFETY: an ordinary block from libc_malloc/libc_realloc, or null.
        unsafe { libc::free(p) }
    }
}

/// Guarded job stacks over the C library's allocator: on OpenSSL 3.0/3.1 by setting
/// `CRYPTO_set_mem_functions` (which OpenSSL accepts only before its first allocation: call
/// this first in `main`), on 3.2+ through [`install`]. Returns whether job stacks are guarded.
pub fn install_with_libc() -> bool {
    if cfg!(ossl320) || cfg!(awslc) {
        return install(false);
    }
    // SAFETY: three functions with the signatures OpenSSL declares; it refuses them (returns 0)
    // once it has allocated, so no block is ever freed by the wrong function.
    let ok = unsafe { set_allocator(libc_malloc, libc_realloc, libc_free) };
    install(ok)
}

/// Points OpenSSL's allocations at `m`, `r` and `f` (`CRYPTO_set_mem_functions`). Returns false
/// when OpenSSL has already allocated (it then keeps its allocator).
///
/// # Safety
/// The three must be a consistent allocator: `f` and `r` accept every block `m` and `r` return.
pub unsafe fn set_allocator(m: MallocFn, r: ReallocFn, f: FreeFn) -> bool {
    // SAFETY: the caller's contract; OpenSSL refuses the change once it has allocated, so no
    // block is ever freed by the wrong allocator.
    unsafe { super::ffi::CRYPTO_set_mem_functions(Some(m), Some(r), Some(f)) == 1 }
}

/// The guard pages of the live job stacks: (first byte, one past the last).
pub fn guard_pages() -> Vec<(usize, usize)> {
    let page = page();
    live()
        .iter()
        .map(|&(base, _)| (base, base + page))
        .collect()
}

/// The most any live guarded job stack has used so far, bytes (None: no guarded stack).
pub fn deepest_use() -> Option<usize> {
    let live = live();
    let page = page();
    live.iter()
        .map(|&(base, len)| {
            let words = (len - page) / 8;
            let bottom = (base + page) as *const u64;
            // SAFETY: the usable part of a live mapping of ours (LIVE is held, so it cannot be
            // unmapped meanwhile); volatile, as a job may be writing to it.
            let untouched = (0..words)
                .take_while(|&i| unsafe { std::ptr::read_volatile(bottom.add(i)) } == 0)
                .count();
            (words - untouched) * 8
        })
        .max()
}
