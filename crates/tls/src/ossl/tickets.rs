//! The ticket-key hook on OpenSSL: `SSL_CTX_set_tlsext_ticket_key_evp_cb` (AES-CBC through
//! `EVP_CIPHER_CTX`, HMAC-SHA256 through `EVP_MAC_CTX`) and the session-ticket decryption
//! callback that sees every outcome.

use super::ffi;
use crate::TlsError;
use crate::refusal::Reason;
use crate::tickets::{SealingKey, TicketEvent, TicketKeyLookup};
use foreign_types::ForeignTypeRef;
use libc::{c_int, c_uchar, c_void};
use openssl::cipher::Cipher;
use openssl::ex_data::Index;
use openssl::ssl::{SslAlert, SslContext, SslContextBuilder, SslOptions, SslRef};
use openssl_sys::{EVP_CIPHER_CTX, EVP_MAC_CTX, SSL, SSL_SESSION};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

/// What the callbacks find on the context.
struct State {
    keys: Arc<dyn TicketKeyLookup>,
}

fn state_index() -> Result<Index<SslContext, Arc<State>>, TlsError> {
    static INDEX: OnceLock<Result<Index<SslContext, Arc<State>>, openssl::error::ErrorStack>> =
        OnceLock::new();
    Ok(INDEX.get_or_init(SslContext::new_ex_index).clone()?)
}

/// Turns tickets on for contexts built from `ctx`, with `tls13_tickets` tickets after each TLS
/// 1.3 handshake, or off (`None`): no ticket extension and no TLS 1.3 tickets at all.
pub fn configure(
    ctx: &mut SslContextBuilder,
    tls13_tickets: Option<usize>,
) -> Result<(), TlsError> {
    match tls13_tickets {
        None => {
            ctx.set_options(SslOptions::NO_TICKET);
            ctx.set_num_tickets(0)?;
        }
        Some(n) => {
            ctx.clear_options(SslOptions::NO_TICKET);
            ctx.set_num_tickets(n)?;
        }
    }
    Ok(())
}

/// Turns tickets off for one connection (no ticket issued, none accepted): from a ClientHello
/// hook, before the library looks at the client's ticket.
pub fn disable_for(ssl: &mut SslRef) -> Result<(), TlsError> {
    // SAFETY: SSL_set_options on a live SSL only sets option bits.
    unsafe {
        ffi::SSL_set_options(ssl.as_ptr(), SslOptions::NO_TICKET.bits());
    }
    ssl.set_num_tickets(0)?;
    Ok(())
}

/// Seals and opens the tickets of contexts built from `ctx` with the keys `keys` finds. If a
/// hook switches connections to other contexts, install on those too: OpenSSL asks the context
/// the connection has at that moment.
pub fn install(
    ctx: &mut SslContextBuilder,
    keys: Arc<dyn TicketKeyLookup>,
) -> Result<(), TlsError> {
    let state = Arc::new(State { keys });
    let arg = Arc::as_ptr(&state) as *mut c_void;
    ctx.set_ex_data(state_index()?, state);
    // SAFETY: the callbacks are plain functions that never unwind; `arg` points into the State
    // the context owns through its ex_data, so it lives as long as the context.
    unsafe {
        if ffi::SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx.as_ptr(), Some(key_cb)) != 1
            || ffi::SSL_CTX_set_session_ticket_cb(ctx.as_ptr(), None, Some(decrypted_cb), arg) != 1
        {
            return Err(openssl::error::ErrorStack::get().into());
        }
    }
    Ok(())
}

/// The prefetched AES-CBC cipher for a key of `aes_len` bytes (an implicit fetch per ticket
/// costs ≈ 1 µs).
fn cipher(aes_len: usize) -> Option<*const openssl_sys::EVP_CIPHER> {
    static CIPHERS: OnceLock<Option<(Cipher, Cipher)>> = OnceLock::new();
    let (aes128, aes256) = CIPHERS
        .get_or_init(|| {
            Some((
                Cipher::fetch(None, "AES-128-CBC", None).ok()?,
                Cipher::fetch(None, "AES-256-CBC", None).ok()?,
            ))
        })
        .as_ref()?;
    let c = match aes_len {
        16 => aes128,
        32 => aes256,
        _ => return None,
    };
    Some(c.as_ptr() as *const _)
}

