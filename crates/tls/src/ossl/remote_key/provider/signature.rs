//! Signatures with remote keys: the digest is made here (OpenSSL's digest, in this process),
//! then signed by the remote key through the same path as the ENGINE's hook (`wait::perform`:
//! in async mode the job pauses until the answer arrives).

use super::keymgmt::KeyData;
use super::params::{self, List};
use crate::TlsError;
use crate::ossl::remote_key::ffi::{self, OSSL_DISPATCH};
use crate::ossl::remote_key::{Binding, wait};
use crate::remote_key::{HashAlgorithm, SignRequest, SignScheme};
use foreign_types::ForeignType;
use libc::{c_int, c_void, size_t};
use openssl::hash::{Hasher, MessageDigest};
use openssl::md::Md;
use openssl_sys::OSSL_PARAM;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

const PKCS1: c_int = openssl_sys::RSA_PKCS1_PADDING;
const PSS: c_int = openssl_sys::RSA_PKCS1_PSS_PADDING;
/// `RSA_PSS_SALTLEN_DIGEST`: a salt as long as the digest (what TLS uses).
const SALT_DIGEST: c_int = -1;

/// One signing operation's state.
#[derive(Clone)]
struct SigCtx {
    binding: Option<Arc<Binding>>,
    /// The largest signature the key makes.
    max: usize,
    hash: Option<HashAlgorithm>,
    mgf1: Option<HashAlgorithm>,
    hasher: Option<Hasher>,
    pad: c_int,
    salt: c_int,
}

impl Default for SigCtx {
    fn default() -> Self {
        SigCtx {
            binding: None,
            max: 0,
            hash: None,
            mgf1: None,
            hasher: None,
            pad: PKCS1,
            salt: SALT_DIGEST,
        }
    }
}

/// A digest name as OpenSSL passes it ("SHA256", "SHA2-256", "MD5-SHA1", …). The names TLS
/// uses are known here; any other alias is looked up (a fetch: a lock and a name table).
fn hash_named(name: &str) -> Result<HashAlgorithm, TlsError> {
    const KNOWN: [(&str, HashAlgorithm); 11] = [
        ("SHA256", HashAlgorithm::Sha256),
        ("SHA2-256", HashAlgorithm::Sha256),
        ("SHA384", HashAlgorithm::Sha384),
        ("SHA2-384", HashAlgorithm::Sha384),
        ("SHA512", HashAlgorithm::Sha512),
        ("SHA2-512", HashAlgorithm::Sha512),
        ("SHA1", HashAlgorithm::Sha1),
        ("SHA-1", HashAlgorithm::Sha1),
        ("SHA224", HashAlgorithm::Sha224),
        ("SHA2-224", HashAlgorithm::Sha224),
        ("MD5-SHA1", HashAlgorithm::Md5Sha1),
    ];
    if let Some((_, h)) = KNOWN.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
        return Ok(*h);
    }
    let md = openssl::md::Md::fetch(None, name, None)
        .map_err(|e| TlsError::UnsupportedScheme(format!("digest {name}: {e}")))?;
    HashAlgorithm::from_nid(md.type_())
        .ok_or_else(|| TlsError::UnsupportedScheme(format!("digest {name}")))
}

/// The digest for `hash`, fetched once per process: a digest made from a fetched method does
/// not look its implementation up again on every init, as one made from a NID does.
fn digest_of(hash: HashAlgorithm) -> Result<MessageDigest, TlsError> {
    static FETCHED: [OnceLock<Option<Md>>; 6] = [const { OnceLock::new() }; 6];
    let slot = match hash {
        HashAlgorithm::Md5Sha1 => 0,
        HashAlgorithm::Sha1 => 1,
        HashAlgorithm::Sha224 => 2,
        HashAlgorithm::Sha256 => 3,
        HashAlgorithm::Sha384 => 4,
        HashAlgorithm::Sha512 => 5,
    };
    let md = FETCHED[slot].get_or_init(|| {
        let name = hash.nid().short_name().ok()?;
        Md::fetch(None, name, None).ok()
    });
    match md {
        // SAFETY: the fetched method lives in a static for the rest of the process.
        Some(md) => Ok(unsafe { MessageDigest::from_ptr(md.as_ptr()) }),
        None => MessageDigest::from_nid(hash.nid())
            .ok_or_else(|| TlsError::UnsupportedScheme(format!("{hash:?}: no digest"))),
    }
}

