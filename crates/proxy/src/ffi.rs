//! The C functions the proxy calls that the `openssl-sys` and `libc` crates do not declare.

use std::ffi::{c_char, c_int, c_void};

type Malloc = unsafe extern "C" fn(usize, *const c_char, c_int) -> *mut c_void;
type Realloc = unsafe extern "C" fn(*mut c_void, usize, *const c_char, c_int) -> *mut c_void;
type Free = unsafe extern "C" fn(*mut c_void, *const c_char, c_int);

unsafe extern "C" {
    /// OpenSSL's allocator hooks (crypto/mem.c); 0 once OpenSSL has allocated.
    pub(crate) fn CRYPTO_set_mem_functions(
        m: Option<Malloc>,
        r: Option<Realloc>,
        f: Option<Free>,
    ) -> c_int;
}
