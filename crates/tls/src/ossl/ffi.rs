//! The OpenSSL functions this crate needs that `openssl-sys` does not declare (libcrypto 3.0
//! and later export them).

unsafe extern "C" {
    /// The ASYNC job running on this thread, or NULL outside any job.
    pub(crate) fn ASYNC_get_current_job() -> *mut libc::c_void;
}
