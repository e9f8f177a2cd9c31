//! The ticket format OpenSSL writes with these keys (RFC 5077's recommended layout), in Rust:
//! `key name (16) ‖ IV (16) ‖ AES-CBC(state, PKCS#7 padding) ‖ HMAC-SHA256 over all before`.
//! Used to check OpenSSL's tickets against our keys, by tools, and to measure the cost.

use crate::error::TicketError;
use crate::key::{KeySize, TicketKey};
use crate::ring::TicketKeys;
use openssl::cipher::CipherRef;
use openssl::cipher_ctx::CipherCtx;
use openssl::hash::MessageDigest;
use openssl::memcmp;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use zeroize::Zeroizing;

const MAC_LEN: usize = 32;

/// What [`open`] found.
#[derive(Debug)]
pub enum Opened {
    /// The sealed state; `renew` when the key no longer encrypts.
    State {
        /// The state that was sealed.
        plaintext: Zeroizing<Vec<u8>>,
        /// The key no longer encrypts: send a new ticket.
        renew: bool,
    },
    /// Unknown or expired key name: a full handshake.
    UnknownKey,
    /// A known key but a bad MAC or padding, or a truncated ticket: a full handshake.
    Invalid,
}

/// AES-128-CBC or AES-256-CBC, looked up once (the seam's [`aes_cbc`](edgetls_tls::library::aes_cbc)).
fn cipher(key: &TicketKey) -> Result<&'static CipherRef, TicketError> {
    let len = match key.size() {
        KeySize::Aes128 => 16,
        KeySize::Aes256 => 32,
    };
    edgetls_tls::library::aes_cbc(len)
        .ok_or_else(|| TicketError::OpenSsl(openssl::error::ErrorStack::get()))
}

/// Seals `plaintext` under the ring's encrypting key.
pub fn seal(keys: &TicketKeys, plaintext: &[u8]) -> Result<Vec<u8>, TicketError> {
    let key = keys.encrypting();
    let mut iv = [0u8; 16];
    openssl::rand::rand_bytes(&mut iv)?;
    let mut out = Vec::with_capacity(16 + 16 + plaintext.len() + 16 + MAC_LEN);
    out.extend_from_slice(key.name());
    out.extend_from_slice(&iv);
    let mut c = CipherCtx::new()?;
    c.encrypt_init(Some(cipher(&key)?), Some(key.aes_key()), Some(&iv))?;
    c.cipher_update_vec(plaintext, &mut out)?;
    c.cipher_final_vec(&mut out)?;
    let mac = hmac(&key, &out)?;
    out.extend_from_slice(&mac);
    Ok(out)
}

/// Opens a ticket sealed by [`seal`] or by OpenSSL with these keys.
pub fn open(keys: &TicketKeys, ticket: &[u8]) -> Result<Opened, TicketError> {
    if ticket.len() < 16 + 16 + 16 + MAC_LEN {
        return Ok(Opened::Invalid);
    }
    let Some(found) = keys.find(&ticket[..16]) else {
        return Ok(Opened::UnknownKey);
    };
    let (body, mac) = ticket.split_at(ticket.len() - MAC_LEN);
    let want = hmac(&found.key, body)?;
    if !memcmp::eq(&want, mac) {
        return Ok(Opened::Invalid);
    }
    let (iv, ciphertext) = body[16..].split_at(16);
    let mut c = CipherCtx::new()?;
    c.decrypt_init(
        Some(cipher(&found.key)?),
        Some(found.key.aes_key()),
        Some(iv),
    )?;
    let mut plaintext = Zeroizing::new(Vec::with_capacity(ciphertext.len() + 16));
    if c.cipher_update_vec(ciphertext, &mut plaintext).is_err()
        || c.cipher_final_vec(&mut plaintext).is_err()
    {
        return Ok(Opened::Invalid);
    }
    Ok(Opened::State {
        plaintext,
        renew: !found.current,
    })
}

/// HMAC-SHA256 of `data` under the key's HMAC secret.
fn hmac(key: &TicketKey, data: &[u8]) -> Result<[u8; MAC_LEN], TicketError> {
    let secret = PKey::hmac(key.hmac_secret())?;
    let mut signer = Signer::new(MessageDigest::sha256(), &secret)?;
    signer.update(data)?;
    let mut out = [0u8; MAC_LEN];
    let n = signer.sign(&mut out)?;
    if n != MAC_LEN {
        return Err(openssl::error::ErrorStack::get().into());
    }
    Ok(out)
}

/// The ticket a client holds in `session` (as OpenSSL stores it), for checking and tools.
pub fn ticket_of(session: &openssl::ssl::SslSessionRef) -> Option<Vec<u8>> {
    use foreign_types::ForeignTypeRef;
    let mut p: *const u8 = std::ptr::null();
    let mut len = 0usize;
    // SAFETY: the session is live; OpenSSL returns a pointer into it (or NULL) and its length,
    // copied out before the borrow ends.
    unsafe {
        crate::ffi::SSL_SESSION_get0_ticket(session.as_ptr(), &mut p, &mut len);
        (!p.is_null() && len > 0).then(|| std::slice::from_raw_parts(p, len).to_vec())
    }
}
