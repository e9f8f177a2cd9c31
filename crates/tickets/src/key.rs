//! One ticket key: a 16-byte name, an HMAC-SHA256 secret and an AES-CBC key.

use crate::error::TicketError;
use zeroize::Zeroizing;

/// The key's strength, from the size of its record: 48-byte keys are AES-128 with a 16-byte
/// HMAC secret, 80-byte keys AES-256 with a 32-byte HMAC secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySize {
    /// AES-128 and a 16-byte HMAC secret (48-byte records).
    Aes128,
    /// AES-256 and a 32-byte HMAC secret (80-byte records).
    Aes256,
}

impl KeySize {
    /// Bytes of the AES key, which are also the bytes of the HMAC secret.
    pub fn secret_len(self) -> usize {
        match self {
            KeySize::Aes128 => 16,
            KeySize::Aes256 => 32,
        }
    }

    /// Bytes of a whole record: name + HMAC secret + AES key.
    pub fn record_len(self) -> usize {
        16 + 2 * self.secret_len()
    }

    /// The size whose records are `len` bytes long (48 or 80).
    pub fn from_record_len(len: usize) -> Option<KeySize> {
        match len {
            48 => Some(KeySize::Aes128),
            80 => Some(KeySize::Aes256),
            _ => None,
        }
    }

    /// `aes128` or `aes256`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeySize::Aes128 => "aes128",
            KeySize::Aes256 => "aes256",
        }
    }
}

/// A session-ticket key. Its secrets are wiped from memory when it is dropped and never shown
/// by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct TicketKey {
    name: [u8; 16],
    hmac: Zeroizing<Vec<u8>>,
    aes: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketKey")
            .field("name", &self.name_hex())
            .field("size", &self.size())
            .finish_non_exhaustive()
    }
}

impl TicketKey {
    /// A key from its parts; the HMAC secret and the AES key must both be 16 or both 32 bytes.
    pub fn new(name: [u8; 16], hmac: &[u8], aes: &[u8]) -> Result<TicketKey, TicketError> {
        if hmac.len() != aes.len() || !(hmac.len() == 16 || hmac.len() == 32) {
            return Err(TicketError::Invalid(format!(
                "a ticket key needs a 16+16 or 32+32 byte HMAC secret and AES key, got {}+{}",
                hmac.len(),
                aes.len()
            )));
        }
        Ok(TicketKey {
            name,
            hmac: Zeroizing::new(hmac.to_vec()),
            aes: Zeroizing::new(aes.to_vec()),
        })
    }

    /// A fresh random key.
    pub fn generate(size: KeySize) -> Result<TicketKey, TicketError> {
        let mut bytes = Zeroizing::new(vec![0u8; size.record_len()]);
        openssl::rand::rand_bytes(&mut bytes)?;
        let n = size.secret_len();
        let mut name = [0u8; 16];
        name.copy_from_slice(&bytes[..16]);
        TicketKey::new(name, &bytes[16..16 + n], &bytes[16 + n..])
    }

    /// The 16-byte key name that starts every ticket sealed with it.
    pub fn name(&self) -> &[u8; 16] {
        &self.name
    }

    /// The name in lowercase hex (the only part of a key that may be shown).
    pub fn name_hex(&self) -> String {
        self.name.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Its size.
    pub fn size(&self) -> KeySize {
        if self.aes.len() == 32 {
            KeySize::Aes256
        } else {
            KeySize::Aes128
        }
    }

    /// The HMAC-SHA256 secret.
    pub fn hmac_secret(&self) -> &[u8] {
        &self.hmac
    }

    /// The AES-CBC key.
    pub fn aes_key(&self) -> &[u8] {
        &self.aes
    }
}

/// Keys and which of them encrypts new tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySet {
    /// The keys, in the file's order.
    pub keys: Vec<TicketKey>,
    /// Index into `keys` of the key that encrypts.
    pub encrypt: usize,
}

impl KeySet {
    /// A set in which `keys[encrypt]` encrypts; an error if the index is out of range or names repeat.
    pub fn new(keys: Vec<TicketKey>, encrypt: usize) -> Result<KeySet, TicketError> {
        if encrypt >= keys.len() {
            return Err(TicketError::Invalid(format!(
                "encrypting key {encrypt} of a set of {}",
                keys.len()
            )));
        }
        Ok(KeySet { keys, encrypt })
    }

    /// The key that encrypts new tickets.
    pub fn encrypting(&self) -> &TicketKey {
        &self.keys[self.encrypt]
    }
}