impl SigCtx {
    fn init(&mut self, provkey: *mut c_void) -> Result<(), TlsError> {
        // SAFETY: OpenSSL passes a key of this provider's keymgmt, alive while the operation is.
        let key = unsafe { provkey.cast::<KeyData>().as_ref() }.ok_or(TlsError::Call("a key"))?;
        let binding = key.binding.clone().ok_or_else(|| {
            TlsError::UnsupportedKey("a public key only: it has no remote binding".into())
        })?;
        self.max = key.public.as_ref().map_or(0, |p| p.size());
        self.binding = Some(binding);
        self.hash = None;
        self.mgf1 = None;
        self.hasher = None;
        Ok(())
    }

    fn set(&mut self, params: *const OSSL_PARAM) -> Result<(), TlsError> {
        let bad = |what: &str| TlsError::UnsupportedScheme(what.to_string());
        // SAFETY: OpenSSL passes a parameter array alive for the call (or NULL).
        unsafe {
            if let Some(p) = params::find(params, c"digest") {
                let name = params::utf8(p).ok_or_else(|| bad("digest: not a name"))?;
                self.hash = Some(hash_named(name)?);
                self.hasher = None;
            }
            if let Some(p) = params::find(params, c"mgf1-digest") {
                let name = params::utf8(p).ok_or_else(|| bad("mgf1-digest: not a name"))?;
                self.mgf1 = Some(hash_named(name)?);
            }
            if let Some(p) = params::find(params, c"pad-mode") {
                self.pad = match (params::int(p), params::utf8(p)) {
                    (Some(n), _) => n,
                    (None, Some("pkcs1")) => PKCS1,
                    (None, Some("pss")) => PSS,
                    (None, Some(other)) => return Err(bad(&format!("RSA padding {other}"))),
                    (None, None) => return Err(bad("pad-mode")),
                };
            }
            if let Some(p) = params::find(params, c"saltlen") {
                self.salt = match (params::int(p), params::utf8(p)) {
                    (Some(n), _) => n,
                    (None, Some("digest")) => SALT_DIGEST,
                    (None, Some("max")) => -2,
                    (None, Some("auto")) => -3,
                    (None, Some(n)) => n.parse().map_err(|_| bad(&format!("saltlen {n}")))?,
                    (None, None) => return Err(bad("saltlen")),
                };
            }
        }
        Ok(())
    }

    fn scheme(&self, hash: HashAlgorithm) -> Result<SignScheme, TlsError> {
        let binding = self.binding.as_ref().ok_or(TlsError::Call("a key"))?;
        if !binding.rsa {
            return Ok(SignScheme::Ecdsa(hash));
        }
        match self.pad {
            PKCS1 => Ok(SignScheme::RsaPkcs1(hash)),
            PSS => {
                let salt_ok = self.salt == SALT_DIGEST || self.salt as usize == hash.digest_len();
                if !salt_ok || self.mgf1.is_some_and(|m| m != hash) {
                    return Err(TlsError::UnsupportedScheme(format!(
                        "RSA-PSS with salt {} and MGF1 {:?} (keyless PSS uses the hash for both)",
                        self.salt, self.mgf1
                    )));
                }
                Ok(SignScheme::RsaPss(hash))
            }
            other => Err(TlsError::UnsupportedScheme(format!("RSA padding {other}"))),
        }
    }