/// Sets `key` and SHA-256 on a MAC context (OpenSSL's `EVP_MAC_CTX_set_params`).
///
/// # Safety
/// `hctx` must be a live HMAC `EVP_MAC_CTX`.
unsafe fn set_hmac_key(hctx: *mut EVP_MAC_CTX, key: &[u8]) -> bool {
    // SAFETY: the params point at `key` and at a static C string for the duration of the call;
    // OpenSSL copies them and only reads through the pointers.
    unsafe {
        let params = [
            openssl_sys::OSSL_PARAM_construct_octet_string(
                c"key".as_ptr(),
                key.as_ptr() as *mut c_void,
                key.len(),
            ),
            ffi::OSSL_PARAM_construct_utf8_string(
                c"digest".as_ptr(),
                c"SHA256".as_ptr() as *mut libc::c_char,
                0,
            ),
            openssl_sys::OSSL_PARAM_construct_end(),
        ];
        openssl_sys::EVP_MAC_CTX_set_params(hctx, params.as_ptr()) == 1
    }
}

/// Sets `key` on the cipher (to encrypt or decrypt with `iv`) and the MAC contexts.
///
/// # Safety
/// `cctx` and `hctx` are live contexts; `iv` points at 16 bytes.
unsafe fn key_contexts(
    key: &dyn SealingKey,
    cctx: *mut EVP_CIPHER_CTX,
    hctx: *mut EVP_MAC_CTX,
    iv: *const c_uchar,
    encrypt: bool,
) -> bool {
    let Some(cipher) = cipher(key.aes_key().len()) else {
        return false;
    };
    let (aes, engine) = (key.aes_key().as_ptr(), std::ptr::null_mut());
    // SAFETY: the caller's contract; the key bytes outlive the calls (OpenSSL copies them).
    unsafe {
        let cipher_ok = if encrypt {
            openssl_sys::EVP_EncryptInit_ex(cctx, cipher, engine, aes, iv) == 1
        } else {
            openssl_sys::EVP_DecryptInit_ex(cctx, cipher, engine, aes, iv) == 1
        };
        cipher_ok && set_hmac_key(hctx, key.hmac_secret())
    }
}

/// OpenSSL's ticket key callback: 1 = use, 2 = use and renew (decrypt only), 0 = no ticket /
/// full handshake, -1 = error.
unsafe extern "C" fn key_cb(
    ssl: *mut SSL,
    key_name: *mut c_uchar,
    iv: *mut c_uchar,
    cctx: *mut EVP_CIPHER_CTX,
    hctx: *mut EVP_MAC_CTX,
    enc: c_int,
) -> c_int {
    // SAFETY: OpenSSL passes a live SSL, 16-byte key_name and iv buffers and live contexts.
    catch_unwind(AssertUnwindSafe(|| unsafe {
        key_cb_inner(ssl, key_name, iv, cctx, hctx, enc)
    }))
    .unwrap_or(-1)
}

/// # Safety
/// As for `key_cb`.
unsafe fn key_cb_inner(
    ssl: *mut SSL,
    key_name: *mut c_uchar,
    iv: *mut c_uchar,
    cctx: *mut EVP_CIPHER_CTX,
    hctx: *mut EVP_MAC_CTX,
    enc: c_int,
) -> c_int {
    // SAFETY: ssl is live for the callback.
    let ssl = unsafe { SslRef::from_ptr_mut(ssl) };
    let Ok(index) = state_index() else {
        return fail(ssl, None, "no ex_data slot for the ticket keys");
    };
    let Some(state) = ssl.ssl_context().ex_data(index) else {
        return 0;
    };
    // Tickets turned off for this connection by a ClientHello hook.
    // SAFETY: SSL_get_options only reads the live SSL's option bits.
    if unsafe { ffi::SSL_get_options(ssl.as_ptr()) } & SslOptions::NO_TICKET.bits() != 0 {
        return 0;
    }
    let keys = Arc::clone(&state.keys);
    if enc == 1 {
        let key = keys.sealing_key();
        // SAFETY: iv and key_name are 16-byte buffers (RFC 5077 layout); the contexts are live.
        unsafe {
            if openssl_sys::RAND_bytes(iv, 16) != 1 {
                return fail(ssl, Some(&*keys), "no random IV for a ticket");
            }
            std::ptr::copy_nonoverlapping(key.name().as_ptr(), key_name, 16);
            if !key_contexts(&*key, cctx, hctx, iv, true) {
                return fail(
                    ssl,
                    Some(&*keys),
                    "sealing a ticket: cipher or MAC refused the key",
                );
            }
        }
        keys.count(TicketEvent::Issued);
        1
    } else {
        // SAFETY: key_name is 16 bytes.
        let name = unsafe { &*key_name.cast::<[u8; 16]>() };
        let Some((key, current)) = keys.find(name) else {
            keys.count(TicketEvent::UnknownKey);
            return 0;
        };
        // SAFETY: iv is the ticket's 16-byte IV; the contexts are live.
        if !unsafe { key_contexts(&*key, cctx, hctx, iv, false) } {
            return fail(
                ssl,
                Some(&*keys),
                "opening a ticket: cipher or MAC refused the key",
            );
        }
        if current { 1 } else { 2 }
    }
}

