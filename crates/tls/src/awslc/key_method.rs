//! The remote-key hook on AWS-LC: BoringSSL's private-key method (`SSL_PRIVATE_KEY_METHOD`).
//!
//! AWS-LC asks the method to sign (`sign`) with the message itself; the method hashes it, builds
//! the [`SignRequest`] and either
//!
//! - waits for the signer on this thread (no driver, or a connection without async mode); or
//! - queues the request for the driver ([`run_queued`](crate::remote_key::run_queued), on the
//!   driver's stack right after the handshake step) and answers "retry": the handshake step
//!   returns `SSL_ERROR_WANT_PRIVATE_KEY_OPERATION` ([`is_paused`]); the answer makes the
//!   connection's [`wait_fd`] readable, and the next step calls `complete`, which hands over
//!   the signature.
//!
//! AWS-LC has no fibres: the method runs on the caller's own stack, and nothing waits.

use crate::TlsError;
use crate::ossl::remote_key::current;
use crate::ossl::remote_key::wait::{
    QUEUED, REMOTE_LIMIT, Slot, Start, Waiting, Waker, blocking, record_failure, stats,
};
use crate::remote_key::{Done, SignRequest, SignScheme};
use edgetls_keyless_proto::HashAlgorithm;
use foreign_types::ForeignTypeRef;
use openssl::ex_data::Index;
use openssl::ssl::{ErrorCode, NameType, Ssl, SslContext, SslContextBuilder, SslRef};
use openssl_sys::{SSL, SSL_PRIVATE_KEY_METHOD, ssl_private_key_result_t};
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

const SUCCESS: ssl_private_key_result_t =
    openssl_sys::ssl_private_key_result_t_ssl_private_key_success;
const RETRY: ssl_private_key_result_t = openssl_sys::ssl_private_key_result_t_ssl_private_key_retry;
const FAILURE: ssl_private_key_result_t =
    openssl_sys::ssl_private_key_result_t_ssl_private_key_failure;

static METHOD: SSL_PRIVATE_KEY_METHOD = SSL_PRIVATE_KEY_METHOD {
    sign: Some(sign),
    decrypt: Some(decrypt),
    complete: Some(complete),
};

/// The method, for `SSL_set_private_key_method`.
pub(crate) fn method() -> *const SSL_PRIVATE_KEY_METHOD {
    &METHOD
}

/// Async mode, on a context or a connection.
struct AsyncMode;

fn ctx_async_index() -> Option<Index<SslContext, AsyncMode>> {
    static I: OnceLock<Option<Index<SslContext, AsyncMode>>> = OnceLock::new();
    *I.get_or_init(|| SslContext::new_ex_index().ok())
}

fn ssl_async_index() -> Option<Index<Ssl, AsyncMode>> {
    static I: OnceLock<Option<Index<Ssl, AsyncMode>>> = OnceLock::new();
    *I.get_or_init(|| Ssl::new_ex_index().ok())
}

/// The connection's remote operation: its wake-up descriptor (kept for the connection's life,
/// so the driver's registration stays valid) and the operation in flight.
#[derive(Default)]
struct Operation {
    waker: Option<Arc<Waker>>,
    pending: Option<Pending>,
}

struct Pending {
    slot: Arc<Slot>,
    started: Instant,
    _waiting: Waiting,
}

fn operation_index() -> Option<Index<Ssl, Operation>> {
    static I: OnceLock<Option<Index<Ssl, Operation>>> = OnceLock::new();
    *I.get_or_init(|| Ssl::new_ex_index().ok())
}

/// See [`crate::remote_key::enable_async`].
pub(crate) fn enable_async(ctx: &mut SslContextBuilder) {
    if let Some(i) = ctx_async_index() {
        ctx.set_ex_data(i, AsyncMode);
    }
}