    /// Signs `digest` made with `hash` into `sig` (room for `room` bytes); the length written.
    fn sign(
        &self,
        hash: HashAlgorithm,
        digest: Vec<u8>,
        sig: *mut u8,
        room: usize,
    ) -> Result<usize, TlsError> {
        let scheme = self.scheme(hash)?;
        let binding = self.binding.as_ref().ok_or(TlsError::Call("a key"))?;
        let request = SignRequest {
            scheme,
            digest,
            connection: crate::ossl::remote_key::current(),
        };
        wait::sign_into(&binding.signer, request, sig, room)
    }
}

/// Runs `f` on the context; an error or a panic is recorded (see `take_last_failure`) and
/// returns 0, never unwinding into OpenSSL.
fn with(ctx: *mut c_void, f: impl FnOnce(&mut SigCtx) -> Result<(), TlsError>) -> c_int {
    wait::outcome(catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: OpenSSL passes a context made by `newctx` or `dupctx`.
        let Some(c) = (unsafe { ctx.cast::<SigCtx>().as_mut() }) else {
            return Err(TlsError::Call("a signature context"));
        };
        f(c)
    })))
}

unsafe extern "C" fn newctx(_provctx: *mut c_void, _propq: *const libc::c_char) -> *mut c_void {
    catch_unwind(|| Box::into_raw(Box::<SigCtx>::default()).cast()).unwrap_or(std::ptr::null_mut())
}

unsafe extern "C" fn freectx(ctx: *mut c_void) {
    if !ctx.is_null() {
        // SAFETY: OpenSSL frees each context it got from `newctx` or `dupctx` once.
        let c = unsafe { Box::from_raw(ctx.cast::<SigCtx>()) };
        let _ = catch_unwind(AssertUnwindSafe(move || drop(c)));
    }
}

unsafe extern "C" fn dupctx(ctx: *mut c_void) -> *mut c_void {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: OpenSSL passes one of our contexts.
        match unsafe { ctx.cast::<SigCtx>().as_ref() } {
            Some(c) => Box::into_raw(Box::new(c.clone())).cast(),
            None => std::ptr::null_mut(),
        }
    }))
    .unwrap_or(std::ptr::null_mut())
}

unsafe extern "C" fn sign_init(
    ctx: *mut c_void,
    provkey: *mut c_void,
    params: *const OSSL_PARAM,
) -> c_int {
    with(ctx, |c| {
        c.init(provkey)?;
        c.set(params)
    })
}

/// Sizes are asked with `sig` NULL.
fn size_query(c: &SigCtx, sig: *mut u8, siglen: *mut size_t) -> Option<Result<(), TlsError>> {
    if siglen.is_null() {
        return Some(Err(TlsError::Call("a signature length pointer")));
    }
    if sig.is_null() {
        // SAFETY: checked non-null.
        unsafe { *siglen = c.max };
        return Some(Ok(()));
    }
    None
}

unsafe extern "C" fn sign(
    ctx: *mut c_void,
    sig: *mut u8,
    siglen: *mut size_t,
    sigsize: size_t,
    tbs: *const u8,
    tbslen: size_t,
) -> c_int {
    with(ctx, |c| {
        if let Some(r) = size_query(c, sig, siglen) {
            return r;
        }
        if tbs.is_null() {
            return Err(TlsError::Call("data to sign"));
        }
        // SAFETY: OpenSSL passes `tbs`, checked non-null, valid for `tbslen` bytes.
        let digest = unsafe { std::slice::from_raw_parts(tbs, tbslen) }.to_vec();
        let hash = match c.hash {
            // The digest OpenSSL set: the data must be one of its length.
            Some(h) if h.digest_len() == tbslen => h,
            Some(h) => {
                return Err(TlsError::UnsupportedScheme(format!(
                    "a {tbslen}-byte digest for {h:?} ({} bytes)",
                    h.digest_len()
                )));
            }
            // No digest set (a raw signature): known from its length alone.
            None => match tbslen {
                20 => HashAlgorithm::Sha1,
                32 => HashAlgorithm::Sha256,
                36 => HashAlgorithm::Md5Sha1,
                48 => HashAlgorithm::Sha384,
                64 => HashAlgorithm::Sha512,
                n => return Err(TlsError::UnsupportedScheme(format!("a {n}-byte digest"))),
            },
        };
        let n = c.sign(hash, digest, sig, sigsize)?;
        // SAFETY: siglen checked non-null by size_query.
        unsafe { *siglen = n };
        Ok(())
    })
}

