//! The ticket-key hook on AWS-LC: `SSL_CTX_set_tlsext_ticket_key_cb` (AES-CBC through
//! `EVP_CIPHER_CTX`, HMAC-SHA256 through `HMAC_CTX`), the RFC 5077 layout OpenSSL uses.
//!
//! AWS-LC checks the MAC after the callback and has no callback for the outcome: a ticket
//! under a known key is counted `Resumed` when its key is found, and one that then fails the
//! MAC check (a forged or damaged ticket) is not counted as `NotDecrypted` (a full handshake
//! follows, as on OpenSSL). AWS-LC asks the context the connection started on for this
//! callback, which then uses the keys of the context the connection has now.

use crate::TlsError;
use crate::refusal::Reason;
use crate::tickets::{SealingKey, TicketEvent, TicketKeyLookup};
use foreign_types::ForeignTypeRef;
use libc::{c_int, c_uchar};
use openssl::ex_data::Index;
use openssl::ssl::{SslAlert, SslContext, SslContextBuilder, SslOptions, SslRef};
use openssl_sys::{EVP_CIPHER_CTX, HMAC_CTX, SSL};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

struct State {
    keys: Arc<dyn TicketKeyLookup>,
}

fn state_index() -> Result<Index<SslContext, Arc<State>>, TlsError> {
    static INDEX: OnceLock<Result<Index<SslContext, Arc<State>>, openssl::error::ErrorStack>> =
        OnceLock::new();
    Ok(INDEX.get_or_init(SslContext::new_ex_index).clone()?)
}

/// See [`crate::tickets::configure`].
pub fn configure(
    ctx: &mut SslContextBuilder,
    tls13_tickets: Option<usize>,
) -> Result<(), TlsError> {
    let n = match tls13_tickets {
        None => {
            ctx.set_options(SslOptions::NO_TICKET);
            0
        }
        Some(n) => {
            ctx.clear_options(SslOptions::NO_TICKET);
            n
        }
    };
    // SAFETY: sets a count on the live context under construction.
    if unsafe { openssl_sys::SSL_CTX_set_num_tickets(ctx.as_ptr(), n) } != 1 {
        return Err(openssl::error::ErrorStack::get().into());
    }
    Ok(())
}

/// See [`crate::tickets::disable_for`].
pub fn disable_for(ssl: &mut SslRef) -> Result<(), TlsError> {
    // SAFETY: SSL_set_options on a live SSL only sets option bits.
    unsafe {
        openssl_sys::SSL_set_options(ssl.as_ptr(), SslOptions::NO_TICKET.bits() as _);
    }
    Ok(())
}

/// See [`crate::tickets::install`].
pub fn install(
    ctx: &mut SslContextBuilder,
    keys: Arc<dyn TicketKeyLookup>,
) -> Result<(), TlsError> {
    ctx.set_ex_data(state_index()?, Arc::new(State { keys }));
    // SAFETY: a plain function that never unwinds, set on the live context.
    if unsafe { openssl_sys::SSL_CTX_set_tlsext_ticket_key_cb(ctx.as_ptr(), Some(key_cb)) } != 1 {
        return Err(openssl::error::ErrorStack::get().into());
    }
    Ok(())
}

/// Sets `key` on the cipher (to encrypt or decrypt with `iv`) and the MAC contexts.
///
/// # Safety
/// `cctx` and `hctx` are live contexts; `iv` points at 16 bytes.
unsafe fn key_contexts(
    key: &dyn SealingKey,
    cctx: *mut EVP_CIPHER_CTX,
    hctx: *mut HMAC_CTX,
    iv: *const c_uchar,
    encrypt: bool,
) -> bool {
    // SAFETY: the caller's contract; AWS-LC copies the key bytes.
    unsafe {
        let cipher = match key.aes_key().len() {
            16 => openssl_sys::EVP_aes_128_cbc(),
            32 => openssl_sys::EVP_aes_256_cbc(),
            _ => return false,
        };
        let (aes, engine) = (key.aes_key().as_ptr(), std::ptr::null_mut());
        let cipher_ok = if encrypt {
            openssl_sys::EVP_EncryptInit_ex(cctx, cipher, engine, aes, iv) == 1
        } else {
            openssl_sys::EVP_DecryptInit_ex(cctx, cipher, engine, aes, iv) == 1
        };
        let secret = key.hmac_secret();
        cipher_ok
            && openssl_sys::HMAC_Init_ex(
                hctx,
                secret.as_ptr().cast(),
                secret.len(),
                openssl_sys::EVP_sha256(),
                std::ptr::null_mut(),
            ) == 1
    }
}

/// AWS-LC's ticket key callback: 1 = use, 2 = use and renew (decrypt only), 0 = no ticket /
/// full handshake, negative = error.
unsafe extern "C" fn key_cb(
    ssl: *mut SSL,
    key_name: *mut u8,
    iv: *mut u8,
    cctx: *mut EVP_CIPHER_CTX,
    hctx: *mut HMAC_CTX,
    enc: c_int,
) -> c_int {
    // SAFETY: AWS-LC passes a live SSL, 16-byte key_name and iv buffers and live contexts.
    catch_unwind(AssertUnwindSafe(|| unsafe {
        key_cb_inner(ssl, key_name, iv, cctx, hctx, enc)
    }))
    .unwrap_or(-1)
}

/// # Safety
/// As for `key_cb`.
unsafe fn key_cb_inner(
    ssl: *mut SSL,
    key_name: *mut u8,
    iv: *mut u8,
    cctx: *mut EVP_CIPHER_CTX,
    hctx: *mut HMAC_CTX,
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
    if unsafe { openssl_sys::SSL_get_options(ssl.as_ptr()) } & SslOptions::NO_TICKET.bits() != 0 {
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
        keys.count(TicketEvent::Resumed);
        if current {
            1
        } else {
            keys.count(TicketEvent::Renewed);
            2
        }
    }
}

/// Ends the handshake from the ticket callback: the reason is recorded and counted.
fn fail(ssl: &mut SslRef, keys: Option<&dyn TicketKeyLookup>, why: &str) -> c_int {
    if let Some(keys) = keys {
        keys.count(TicketEvent::Failed);
    }
    crate::refuse(ssl, SslAlert::INTERNAL_ERROR, Reason::TicketKeys, why);
    -1
}
