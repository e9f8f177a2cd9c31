//! Where the private keys live, behind one interface: a [`KeyStore`] finds the key a request
//! names, a [`PrivateKey`] signs or decrypts with it. Two stores exist: a directory of key
//! files ([`DirStore`]) and the keys of a PKCS#11 token ([`Pkcs11Store`]). The server asks its
//! stores in order ([`KeySet`]).

mod dir;
mod file;
mod index;
mod pkcs11;

pub use dir::DirStore;
pub use file::{FileKey, load_key};
pub use index::KeyIndex;
pub use pkcs11::{Pkcs11Options, Pkcs11Store, Pkcs11Uri};

use edgetls_keyless_proto::{ErrorCode, Operation, SignScheme, Ski};
use openssl::nid::Nid;
use std::sync::Arc;

/// What kind of key, for choosing and checking operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA.
    Rsa {
        /// The modulus size in bits.
        bits: u32,
    },
    /// ECDSA.
    Ecdsa {
        /// The curve.
        curve: Nid,
    },
    /// Ed25519.
    Ed25519,
}

/// How an operation with a key is best run by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// Microseconds of CPU (ECDSA, Ed25519): answered where the request was read.
    Cheap,
    /// A millisecond or more of CPU (RSA): a task of its own, so reading goes on.
    Slow,
    /// May wait on a device (a token): run on the blocking pool, never on a worker.
    Device,
}

/// RSA decryption: what the answer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decryption {
    /// c^d mod n, padding left in (gokeyless's 0x01, and 0x08).
    Raw,
    /// The PKCS#1 v1.5 message, padding removed (the older C server's 0x01).
    Pkcs1,
}

/// Work for a key's device, queued by [`PrivateKey::dispatch`]: called with `true` to do it,
/// or with `false` when it waited too long and must only answer (with an error).
pub type DeviceJob = Box<dyn FnOnce(bool) + Send>;

/// One private key, wherever it lives.
pub trait PrivateKey: Send + Sync + std::fmt::Debug {
    /// The SHA-1 of its SubjectPublicKeyInfo, as keyless clients name keys.
    fn ski(&self) -> Ski;
    /// What kind of key it is.
    fn kind(&self) -> KeyKind;
    /// Where it lives, for messages: a file path or a PKCS#11 URI.
    fn origin(&self) -> String;
    /// Where the server should run its operations.
    fn cost(&self) -> Cost;
    /// Signs `input`: a digest of `scheme`'s hash, or for Ed25519 the message itself. A
    /// scheme the key cannot do is `ErrorCode::CRYPTO`, as gokeyless answers.
    fn sign(&self, scheme: SignScheme, input: &[u8]) -> Result<Vec<u8>, ErrorCode>;
    /// RSA-decrypts `ciphertext` (exactly the modulus length).
    fn decrypt(&self, ciphertext: &[u8], how: Decryption) -> Result<Vec<u8>, ErrorCode>;
    /// The RSA modulus (big-endian), for the legacy digest index.
    fn rsa_modulus(&self) -> Option<Vec<u8>>;
    /// Runs `job` where this key's operations belong: for a key on a device ([`Cost::Device`]),
    /// queued to the device's own threads; otherwise right here.
    fn dispatch(&self, job: DeviceJob) {
        job(true)
    }
}

/// A place keys are found: by SKI, else by the legacy RSA digest; a request naming neither,
/// by the server name it carries (exact, then `*.domain`), else by its server IP.
pub trait KeyStore: Send + Sync + std::fmt::Debug {
    /// The key `op` names, if this store has it.
    fn find(&self, op: &Operation) -> Option<Arc<dyn PrivateKey>>;
    /// How many keys it serves.
    fn len(&self) -> usize;
    /// Whether it serves no key.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Where its keys come from, for messages (a directory, a token's URI).
    fn describe(&self) -> String;
}

/// The server's stores, asked in order: the first that has the key answers.
#[derive(Debug, Default, Clone)]
pub struct KeySet {
    stores: Vec<Arc<dyn KeyStore>>,
}

impl KeySet {
    /// The stores, asked in this order.
    pub fn new(stores: Vec<Arc<dyn KeyStore>>) -> KeySet {
        KeySet { stores }
    }

    /// Adds a store, asked after the others.
    pub fn push(&mut self, store: Arc<dyn KeyStore>) {
        self.stores.push(store);
    }

    /// The key `op` names, from the first store that has it.
    pub fn find(&self, op: &Operation) -> Option<Arc<dyn PrivateKey>> {
        self.stores.iter().find_map(|s| s.find(op))
    }

    /// Keys served, all stores together.
    pub fn len(&self) -> usize {
        self.stores.iter().map(|s| s.len()).sum()
    }

    /// Whether no store serves a key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stores, in order.
    pub fn stores(&self) -> &[Arc<dyn KeyStore>] {
        &self.stores
    }
}

impl<S: KeyStore + 'static> From<S> for KeySet {
    fn from(store: S) -> KeySet {
        KeySet::new(vec![Arc::new(store)])
    }
}