/// See [`crate::remote_key::enable_async_ssl`].
pub(crate) fn enable_async_ssl(ssl: &mut SslRef) {
    if let Some(i) = ssl_async_index() {
        ssl.set_ex_data(i, AsyncMode);
    }
}

/// Keeps the async mode of the context a connection started on across the context switches
/// its ClientHello hook makes (called before the hook).
pub(crate) fn keep_async_mode(ssl: &mut SslRef) {
    let from_context = ctx_async_index().is_some_and(|i| ssl.ssl_context().ex_data(i).is_some());
    if from_context {
        enable_async_ssl(ssl);
    }
}

fn async_mode(ssl: &SslRef) -> bool {
    ssl_async_index().is_some_and(|i| ssl.ex_data(i).is_some())
        || ctx_async_index().is_some_and(|i| ssl.ssl_context().ex_data(i).is_some())
}

/// See [`crate::remote_key::is_paused`].
pub(crate) fn is_paused(e: &openssl::ssl::Error) -> bool {
    e.code() == ErrorCode::from_raw(openssl_sys::SSL_ERROR_WANT_PRIVATE_KEY_OPERATION)
}

/// See [`crate::remote_key::wait_fd`].
pub(crate) fn wait_fd(ssl: &SslRef) -> Result<RawFd, TlsError> {
    operation_index()
        .and_then(|i| ssl.ex_data(i))
        .and_then(|o| o.waker.as_ref())
        .map(|w| w.fd.as_raw_fd())
        .ok_or_else(|| TlsError::Async("no remote operation on this connection".into()))
}

/// The scheme of TLS signature algorithm `sigalg`, and whether its key is ECDSA.
fn scheme(sigalg: u16) -> Option<(SignScheme, bool)> {
    use HashAlgorithm::*;
    let s = match i32::from(sigalg) {
        openssl_sys::SSL_SIGN_RSA_PKCS1_MD5_SHA1 => SignScheme::RsaPkcs1(Md5Sha1),
        openssl_sys::SSL_SIGN_RSA_PKCS1_SHA1 => SignScheme::RsaPkcs1(Sha1),
        openssl_sys::SSL_SIGN_RSA_PKCS1_SHA256 => SignScheme::RsaPkcs1(Sha256),
        openssl_sys::SSL_SIGN_RSA_PKCS1_SHA384 => SignScheme::RsaPkcs1(Sha384),
        openssl_sys::SSL_SIGN_RSA_PKCS1_SHA512 => SignScheme::RsaPkcs1(Sha512),
        openssl_sys::SSL_SIGN_RSA_PSS_RSAE_SHA256 => SignScheme::RsaPss(Sha256),
        openssl_sys::SSL_SIGN_RSA_PSS_RSAE_SHA384 => SignScheme::RsaPss(Sha384),
        openssl_sys::SSL_SIGN_RSA_PSS_RSAE_SHA512 => SignScheme::RsaPss(Sha512),
        openssl_sys::SSL_SIGN_ECDSA_SHA1 => SignScheme::Ecdsa(Sha1),
        openssl_sys::SSL_SIGN_ECDSA_SECP256R1_SHA256 => SignScheme::Ecdsa(Sha256),
        openssl_sys::SSL_SIGN_ECDSA_SECP384R1_SHA384 => SignScheme::Ecdsa(Sha384),
        openssl_sys::SSL_SIGN_ECDSA_SECP521R1_SHA512 => SignScheme::Ecdsa(Sha512),
        _ => return None,
    };
    Some((s, matches!(s, SignScheme::Ecdsa(_))))
}

