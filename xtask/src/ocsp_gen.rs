//! OCSP responses for generated certificates (`cargo xtask gen-certs --ocsp-days N`): what a
//! responder would answer ("good", valid N days), signed by the issuing CA, written as HAProxy
//! names them (`CERT.ocsp`). Tens of thousands take seconds, where asking `openssl ocsp` one
//! by one takes minutes; the tests use the real responder.

use anyhow::{Context, Result, bail};
use foreign_types::ForeignType;
use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::ocsp::{OcspBasicResponse, OcspCertId, OcspResponse, OcspResponseStatus};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use std::ffi::c_ulong;
#[cfg(not(awslc))]
use std::ffi::{c_int, c_void};

// AWS-LC declares both (openssl-sys re-exports its bindings); OpenSSL's openssl-sys does not.
#[cfg(awslc)]
use openssl_sys::{OCSP_basic_add1_status, OCSP_basic_sign};
#[cfg(not(awslc))]
unsafe extern "C" {
    fn OCSP_basic_add1_status(
        rsp: *mut openssl_sys::OCSP_BASICRESP,
        cid: *mut openssl_sys::OCSP_CERTID,
        status: c_int,
        reason: c_int,
        revtime: *mut openssl_sys::ASN1_TIME,
        thisupd: *mut openssl_sys::ASN1_TIME,
        nextupd: *mut openssl_sys::ASN1_TIME,
    ) -> *mut c_void;
    fn OCSP_basic_sign(
        brsp: *mut openssl_sys::OCSP_BASICRESP,
        signer: *mut openssl_sys::X509,
        key: *mut openssl_sys::EVP_PKEY,
        dgst: *const openssl_sys::EVP_MD,
        certs: *mut openssl_sys::stack_st_X509,
        flags: c_ulong,
    ) -> c_int;
}

/// `OCSP_NOCERTS`: the response carries no certificate (signed by the issuer itself, it needs
/// none; public CAs' responders answer so).
const OCSP_NOCERTS: c_ulong = 0x1;

/// The issuing CA, signing responses for its certificates.
pub(crate) struct Signer {
    cert: X509,
    key: PKey<Private>,
}

impl Signer {
    pub(crate) fn new(cert_pem: &str, key_pem: &str) -> Result<Signer> {
        Ok(Signer {
            cert: X509::from_pem(cert_pem.as_bytes())?,
            key: PKey::private_key_from_pem(key_pem.as_bytes())?,
        })
    }

    /// A successful response saying `leaf_pem` is good from now for `days` days (DER), signed
    /// with SHA-256 by the issuer.
    pub(crate) fn good(&self, leaf_pem: &str, days: u32) -> Result<Vec<u8>> {
        let leaf = X509::from_pem(leaf_pem.as_bytes()).context("leaf")?;
        let id = OcspCertId::from_cert(MessageDigest::sha1(), &leaf, &self.cert)?;
        let (this, next) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(days)?);
        // SAFETY: a new, owned basic response; OpenSSL copies the ID and the times into it.
        let basic = unsafe {
            let b = openssl_sys::OCSP_BASICRESP_new();
            if b.is_null() {
                bail!("OCSP_BASICRESP_new");
            }
            OcspBasicResponse::from_ptr(b)
        };
        // SAFETY: every pointer is live for the call; status 0 is V_OCSP_CERTSTATUS_GOOD.
        let single = unsafe {
            OCSP_basic_add1_status(
                basic.as_ptr(),
                id.as_ptr(),
                0,
                0,
                std::ptr::null_mut(),
                this.as_ptr(),
                next.as_ptr(),
            )
        };
        if single.is_null() {
            bail!(
                "OCSP_basic_add1_status: {}",
                openssl::error::ErrorStack::get()
            );
        }
        // SAFETY: signs the live response with the CA's live certificate and key, SHA-256.
        let ok = unsafe {
            OCSP_basic_sign(
                basic.as_ptr(),
                self.cert.as_ptr(),
                self.key.as_ptr(),
                MessageDigest::sha256().as_ptr(),
                std::ptr::null_mut(),
                OCSP_NOCERTS,
            )
        };
        if ok != 1 {
            bail!("OCSP_basic_sign: {}", openssl::error::ErrorStack::get());
        }
        let resp = OcspResponse::create(OcspResponseStatus::SUCCESSFUL, Some(&basic))?;
        Ok(resp.to_der()?)
    }
}