/// Ends the handshake from the ticket callback (-1): the reason is recorded on the connection
/// and counted.
fn fail(ssl: &mut SslRef, keys: Option<&dyn TicketKeyLookup>, why: &str) -> c_int {
    if let Some(keys) = keys {
        keys.count(TicketEvent::Failed);
    }
    crate::refuse(ssl, SslAlert::INTERNAL_ERROR, Reason::TicketKeys, why);
    -1
}

/// Sees the outcome of every ticket decryption (after OpenSSL checked the MAC) for the counters,
/// and answers as OpenSSL would by default, except that a TLS 1.3 resumption always gets a
/// fresh ticket.
unsafe extern "C" fn decrypted_cb(
    ssl: *mut SSL,
    _ss: *mut SSL_SESSION,
    _keyname: *const c_uchar,
    _keyname_len: usize,
    status: c_int,
    arg: *mut c_void,
) -> c_int {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as for `decrypted`.
        unsafe { decrypted(ssl, status, arg) }
    }))
    .unwrap_or(ffi::SSL_TICKET_RETURN_ABORT)
}

/// # Safety
/// `ssl` is live; `arg` is the State of the context the connection started on.
unsafe fn decrypted(ssl: *mut SSL, status: c_int, arg: *mut c_void) -> c_int {
    // OpenSSL passes the data of the context the connection started on; a connection switched
    // to a context with keys of its own (a rule's `ticket_key_file`) counts there.
    let Ok(index) = state_index() else {
        return ffi::SSL_TICKET_RETURN_ABORT;
    };
    // SAFETY: ssl is live for the callback; its context outlives it.
    let connection = unsafe { SslRef::from_ptr_mut(ssl) };
    let switched = connection.ssl_context().ex_data(index).map(Arc::as_ptr);
    // SAFETY: `arg` is the State the context owns (see `install`); `switched` is a State owned
    // by the connection's context.
    let state = unsafe { &*switched.unwrap_or(arg as *const State) };
    let keys = &state.keys;
    match status {
        ffi::SSL_TICKET_SUCCESS => {
            keys.count(TicketEvent::Resumed);
            // TLS 1.3 clients use a ticket once (RFC 8446, and OpenSSL's client): send a fresh
            // one with every resumption, or the next connection is a full handshake. (OpenSSL
            // sends one after a resumption only when asked to renew.)
            // SAFETY: ssl is live for the callback.
            if unsafe { openssl_sys::SSL_version(ssl) } == openssl_sys::TLS1_3_VERSION {
                ffi::SSL_TICKET_RETURN_USE_RENEW
            } else {
                ffi::SSL_TICKET_RETURN_USE
            }
        }
        ffi::SSL_TICKET_SUCCESS_RENEW => {
            keys.count(TicketEvent::Resumed);
            keys.count(TicketEvent::Renewed);
            ffi::SSL_TICKET_RETURN_USE_RENEW
        }
        ffi::SSL_TICKET_NO_DECRYPT => {
            keys.count(TicketEvent::NotDecrypted);
            ffi::SSL_TICKET_RETURN_IGNORE_RENEW
        }
        ffi::SSL_TICKET_EMPTY => ffi::SSL_TICKET_RETURN_IGNORE_RENEW,
        _ => ffi::SSL_TICKET_RETURN_ABORT,
    }
}