/// The digest of `message` the scheme signs.
fn digest(hash: HashAlgorithm, message: &[u8]) -> Result<Vec<u8>, TlsError> {
    use openssl::hash::{MessageDigest, hash as h};
    Ok(match hash {
        HashAlgorithm::Md5Sha1 => {
            let mut d = h(MessageDigest::md5(), message)?.to_vec();
            d.extend_from_slice(&h(MessageDigest::sha1(), message)?);
            d
        }
        HashAlgorithm::Sha1 => h(MessageDigest::sha1(), message)?.to_vec(),
        HashAlgorithm::Sha224 => h(MessageDigest::sha224(), message)?.to_vec(),
        HashAlgorithm::Sha256 => h(MessageDigest::sha256(), message)?.to_vec(),
        HashAlgorithm::Sha384 => h(MessageDigest::sha384(), message)?.to_vec(),
        HashAlgorithm::Sha512 => h(MessageDigest::sha512(), message)?.to_vec(),
    })
}

/// Copies a signature into AWS-LC's buffer.
///
/// # Safety
/// `out` has room for `max_out` bytes; `out_len` is writable.
unsafe fn deliver(
    answer: Result<Vec<u8>, TlsError>,
    out: *mut u8,
    out_len: *mut usize,
    max_out: usize,
) -> ssl_private_key_result_t {
    let sig = match answer {
        Ok(sig) if !sig.is_empty() && sig.len() <= max_out => sig,
        Ok(sig) => {
            record_failure(TlsError::BadAnswer {
                got: sig.len(),
                room: max_out,
            });
            return FAILURE;
        }
        Err(e) => {
            record_failure(e);
            return FAILURE;
        }
    };
    // SAFETY: the caller's contract; the signature fits (checked).
    unsafe {
        std::ptr::copy_nonoverlapping(sig.as_ptr(), out, sig.len());
        *out_len = sig.len();
    }
    SUCCESS
}

/// Ends the handshake the way OpenSSL does when a key fails: an `internal_error` alert (AWS-LC
/// sends none itself when the private-key method fails, and the client would see the
/// connection close).
fn alert_on_failure(ssl: *mut SSL, r: ssl_private_key_result_t) -> ssl_private_key_result_t {
    if r == FAILURE {
        // SAFETY: the live connection of the callback; the alert is written like the
        // library's own before it fails the handshake.
        unsafe { openssl_sys::SSL_send_fatal_alert(ssl, openssl_sys::SSL_AD_INTERNAL_ERROR as u8) };
    }
    r
}

unsafe extern "C" fn sign(
    ssl: *mut SSL,
    out: *mut u8,
    out_len: *mut usize,
    max_out: usize,
    sigalg: u16,
    input: *const u8,
    in_len: usize,
) -> ssl_private_key_result_t {
    let raw = ssl;
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: AWS-LC passes the live connection and `in_len` readable bytes.
        let (ssl, message) = unsafe {
            (
                SslRef::from_ptr_mut(ssl),
                std::slice::from_raw_parts(input, in_len),
            )
        };
        start(ssl, sigalg, message)
    }));
    let r = match r {
        Ok(Ok(Started::Paused)) => RETRY,
        // SAFETY: AWS-LC's buffer and length pointer for this call.
        Ok(Ok(Started::Answered(answer))) => unsafe { deliver(answer, out, out_len, max_out) },
        Ok(Err(e)) => {
            record_failure(e);
            FAILURE
        }
        Err(_) => {
            record_failure(TlsError::Panic);
            FAILURE
        }
    };
    alert_on_failure(raw, r)
}

enum Started {
    /// The request is queued; the handshake pauses.
    Paused,
    /// Signed while waiting on this thread.
    Answered(Result<Vec<u8>, TlsError>),
}

