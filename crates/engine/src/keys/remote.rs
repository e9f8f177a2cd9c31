//! What a remote key does: one signature, started now and finished later from any thread.

use crate::error::EngineError;
use edgetls_keyless_client::{ClientError, KeylessClient, PerThreadClient};
use edgetls_keyless_proto::{Operation, Ski};
use edgetls_tls::remote_key::ConnectionInfo;
use openssl::pkey::{Id, PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::RsaPssSaltlen;
use std::sync::Arc;

pub use edgetls_keyless_proto::{HashAlgorithm, SignScheme};

/// One signature to make with a remote key.
#[derive(Debug, Clone)]
pub struct SignRequest {
    /// The key, by the SKI of its certificate's public key.
    pub ski: Ski,
    /// The signature scheme: algorithm, hash and padding.
    pub scheme: SignScheme,
    /// The digest to sign (already hashed by OpenSSL).
    pub digest: Vec<u8>,
    /// The connection it is for, when the handshake driver knows it (see [`ConnectionInfo`]).
    pub connection: ConnectionInfo,
}

/// Called exactly once with the signature or the reason there is none.
pub type Done = Box<dyn FnOnce(Result<Vec<u8>, EngineError>) + Send + 'static>;

/// A private key held elsewhere.
///
/// `start` must not block: it hands the request off and returns, and `done` is called exactly
/// once, from any thread, within a bounded time (the implementation's own deadline). It runs on
/// the thread driving the handshake, never on an async job's small stack: in blocking mode
/// inside the sign step; in async mode right after the job paused, from
/// [`accept`](crate::accept)'s driver (a job driven by other code has it called on the
/// `edgetls-remote` thread).
pub trait RemoteKey: Send + Sync + std::fmt::Debug + 'static {
    /// Starts the operation; `done` receives the signature or the error.
    fn start(&self, request: SignRequest, done: Done);
}

/// Remote keys served by key servers through the keyless client.
#[derive(Debug, Clone)]
pub struct KeylessKey {
    client: Client,
}

#[derive(Debug, Clone)]
enum Client {
    One(Arc<KeylessClient>),
    PerThread(Arc<PerThreadClient>),
}

impl KeylessKey {
    /// Keys served through `client`: each request names its key by SKI.
    pub fn new(client: Arc<KeylessClient>) -> KeylessKey {
        KeylessKey {
            client: Client::One(client),
        }
    }

    /// Keys served through the client of the thread that drives the handshake (see
    /// [`PerThreadClient`]): for servers with a current-thread runtime per worker, where each
    /// worker attaches once.
    pub fn per_thread(client: Arc<PerThreadClient>) -> KeylessKey {
        KeylessKey {
            client: Client::PerThread(client),
        }
    }
}

impl RemoteKey for KeylessKey {
    fn start(&self, request: SignRequest, done: Done) {
        let Some(opcode) = request.scheme.opcode() else {
            return done(Err(EngineError::UnsupportedScheme(format!(
                "{:?} has no keyless opcode",
                request.scheme
            ))));
        };
        let mut op = Operation::request(opcode, request.ski, request.digest);
        op.sni = request.connection.sni;
        op.client_ip = request.connection.client_ip;
        op.server_ip = request.connection.server_ip;
        let done = move |r: Result<Operation, ClientError>| {
            done(r.map(|op| op.payload).map_err(EngineError::KeyServer))
        };
        match &self.client {
            Client::One(c) => c.submit(op, done),
            Client::PerThread(c) => c.submit(op, done),
        }
    }
}

/// A key in this process, signing in `start` itself: for tests, and as the local baseline
/// the remote path is measured against.
pub struct LocalSigner {
    key: PKey<Private>,
}

impl std::fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSigner").finish_non_exhaustive()
    }
}

impl LocalSigner {
    /// A signer holding `key` in this process.
    pub fn new(key: PKey<Private>) -> LocalSigner {
        LocalSigner { key }
    }

    /// Signs `request` with this key, the way a key server would.
    pub fn sign(&self, request: &SignRequest) -> Result<Vec<u8>, EngineError> {
        let mut ctx = PkeyCtx::new(&self.key)?;
        ctx.sign_init()?;
        let hash = match request.scheme {
            SignScheme::RsaPkcs1(h) => {
                ctx.set_rsa_padding(Padding::PKCS1)?;
                h
            }
            SignScheme::RsaPss(h) => {
                ctx.set_rsa_padding(Padding::PKCS1_PSS)?;
                ctx.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
                h
            }
            SignScheme::Ecdsa(h) => h,
            SignScheme::Ed25519 => {
                return Err(EngineError::UnsupportedScheme(
                    "Ed25519 (OpenSSL signs it in one shot, not through remote keys)".into(),
                ));
            }
        };
        if self.key.id() == Id::RSA || self.key.id() == Id::EC {
            let md = hash
                .md()
                .ok_or_else(|| EngineError::UnsupportedScheme(format!("{hash:?}")))?;
            ctx.set_signature_md(md)?;
        }
        let mut sig = Vec::new();
        ctx.sign_to_vec(&request.digest, &mut sig)?;
        Ok(sig)
    }
}

impl RemoteKey for LocalSigner {
    fn start(&self, request: SignRequest, done: Done) {
        done(self.sign(&request));
    }
}