unsafe extern "C" fn digest_sign_init(
    ctx: *mut c_void,
    mdname: *const libc::c_char,
    provkey: *mut c_void,
    params: *const OSSL_PARAM,
) -> c_int {
    with(ctx, |c| {
        c.init(provkey)?;
        c.set(params)?;
        let hash = if mdname.is_null() {
            c.hash.unwrap_or(HashAlgorithm::Sha256)
        } else {
            // SAFETY: a NUL-terminated name from OpenSSL.
            let name = unsafe { std::ffi::CStr::from_ptr(mdname) }.to_string_lossy();
            hash_named(&name)?
        };
        c.hash = Some(hash);
        c.hasher = Some(Hasher::new(digest_of(hash)?)?);
        Ok(())
    })
}

unsafe extern "C" fn digest_sign_update(ctx: *mut c_void, data: *const u8, len: size_t) -> c_int {
    with(ctx, |c| {
        let h = c
            .hasher
            .as_mut()
            .ok_or(TlsError::Call("an init before the update"))?;
        if len > 0 {
            // SAFETY: OpenSSL passes `data` valid for `len` bytes.
            h.update(unsafe { std::slice::from_raw_parts(data, len) })?;
        }
        Ok(())
    })
}

unsafe extern "C" fn digest_sign_final(
    ctx: *mut c_void,
    sig: *mut u8,
    siglen: *mut size_t,
    sigsize: size_t,
) -> c_int {
    with(ctx, |c| {
        if let Some(r) = size_query(c, sig, siglen) {
            return r;
        }
        let hash = c.hash.ok_or(TlsError::Call("an init before the final"))?;
        let h = c
            .hasher
            .as_mut()
            .ok_or(TlsError::Call("an init before the final"))?;
        let digest = h.finish()?.to_vec();
        let n = c.sign(hash, digest, sig, sigsize)?;
        // SAFETY: siglen checked non-null by size_query.
        unsafe { *siglen = n };
        Ok(())
    })
}

unsafe extern "C" fn digest_sign(
    ctx: *mut c_void,
    sig: *mut u8,
    siglen: *mut size_t,
    sigsize: size_t,
    tbs: *const u8,
    tbslen: size_t,
) -> c_int {
    with(ctx, |c| {
        if let Some(r) = size_query(c, sig, siglen) {
            return r;
        }
        let hash = c.hash.ok_or(TlsError::Call("an init before the sign"))?;
        if tbs.is_null() && tbslen > 0 {
            return Err(TlsError::Call("data to sign"));
        }
        let data = match tbslen {
            0 => &[][..],
            // SAFETY: `tbs` is valid for `tbslen` bytes (OpenSSL's contract) and checked
            // non-null above for a non-empty input.
            n => unsafe { std::slice::from_raw_parts(tbs, n) },
        };
        let digest = openssl::hash::hash(digest_of(hash)?, data)?.to_vec();
        let n = c.sign(hash, digest, sig, sigsize)?;
        // SAFETY: siglen checked non-null by size_query.
        unsafe { *siglen = n };
        Ok(())
    })
}

unsafe extern "C" fn set_ctx_params(ctx: *mut c_void, params: *const OSSL_PARAM) -> c_int {
    with(ctx, |c| c.set(params))
}

unsafe extern "C" fn get_ctx_params(_ctx: *mut c_void, _params: *mut OSSL_PARAM) -> c_int {
    1
}

