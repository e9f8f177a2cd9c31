//! The one OpenSSL function this crate needs that `openssl-sys` does not declare (libssl 3.0
//! exports it): reading the ticket a client holds, for checks and tools. The server-side
//! ticket hook is in the seam crate, `edgetls-tls`.

use libc::{c_uchar, size_t};
use openssl_sys::SSL_SESSION;

unsafe extern "C" {
    pub(crate) fn SSL_SESSION_get0_ticket(
        s: *const SSL_SESSION,
        tick: *mut *const c_uchar,
        len: *mut size_t,
    );
}
