//! The `edgetls-keyless` ENGINE (feature `engine`, OpenSSL 3.x): RSA and EC key methods whose
//! sign step calls a [`Signer`](crate::remote_key::Signer). The provider (`provider/`) does the same
//! on every OpenSSL from 3.0; this shim stays for comparison and for deployments that cannot
//! load a provider.
//!
//! The methods are copies of OpenSSL's own RSA and EC `EVP_PKEY_METHOD`s with only the sign
//! hook replaced, so padding, hash and salt settings go through OpenSSL's usual controls and the
//! hook reads them back: the request carries the digest, the hash and the padding, which is what
//! the standard keyless sign opcodes need (RSA-PSS goes out as 0x35–0x37, not as raw RSA).

use super::ffi::engine as ffi;
use super::{Binding, wait};
use crate::TlsError;
use crate::remote_key::{HashAlgorithm, SignRequest, SignScheme};
use libc::{c_int, c_long, c_void, size_t};
use openssl_sys::{CRYPTO_EX_DATA, EVP_PKEY, EVP_PKEY_CTX};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

const NID_RSA: c_int = openssl_sys::NID_rsaEncryption;
const NID_EC: c_int = openssl_sys::NID_X9_62_id_ecPublicKey;
static NIDS: [c_int; 2] = [NID_RSA, NID_EC];

/// The engine and its methods, made once per process and never freed (OpenSSL keeps
/// references to them in every key and context that uses them).
pub(crate) struct Engine {
    pub(crate) engine: *mut ffi::ENGINE,
    pub(crate) ex_index: c_int,
}

// SAFETY: the pointers are written once, before the value is shared, and only read after;
// OpenSSL's ENGINE and EVP_PKEY_METHOD objects are safe to use from any thread once set up.
unsafe impl Send for Engine {}
// SAFETY: as above: immutable after construction.
unsafe impl Sync for Engine {}

static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();

/// The engine, set up on first use.
pub(crate) fn get() -> Result<&'static Engine, TlsError> {
    ENGINE
        .get_or_init(|| build().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| TlsError::Provider(format!("the edgetls-keyless ENGINE: {e}")))
}

fn build() -> Result<Engine, TlsError> {
    openssl_sys::init();
    let fail = |what: &str| TlsError::Provider(format!("OpenSSL refused {what}"));
    // SAFETY: plain constructor/registration calls; every pointer is checked before use, and the
    // method copies start from OpenSSL's own built-in methods (static, never freed).
    unsafe {
        let ex_index = openssl_sys::CRYPTO_get_ex_new_index(
            ffi::CRYPTO_EX_INDEX_EVP_PKEY,
            0,
            std::ptr::null_mut(),
            None,
            Some(dup_binding),
            Some(free_binding),
        );
        if ex_index < 0 {
            return Err(fail("an EVP_PKEY ex_data index"));
        }
        let rsa = copy_method(NID_RSA).ok_or_else(|| fail("a copy of the RSA key method"))?;
        let ec = copy_method(NID_EC).ok_or_else(|| fail("a copy of the EC key method"))?;
        let e = ffi::ENGINE_new();
        if e.is_null() {
            return Err(fail("ENGINE_new"));
        }
        let ok = ffi::ENGINE_set_id(e, c"edgetls-keyless".as_ptr()) == 1
            && ffi::ENGINE_set_name(e, c"edgetls keyless: private keys on a key server".as_ptr())
                == 1
            && ffi::ENGINE_set_pkey_meths(e, Some(pkey_meths)) == 1;
        if !ok {
            ffi::ENGINE_free(e);
            return Err(fail("the engine's id, name or methods"));
        }
        ENGINE_METHODS.get_or_init(|| Methods { rsa, ec });
        // Listed, so ENGINE_by_id("edgetls-keyless") finds it; a failure here (an engine of
        // that id exists already) does not stop keys from naming this one directly.
        ffi::ENGINE_add(e);
        // A functional reference held for the life of the process.
        if ffi::ENGINE_init(e) != 1 {
            return Err(fail("ENGINE_init"));
        }
        Ok(Engine {
            engine: e,
            ex_index,
        })
    }
}

/// The methods, for the engine's lookup callback (which gets no user data).
struct Methods {
    rsa: *mut ffi::EVP_PKEY_METHOD,
    ec: *mut ffi::EVP_PKEY_METHOD,
}
// SAFETY: written once before any lookup, read-only after.
unsafe impl Send for Methods {}
// SAFETY: as above.
unsafe impl Sync for Methods {}
static ENGINE_METHODS: OnceLock<Methods> = OnceLock::new();

