//! Keys in a PKCS#11 token (an HSM, a smart card, SoftHSM), named by an RFC 7512 URI.
//!
//! Every private key the URI selects that has a public key or certificate object with the
//! same id is served; the public half gives its SKI, a certificate its names. Operations run
//! in a pool of logged-in sessions (as many as asked, at most what the token allows). When the
//! token fails (removed, reset), it is marked down: requests get `ErrorCode::INTERNAL` at once,
//! and a watcher re-opens it (re-initializing the library if needed) until it is back.

mod mechanism;
mod objects;
mod token;
mod uri;

pub use uri::Pkcs11Uri;

use super::index::KeyIndex;
use super::{Cost, Decryption, DeviceJob, KeyKind, KeyStore, PrivateKey};
use crate::error::KeyServerError;
use edgetls_keyless_proto::{ErrorCode, Operation, SignScheme, Ski};
use std::sync::Arc;
use std::time::Duration;
use token::Token;

/// How the store uses a token.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Pkcs11Options {
    /// Sessions kept open for operations (at most what the token allows, less the login's).
    /// Operations run on the key server's workers: keep at least one session per worker.
    pub sessions: usize,
    /// Threads of the token's own that run its operations, so that a worker never waits on
    /// the device. `None`: one per session for a hardware slot (`CKF_HW_SLOT`), none for a
    /// software token (SoftHSM: its operations are CPU work, done best by the workers).
    pub threads: Option<usize>,
    /// How long an operation may wait for the token before it fails (queued, or for a session).
    pub session_wait: Duration,
    /// How often a token that went down is tried again.
    pub retry: Duration,
}

impl Default for Pkcs11Options {
    fn default() -> Self {
        Pkcs11Options {
            sessions: std::thread::available_parallelism().map_or(2, |n| n.get()),
            threads: None,
            session_wait: Duration::from_secs(1),
            retry: Duration::from_millis(500),
        }
    }
}

/// The keys of one token.
#[derive(Debug)]
pub struct Pkcs11Store {
    token: Arc<Token>,
    index: KeyIndex,
}

/// A key in a token: operations go to the token by the key's SKI.
#[derive(Debug)]
struct TokenKey {
    ski: Ski,
    kind: KeyKind,
    modulus: Option<Vec<u8>>,
    origin: String,
    token: Arc<Token>,
}

impl Pkcs11Store {
    /// Opens the token `uri` names, logs in with its PIN and indexes its keys. Keys that
    /// cannot be served (no public half, unsupported type) are returned as messages.
    pub fn open(
        uri: &Pkcs11Uri,
        opts: &Pkcs11Options,
    ) -> Result<(Pkcs11Store, Vec<String>), KeyServerError> {
        let (token, (found, skipped)) =
            Token::open(uri, opts).map_err(|message| KeyServerError::Pkcs11 {
                uri: uri.to_string(),
                message,
            })?;
        let mut index = KeyIndex::default();
        let mut certs = Vec::new();
        for f in found {
            let origin = format!("{uri} ({})", f.name);
            index.insert(Arc::new(TokenKey {
                ski: f.ski,
                kind: f.kind,
                modulus: f.modulus,
                origin,
                token: Arc::clone(&token),
            }));
            certs.extend(f.cert);
        }
        for c in certs {
            index.add_names(c);
        }
        Ok((Pkcs11Store { token, index }, skipped))
    }

    /// Whether operations run on threads of the token's own (see [`Pkcs11Options::threads`]).
    pub fn own_threads(&self) -> bool {
        self.token.own_threads
    }

    /// Whether the token is up (open and logged in) right now.
    pub fn is_up(&self) -> bool {
        self.token.is_up()
    }
}

impl KeyStore for Pkcs11Store {
    fn find(&self, op: &Operation) -> Option<Arc<dyn PrivateKey>> {
        self.index.find(op).cloned()
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn describe(&self) -> String {
        self.token.uri.to_string()
    }
}

impl PrivateKey for TokenKey {
    fn ski(&self) -> Ski {
        self.ski
    }

    fn kind(&self) -> KeyKind {
        self.kind
    }

    fn origin(&self) -> String {
        self.origin.clone()
    }

    fn cost(&self) -> Cost {
        match self.token.own_threads {
            true => Cost::Device,
            // A software token: CPU work, as slow as an RSA signature from a file or less.
            false => Cost::Slow,
        }
    }

    fn sign(&self, scheme: SignScheme, input: &[u8]) -> Result<Vec<u8>, ErrorCode> {
        let (mechanism, data) = mechanism::sign(self.kind, scheme, input)?;
        let raw = self
            .token
            .run(&self.ski, |s, key| s.sign(&mechanism, key, &data))?;
        mechanism::signature(scheme, raw)
    }

    fn decrypt(&self, ciphertext: &[u8], how: Decryption) -> Result<Vec<u8>, ErrorCode> {
        if !matches!(self.kind, KeyKind::Rsa { .. }) {
            return Err(ErrorCode::CRYPTO);
        }
        let mechanism = mechanism::decrypt(how);
        self.token
            .run(&self.ski, |s, key| s.decrypt(&mechanism, key, ciphertext))
    }

    fn rsa_modulus(&self) -> Option<Vec<u8>> {
        self.modulus.clone()
    }

    fn dispatch(&self, job: DeviceJob) {
        self.token.dispatch(job);
    }
}
