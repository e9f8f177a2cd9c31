//! # edgetls-engine
//!
//! Certificates whose private key lives on a key server, usable like any other in OpenSSL.
//!
//! - [`remote_pkey`] makes an `EVP_PKEY` from a certificate's public key whose signatures are
//!   made by a [`RemoteKey`]: [`KeylessKey`] (a key server through the keyless client) or
//!   [`LocalSigner`] (in-process, for tests and baselines). The `edgetls-keyless` ENGINE's key
//!   methods read the digest, hash, padding and salt OpenSSL asked for, so every signature goes
//!   out as a standard keyless sign opcode (RSA PKCS#1 0x02–0x07, RSA-PSS 0x35–0x37, ECDSA
//!   0x12–0x17); no path needs raw RSA.
//! - Blocking mode: without async mode the sign step waits for the answer on its thread.
//! - Async mode ([`enable_async`] + [`accept`]): the sign step submits the request, registers a
//!   wait descriptor and pauses the handshake's job; the driver waits on the descriptor and
//!   resumes the job on the same thread, which serves other connections meanwhile.
//! - Static RSA key exchange cannot use such keys: [`set_remote_key`] (certificate + remote key
//!   on a context) and the store integration remove it automatically ([`restrict_to_ecdhe`]).
//! - Certificate store: [`StoreKeys`] in `LoadOptions::remote_keys` serves every certificate
//!   loaded without a private key with the key server's key for its SKI.
//!
//! This is the only edgetls crate with FFI beyond `openssl-sys`: see `ffi.rs`.

mod context;
mod driver;
mod engine;
mod error;
mod ffi;
mod key;
mod remote;
mod store;
mod wait;

pub use context::{
    enable_async, enable_async_ssl, restrict_ssl_to_ecdhe, restrict_to_ecdhe, set_remote_key,
};
pub use driver::{Handshake, accept};
pub use error::EngineError;
pub use key::{remote_pkey, ski_of};
pub use remote::{Done, Hash, KeylessKey, LocalSigner, RemoteKey, Scheme, SignRequest};
pub use store::StoreKeys;
pub use wait::{Stats, stats, take_last_error};