/// A copy of OpenSSL's built-in method for `nid` with our sign hook.
///
/// # Safety
/// Calls into libcrypto; `nid` must be a key type with a built-in method.
unsafe fn copy_method(nid: c_int) -> Option<*mut ffi::EVP_PKEY_METHOD> {
    // SAFETY: EVP_PKEY_meth_find returns a static built-in method or NULL (checked); the new
    // method is checked for NULL before it is written to.
    unsafe {
        let base = ffi::EVP_PKEY_meth_find(nid);
        if base.is_null() {
            return None;
        }
        let m = ffi::EVP_PKEY_meth_new(nid, ffi::EVP_PKEY_FLAG_AUTOARGLEN);
        if m.is_null() {
            return None;
        }
        ffi::EVP_PKEY_meth_copy(m, base);
        let mut init = None;
        let mut sign = None;
        ffi::EVP_PKEY_meth_get_sign(base, &mut init, &mut sign);
        ffi::EVP_PKEY_meth_set_sign(m, init, Some(sign_hook));
        Some(m)
    }
}

/// ENGINE callback: which key types the engine has methods for, and the method for one.
unsafe extern "C" fn pkey_meths(
    _e: *mut ffi::ENGINE,
    pmeth: *mut *mut ffi::EVP_PKEY_METHOD,
    nids: *mut *const c_int,
    nid: c_int,
) -> c_int {
    if pmeth.is_null() {
        if !nids.is_null() {
            // SAFETY: OpenSSL passes a valid out-pointer; NIDS is a static array.
            unsafe { *nids = NIDS.as_ptr() };
        }
        return NIDS.len() as c_int;
    }
    let Some(m) = ENGINE_METHODS.get() else {
        // SAFETY: pmeth is a valid out-pointer (checked non-null above).
        unsafe { *pmeth = std::ptr::null_mut() };
        return 0;
    };
    let chosen = match nid {
        NID_RSA => m.rsa,
        NID_EC => m.ec,
        _ => std::ptr::null_mut(),
    };
    // SAFETY: pmeth is a valid out-pointer (checked non-null above).
    unsafe { *pmeth = chosen };
    c_int::from(!chosen.is_null())
}

/// ex_data duplicator (`EVP_PKEY_dup`): the copy gets its own binding, sharing the signer, so
/// each key frees its own.
unsafe extern "C" fn dup_binding(
    _to: *mut CRYPTO_EX_DATA,
    _from: *const CRYPTO_EX_DATA,
    from_d: *mut *mut c_void,
    _idx: c_int,
    _argl: c_long,
    _argp: *mut c_void,
) -> c_int {
    // OpenSSL passes the address of the ex_data pointer, to be replaced by the copy's.
    let slot = from_d;
    if slot.is_null() {
        return 1;
    }
    let copied = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `slot` points at the value stored at our index: NULL or a Box<Binding>
        // owned by the source key, alive during the call.
        unsafe {
            let b = (*slot).cast::<Binding>();
            if b.is_null() {
                return std::ptr::null_mut();
            }
            Box::into_raw(Box::new((*b).clone())).cast::<c_void>()
        }
    }));
    match copied {
        Ok(p) => {
            // SAFETY: as above; the copy now owns `p`.
            unsafe { *slot = p };
            1
        }
        Err(_) => 0,
    }
}

/// A key object holding `cert`'s public parts whose private operations go through the engine,
/// carrying `binding`.
pub(crate) fn key(
    binding: Binding,
    cert: &openssl::x509::X509Ref,
) -> Result<openssl::pkey::PKey<openssl::pkey::Private>, TlsError> {
    use foreign_types::ForeignType;
    use openssl::pkey::{PKey, Private};
    let public = cert.public_key()?;
    // A legacy key object holding only the public parts: the engine's methods apply to it.
    let legacy = if binding.rsa {
        PKey::from_rsa(public.rsa()?)?
    } else {
        PKey::from_ec_key(public.ec_key()?)?
    };
    let engine = get()?;
    let raw = legacy.as_ptr();
    std::mem::forget(legacy); // ownership moves to the PKey<Private> below
    // SAFETY: `raw` is a valid EVP_PKEY we own; wrapping it as PKey<Private> is sound because
    // every private operation on it goes through the engine's methods, which never read private
    // parts. The binding box is owned by the key's ex_data from here on (freed with the key).
    unsafe {
        let key = PKey::<Private>::from_ptr(raw);
        let b = Box::into_raw(Box::new(binding));
        if ffi::EVP_PKEY_set_ex_data(raw, engine.ex_index, b.cast()) != 1 {
            drop(Box::from_raw(b));
            return Err(openssl::error::ErrorStack::get().into());
        }
        if ffi::EVP_PKEY_set1_engine(raw, engine.engine) != 1 {
            return Err(openssl::error::ErrorStack::get().into());
        }
        Ok(key)
    }
}

/// ex_data destructor: drops the binding when its `EVP_PKEY` is freed.
unsafe extern "C" fn free_binding(
    _parent: *mut c_void,
    ptr: *mut c_void,
    _ad: *mut CRYPTO_EX_DATA,
    _idx: c_int,
    _argl: c_long,
    _argp: *mut c_void,
) {
    if !ptr.is_null() {
        // SAFETY: the only pointers stored at this index are Box<Binding>s made by
        // `key`, and OpenSSL calls this once, when the key is freed.
        let binding = unsafe { Box::from_raw(ptr.cast::<Binding>()) };
        // The last reference to a remote key may shut a client down: never unwind into C.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(binding)));
    }
}

