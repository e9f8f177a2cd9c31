//! # edgetls-engine
//!
//! Certificates whose private key lives on a key server, usable like any other in OpenSSL.
//!
//! - [`remote_pkey`] makes an `EVP_PKEY` from a certificate's public key whose signatures are
//!   made by a [`RemoteKey`]: [`KeylessKey`] (a key server through the keyless client) or
//!   [`LocalSigner`] (in-process: a reference implementation and a baseline). The key belongs to the
//!   `edgetls-keyless` OpenSSL provider (OpenSSL 3.0 to 4.0), whose signature operations
//!   get the digest, hash, padding and salt OpenSSL asks for, so every signature goes out as a
//!   standard keyless sign opcode (RSA PKCS#1 0x02–0x07, RSA-PSS 0x35–0x37, ECDSA 0x12–0x17);
//!   no path needs raw RSA. Feature `engine` (OpenSSL 3.x): `engine_remote_pkey` makes the same
//!   key through the older ENGINE API instead.
//! - Blocking mode: without async mode the sign step waits for the answer on its thread.
//! - Async mode ([`enable_async`] + [`accept`]): the sign step submits the request, registers a
//!   wait descriptor and pauses the handshake's job; the driver waits on the descriptor and
//!   resumes the job on the same thread, which serves other connections meanwhile.
//! - [`accept`] resolves to a [`TlsStream`], whose [`Transport`] sends OpenSSL's small writes
//!   together (the session tickets as one send; an answer and its `close_notify` as one):
//!   flush it when the peer should have what was written.
//! - Static RSA key exchange cannot use such keys: [`set_remote_key`] (certificate + remote key
//!   on a context) and the store integration remove it automatically ([`restrict_to_ecdhe`]).
//! - Certificate store: [`StoreKeys`] in `LoadOptions::remote_keys` serves every certificate
//!   loaded without a private key with the key server's key for its SKI.
//!
//! Every hook into OpenSSL — the provider, async jobs, the ENGINE API — is in the seam crate,
//! `edgetls-tls` ([`edgetls_tls::remote_key`]); this crate declares no OpenSSL function.
//!
//! A key whose signatures are made elsewhere — here by a [`LocalSigner`] standing in for a key
//! server — used by OpenSSL like any private key (on AWS-LC, which has no providers, a remote
//! key signs only in a handshake, set with [`set_remote_key`] or `edgetls_tls::use_chain`):
//!
//! ```
//! use edgetls_engine::{LocalSigner, remote_pkey};
//! use openssl::{ec::{EcGroup, EcKey}, hash::MessageDigest, nid::Nid, pkey::PKey};
//! use openssl::sign::{Signer, Verifier};
//! use std::sync::Arc;
//! # fn cert_for(key: &PKey<openssl::pkey::Private>) -> openssl::x509::X509 {
//! #     let mut b = openssl::x509::X509::builder().unwrap();
//! #     let mut name = openssl::x509::X509Name::builder().unwrap();
//! #     name.append_entry_by_text("CN", "remote.example").unwrap();
//! #     let name = name.build();
//! #     b.set_subject_name(&name).unwrap();
//! #     b.set_issuer_name(&name).unwrap();
//! #     b.set_pubkey(key).unwrap();
//! #     b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap()).unwrap();
//! #     b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap()).unwrap();
//! #     b.sign(key, MessageDigest::sha256()).unwrap();
//! #     b.build()
//! # }
//!
//! # if edgetls_tls::library::NAME == "AWS-LC" { return Ok(()); }
//! let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
//! let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
//! let cert = cert_for(&key);
//! // The edge holds only the certificate; the signer holds the key.
//! let remote = remote_pkey(&cert, Arc::new(LocalSigner::new(key)))?;
//! let mut signer = Signer::new(MessageDigest::sha256(), &remote)?;
//! let signature = signer.sign_oneshot_to_vec(b"handshake transcript")?;
//! let public = cert.public_key()?;
//! let mut verifier = Verifier::new(MessageDigest::sha256(), &public)?;
//! assert!(verifier.verify_oneshot(&signature, b"handshake transcript")?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs, unreachable_pub)]

mod error;
mod handshake;
mod keys;
mod stream;

pub use edgetls_tls::remote_key::{
    ConnectionInfo, Stats, enable_async, enable_async_ssl, restrict_ssl_to_ecdhe,
    restrict_to_ecdhe, stats,
};
pub use error::EngineError;
pub use handshake::driver::{Handshake, PAUSED_LIMIT, accept};
pub use handshake::failure::{Failure, take_last_error};
#[cfg(feature = "engine")]
pub use keys::key::engine_remote_pkey;
pub use keys::key::{remote_pkey, set_remote_key, ski_of};
pub use keys::remote::{
    Done, HashAlgorithm, KeylessKey, LocalSigner, RemoteKey, SignRequest, SignScheme,
};
pub use keys::store::StoreKeys;
pub use stream::{DIRECT, HOLD, TlsStream, Transport};

// The README is the crate's front page on crates.io: its examples are tested too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
