//! The ClientHello hook on AWS-LC. AWS-LC runs two callbacks one after the other on every
//! ClientHello, once the extensions are parsed and before it acts on them:
//!
//! - OpenSSL's ClientHello callback (`SSL_CTX_set_client_hello_cb`), which may end the
//!   handshake with an alert of its choosing but treats "retry" as a failure;
//! - BoringSSL's certificate-selection callback (`SSL_CTX_set_select_certificate_cb`), which
//!   may pause the handshake (`SSL_ERROR_PENDING_CERTIFICATE`) but ends it only with
//!   `handshake_failure`.
//!
//! The hook runs in the first; when it asks for a pause, the second answers "retry". A paused
//! handshake runs both again when it is stepped again, so the hook runs again, as on OpenSSL.

use crate::hello::Next;
use foreign_types::ForeignTypeRef;
use libc::{c_int, c_void};
use openssl::ex_data::Index;
use openssl::ssl::{Ssl, SslAlert, SslContext, SslContextBuilder, SslRef};
use openssl_sys::{SSL, SSL_CLIENT_HELLO, ssl_select_cert_result_t};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

/// The hook as the callbacks call it (already guarded against panics).
pub(crate) type Hook = Box<dyn Fn(&mut SslRef) -> Result<Next, SslAlert> + Send + Sync>;

struct Installed(Hook);

fn hook_index() -> Option<Index<SslContext, Arc<Installed>>> {
    static I: OnceLock<Option<Index<SslContext, Arc<Installed>>>> = OnceLock::new();
    *I.get_or_init(|| SslContext::new_ex_index().ok())
}

/// Set on a connection whose hook asked for a pause, until the selection callback answers.
struct PauseAsked(bool);

fn pause_index() -> Option<Index<Ssl, PauseAsked>> {
    static I: OnceLock<Option<Index<Ssl, PauseAsked>>> = OnceLock::new();
    *I.get_or_init(|| Ssl::new_ex_index().ok())
}

/// Runs `hook` at every ClientHello on connections of `ctx` (one hook per context).
pub(crate) fn install(ctx: &mut SslContextBuilder, hook: Hook) {
    let installed = Arc::new(Installed(hook));
    let arg = Arc::as_ptr(&installed) as *mut c_void;
    if let Some(i) = hook_index() {
        ctx.set_ex_data(i, installed);
    } else {
        // No slot for it: keep the hook alive for the process rather than dangle.
        std::mem::forget(installed);
    }
    // SAFETY: the callbacks are plain functions that never unwind; `arg` points into the
    // Installed the context owns (or that was leaked), so it lives as long as the context.
    unsafe {
        openssl_sys::SSL_CTX_set_client_hello_cb(ctx.as_ptr(), Some(client_hello_cb), arg);
        openssl_sys::SSL_CTX_set_select_certificate_cb(ctx.as_ptr(), Some(select_cb));
    }
}

unsafe extern "C" fn client_hello_cb(ssl: *mut SSL, alert: *mut c_int, arg: *mut c_void) -> c_int {
    let answer = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: AWS-LC passes the live connection; `arg` is the Installed of `install`.
        let (ssl, hook) = unsafe { (SslRef::from_ptr_mut(ssl), &*(arg as *const Installed)) };
        super::key_method::keep_async_mode(ssl);
        let answer = (hook.0)(ssl);
        if let Ok(Next::Continue) = answer {
            super::chains::settle(ssl);
        }
        if let (Ok(Next::Retry), Some(i)) = (answer, pause_index()) {
            ssl.set_ex_data(i, PauseAsked(true));
        }
        answer
    }));
    match answer {
        Ok(Ok(_)) => openssl_sys::SSL_CLIENT_HELLO_SUCCESS,
        Ok(Err(a)) => {
            // SAFETY: AWS-LC passes a live out-pointer for the alert.
            unsafe { *alert = raw_alert(a) };
            openssl_sys::SSL_CLIENT_HELLO_ERROR
        }
        Err(_) => {
            // SAFETY: as above.
            unsafe { *alert = openssl_sys::SSL_AD_INTERNAL_ERROR };
            openssl_sys::SSL_CLIENT_HELLO_ERROR
        }
    }
}

unsafe extern "C" fn select_cb(hello: *const SSL_CLIENT_HELLO) -> ssl_select_cert_result_t {
    // SAFETY: AWS-LC passes the ClientHello of a live connection for the call.
    let ssl = unsafe { SslRef::from_ptr_mut((*hello).ssl) };
    let asked = pause_index()
        .and_then(|i| ssl.ex_data_mut(i))
        .is_some_and(|p| std::mem::take(&mut p.0));
    if asked {
        openssl_sys::ssl_select_cert_result_t_ssl_select_cert_retry
    } else {
        openssl_sys::ssl_select_cert_result_t_ssl_select_cert_success
    }
}

/// The alert's number (rust-openssl exposes it offset by `SSL_AD_REASON_OFFSET`).
fn raw_alert(a: SslAlert) -> c_int {
    a.reason_code() - openssl_sys::SSL_AD_REASON_OFFSET
}