/// The sign step of both methods. Never unwinds into OpenSSL; returns 1 on success.
unsafe extern "C" fn sign_hook(
    ctx: *mut EVP_PKEY_CTX,
    sig: *mut u8,
    siglen: *mut size_t,
    tbs: *const u8,
    tbslen: size_t,
) -> c_int {
    // SAFETY: OpenSSL calls this with a live ctx and, per EVP_PKEY_sign, valid sig/siglen/tbs
    // pointers for the given lengths; `sign` checks the NULLs it may legally pass.
    wait::outcome(catch_unwind(AssertUnwindSafe(|| unsafe {
        sign(ctx, sig, siglen, tbs, tbslen)
    })))
}

/// # Safety
/// As for `sign_hook`.
unsafe fn sign(
    ctx: *mut EVP_PKEY_CTX,
    sig: *mut u8,
    siglen: *mut size_t,
    tbs: *const u8,
    tbslen: size_t,
) -> Result<(), TlsError> {
    let engine = get()?;
    // SAFETY: ctx is live for the duration of the call; the ex_data at our index is either
    // NULL or a Binding owned by the key, which outlives this call (ctx holds a reference).
    let (binding, size) = unsafe {
        let pkey: *mut EVP_PKEY = ffi::EVP_PKEY_CTX_get0_pkey(ctx);
        if pkey.is_null() {
            return Err(TlsError::Call("a key"));
        }
        let b = ffi::EVP_PKEY_get_ex_data(pkey, engine.ex_index).cast::<Binding>();
        if b.is_null() {
            return Err(TlsError::UnsupportedKey(
                "key has no remote binding (not made by edgetls-tls)".into(),
            ));
        }
        (&*b, openssl_sys::EVP_PKEY_get_size(pkey).max(0) as usize)
    };
    if siglen.is_null() {
        return Err(TlsError::Call("a signature length pointer"));
    }
    if sig.is_null() {
        // SAFETY: siglen checked non-null.
        unsafe { *siglen = size };
        return Ok(());
    }
    // SAFETY: siglen checked non-null.
    let room = unsafe { *siglen };
    let scheme = scheme_of(ctx, binding.rsa)?;
    if tbs.is_null() {
        return Err(TlsError::Call("data to sign"));
    }
    // SAFETY: OpenSSL passes tbs, checked non-null, valid for tbslen bytes.
    let digest = unsafe { std::slice::from_raw_parts(tbs, tbslen) }.to_vec();
    let request = SignRequest {
        scheme,
        digest,
        connection: super::current(),
    };
    let n = wait::sign_into(&binding.signer, request, sig, room)?;
    // SAFETY: siglen checked non-null.
    unsafe { *siglen = n };
    Ok(())
}

/// Reads the hash, padding and salt that OpenSSL set on `ctx`.
fn scheme_of(ctx: *mut EVP_PKEY_CTX, rsa: bool) -> Result<SignScheme, TlsError> {
    let mut md = std::ptr::null();
    // SAFETY: ctx is live; the out-pointer is a local.
    let nid = unsafe {
        if ffi::EVP_PKEY_CTX_get_signature_md(ctx, &mut md) <= 0 || md.is_null() {
            return Err(TlsError::UnsupportedScheme(
                "a signature without a hash".into(),
            ));
        }
        openssl_sys::EVP_MD_get_type(md)
    };
    let hash = HashAlgorithm::from_nid(openssl::nid::Nid::from_raw(nid))
        .ok_or_else(|| TlsError::UnsupportedScheme(format!("digest NID {nid}")))?;
    if !rsa {
        return Ok(SignScheme::Ecdsa(hash));
    }
    let mut pad = 0;
    // SAFETY: ctx is live; the out-pointer is a local.
    if unsafe { openssl_sys::EVP_PKEY_CTX_get_rsa_padding(ctx, &mut pad) } <= 0 {
        return Err(TlsError::UnsupportedScheme("RSA padding unknown".into()));
    }
    match pad {
        openssl_sys::RSA_PKCS1_PADDING => Ok(SignScheme::RsaPkcs1(hash)),
        openssl_sys::RSA_PKCS1_PSS_PADDING => {
            let mut salt = 0;
            // SAFETY: ctx is live; the out-pointer is a local.
            if unsafe { ffi::EVP_PKEY_CTX_get_rsa_pss_saltlen(ctx, &mut salt) } <= 0 {
                return Err(TlsError::UnsupportedScheme("PSS salt unknown".into()));
            }
            if salt != ffi::RSA_PSS_SALTLEN_DIGEST && salt as usize != hash.digest_len() {
                return Err(TlsError::UnsupportedScheme(format!(
                    "RSA-PSS with a salt of {salt} (keyless PSS uses the hash length)"
                )));
            }
            Ok(SignScheme::RsaPss(hash))
        }
        openssl_sys::RSA_NO_PADDING => Err(TlsError::UnsupportedScheme(
            "raw RSA signing (no padding)".into(),
        )),
        other => Err(TlsError::UnsupportedScheme(format!("RSA padding {other}"))),
    }
}
