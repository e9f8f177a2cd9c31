//! The OpenSSL functions this crate needs that `openssl-sys` does not declare (libcrypto 3.0
//! and later export them; `ASYNC_set_mem_functions` from 3.2).

use std::ffi::{c_char, c_int, c_void};

/// OpenSSL's malloc hook (`CRYPTO_malloc_fn`): size, file, line.
pub type MallocFn = unsafe extern "C" fn(usize, *const c_char, c_int) -> *mut c_void;
/// OpenSSL's realloc hook (`CRYPTO_realloc_fn`).
pub type ReallocFn = unsafe extern "C" fn(*mut c_void, usize, *const c_char, c_int) -> *mut c_void;
/// OpenSSL's free hook (`CRYPTO_free_fn`).
pub type FreeFn = unsafe extern "C" fn(*mut c_void, *const c_char, c_int);

unsafe extern "C" {
    /// The ASYNC job running on this thread, or NULL outside any job.
    pub(crate) fn ASYNC_get_current_job() -> *mut c_void;
    /// OpenSSL's allocator hooks (crypto/mem.c); 0 once OpenSSL has allocated.
    pub(crate) fn CRYPTO_set_mem_functions(
        m: Option<MallocFn>,
        r: Option<ReallocFn>,
        f: Option<FreeFn>,
    ) -> c_int;
    /// The job stack allocator (OpenSSL 3.2+); 0 once a job exists.
    #[cfg(ossl320)]
    pub(crate) fn ASYNC_set_mem_functions(
        alloc: Option<unsafe extern "C" fn(*mut usize) -> *mut c_void>,
        free: Option<unsafe extern "C" fn(*mut c_void)>,
    ) -> c_int;
}