fn start(ssl: &mut SslRef, sigalg: u16, message: &[u8]) -> Result<Started, TlsError> {
    let (scheme, ecdsa) =
        scheme(sigalg).ok_or_else(|| TlsError::UnsupportedScheme(format!("0x{sigalg:04x}")))?;
    let binding = super::chains::remote_for(ssl, ecdsa).ok_or(TlsError::Call("a remote key"))?;
    if binding.rsa == ecdsa {
        return Err(TlsError::UnsupportedScheme(format!(
            "0x{sigalg:04x} with a {} key",
            if binding.rsa { "RSA" } else { "ECDSA" }
        )));
    }
    let hash = scheme.hash().ok_or(TlsError::Call("a digest"))?;
    let mut connection = current();
    connection.sni = ssl.servername(NameType::HOST_NAME).map(str::to_owned);
    let request = SignRequest {
        scheme,
        digest: digest(hash, message)?,
        connection,
    };
    let driven = crate::ossl::remote_key::driven();
    if !(driven && async_mode(ssl)) {
        return Ok(Started::Answered(blocking(&binding.signer, request)));
    }
    let index = operation_index().ok_or(TlsError::Call("an ex_data slot"))?;
    if ssl.ex_data(index).is_none() {
        ssl.set_ex_data(index, Operation::default());
    }
    let op = ssl
        .ex_data_mut(index)
        .ok_or(TlsError::Call("an ex_data slot"))?;
    let waker = match &op.waker {
        Some(w) => Arc::clone(w),
        None => {
            let w = Arc::new(Waker::new().map_err(|e| TlsError::Async(format!("eventfd: {e}")))?);
            stats().live_wakers.fetch_add(1, Relaxed);
            op.waker = Some(Arc::clone(&w));
            w
        }
    };
    stats().paused.fetch_add(1, Relaxed);
    let slot: Arc<Slot> = Arc::new(Mutex::new(None));
    let theirs = Arc::clone(&slot);
    let done: Done = Box::new(move |r| {
        // Publish the answer first, then signal: whoever wakes finds it.
        *theirs.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        waker.wake();
    });
    op.pending = Some(Pending {
        slot,
        started: Instant::now(),
        _waiting: Waiting::start(),
    });
    let start = Start {
        remote: binding.signer,
        request,
        done,
    };
    // Started by the driver on this thread right after the step returns.
    QUEUED.with(|q| q.borrow_mut().push(start));
    Ok(Started::Paused)
}

unsafe extern "C" fn complete(
    ssl: *mut SSL,
    out: *mut u8,
    out_len: *mut usize,
    max_out: usize,
) -> ssl_private_key_result_t {
    let raw = ssl;
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: AWS-LC passes the live connection.
        let ssl = unsafe { SslRef::from_ptr_mut(ssl) };
        let op = operation_index().and_then(|i| ssl.ex_data_mut(i))?;
        let pending = op.pending.as_ref()?;
        let answer = pending
            .slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(w) = &op.waker {
            w.drain();
        }
        match answer {
            Some(a) => {
                op.pending = None;
                Some(Some(a))
            }
            None if pending.started.elapsed() >= REMOTE_LIMIT => {
                op.pending = None;
                Some(Some(Err(TlsError::Timeout(REMOTE_LIMIT))))
            }
            None => Some(None),
        }
    }));
    let r = match r {
        Ok(Some(None)) => RETRY,
        // SAFETY: AWS-LC's buffer and length pointer for this call.
        Ok(Some(Some(answer))) => unsafe { deliver(answer, out, out_len, max_out) },
        Ok(None) => {
            record_failure(TlsError::Call("an operation in flight"));
            FAILURE
        }
        Err(_) => {
            record_failure(TlsError::Panic);
            FAILURE
        }
    };
    alert_on_failure(raw, r)
}

/// Static RSA key exchange would have the remote key decrypt: not offered (the key server
/// protocol signs only), and the suites are removed where remote keys are set
/// ([`restrict_to_ecdhe`](crate::remote_key::restrict_to_ecdhe)).
unsafe extern "C" fn decrypt(
    ssl: *mut SSL,
    _out: *mut u8,
    _out_len: *mut usize,
    _max_out: usize,
    _in: *const u8,
    _in_len: usize,
) -> ssl_private_key_result_t {
    record_failure(TlsError::UnsupportedScheme(
        "RSA decryption (static RSA key exchange) with a remote key".into(),
    ));
    alert_on_failure(ssl, FAILURE)
}