fn settable() -> &'static List {
    static L: OnceLock<List> = OnceLock::new();
    L.get_or_init(|| {
        List::new(&[
            (c"digest", ffi::OSSL_PARAM_UTF8_STRING),
            (c"properties", ffi::OSSL_PARAM_UTF8_STRING),
            (c"pad-mode", ffi::OSSL_PARAM_UTF8_STRING),
            (c"saltlen", ffi::OSSL_PARAM_UTF8_STRING),
            (c"mgf1-digest", ffi::OSSL_PARAM_UTF8_STRING),
            (c"mgf1-properties", ffi::OSSL_PARAM_UTF8_STRING),
        ])
    })
}

unsafe extern "C" fn settable_ctx_params(
    _ctx: *mut c_void,
    _provctx: *mut c_void,
) -> *const OSSL_PARAM {
    settable().as_ptr()
}

unsafe extern "C" fn gettable_ctx_params(
    _ctx: *mut c_void,
    _provctx: *mut c_void,
) -> *const OSSL_PARAM {
    static L: OnceLock<List> = OnceLock::new();
    L.get_or_init(|| List::new(&[])).as_ptr()
}

pub(super) fn table() -> &'static [OSSL_DISPATCH] {
    static T: OnceLock<super::Static<OSSL_DISPATCH>> = OnceLock::new();
    T.get_or_init(|| {
        super::Static(super::dispatch(&[
            (ffi::OSSL_FUNC_SIGNATURE_NEWCTX, newctx as *const ()),
            (ffi::OSSL_FUNC_SIGNATURE_FREECTX, freectx as *const ()),
            (ffi::OSSL_FUNC_SIGNATURE_DUPCTX, dupctx as *const ()),
            (ffi::OSSL_FUNC_SIGNATURE_SIGN_INIT, sign_init as *const ()),
            (ffi::OSSL_FUNC_SIGNATURE_SIGN, sign as *const ()),
            (
                ffi::OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT,
                digest_sign_init as *const (),
            ),
            (
                ffi::OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE,
                digest_sign_update as *const (),
            ),
            (
                ffi::OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL,
                digest_sign_final as *const (),
            ),
            (
                ffi::OSSL_FUNC_SIGNATURE_DIGEST_SIGN,
                digest_sign as *const (),
            ),
            (
                ffi::OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS,
                get_ctx_params as *const (),
            ),
            (
                ffi::OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS,
                gettable_ctx_params as *const (),
            ),
            (
                ffi::OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS,
                set_ctx_params as *const (),
            ),
            (
                ffi::OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS,
                settable_ctx_params as *const (),
            ),
        ]))
    })
    .0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_names_map_to_their_hash_known_or_looked_up() {
        for (name, hash) in [
            ("SHA256", HashAlgorithm::Sha256),
            ("sha2-384", HashAlgorithm::Sha384),
            ("MD5-SHA1", HashAlgorithm::Md5Sha1),
            // Aliases outside the table are looked up.
            ("SHA-256", HashAlgorithm::Sha256),
            ("2.16.840.1.101.3.4.2.3", HashAlgorithm::Sha512),
        ] {
            assert_eq!(hash_named(name).unwrap(), hash, "{name}");
        }
        assert!(matches!(
            hash_named("SHA3-256"),
            Err(TlsError::UnsupportedScheme(_))
        ));
        assert!(hash_named("no-such-digest").is_err());
    }

    #[test]
    fn fetched_digests_hash_as_openssl_does() {
        for hash in [
            HashAlgorithm::Sha1,
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha512,
        ] {
            let ours = openssl::hash::hash(digest_of(hash).unwrap(), b"edgetls").unwrap();
            let theirs =
                openssl::hash::hash(MessageDigest::from_nid(hash.nid()).unwrap(), b"edgetls")
                    .unwrap();
            assert_eq!(&ours[..], &theirs[..], "{hash:?}");
            assert_eq!(ours.len(), hash.digest_len());
        }
    }
}
