//! The ticket format OpenSSL writes with these keys (RFC 5077's recommended layout), in Rust:
//! `key name (16) ‖ IV (16) ‖ AES-CBC(state, PKCS#7 padding) ‖ HMAC-SHA256 over all before`.
//! Used to check OpenSSL's tickets against our keys, by tools, and to measure the cost.

use crate::error::TicketError;
use crate::key::{KeySize, TicketKey};
use crate::mac::set_hmac_key;
use crate::ring::TicketKeys;
use openssl::memcmp;
use openssl::symm::{Cipher, Crypter, Mode};
use std::sync::OnceLock;
use zeroize::Zeroizing;

const MAC_LEN: usize = 32;

/// What [`open`] found.
#[derive(Debug)]
pub enum Opened {
    /// The sealed state; `renew` when the key no longer encrypts.
    State {
        plaintext: Zeroizing<Vec<u8>>,
        renew: bool,
    },
    /// Unknown or expired key name: a full handshake.
    UnknownKey,
    /// A known key but a bad MAC or padding, or a truncated ticket: a full handshake.
    Invalid,
}

fn cipher(key: &TicketKey) -> Cipher {
    match key.size() {
        KeySize::Aes128 => Cipher::aes_128_cbc(),
        KeySize::Aes256 => Cipher::aes_256_cbc(),
    }
}

/// Seals `plaintext` under the ring's encrypting key.
pub fn seal(keys: &TicketKeys, plaintext: &[u8]) -> Result<Vec<u8>, TicketError> {
    let key = keys.encrypting();
    let mut iv = [0u8; 16];
    openssl::rand::rand_bytes(&mut iv)?;
    let mut out = Vec::with_capacity(16 + 16 + plaintext.len() + 16 + MAC_LEN);
    out.extend_from_slice(key.name());
    out.extend_from_slice(&iv);
    let mut c = Crypter::new(cipher(&key), Mode::Encrypt, key.aes_key(), Some(&iv))?;
    let start = out.len();
    out.resize(start + plaintext.len() + 16, 0);
    let n = c.update(plaintext, &mut out[start..])?;
    let m = c.finalize(&mut out[start + n..])?;
    out.truncate(start + n + m);
    let mac = hmac(key.hmac_secret(), &out)?;
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
    let want = hmac(found.key.hmac_secret(), body)?;
    if !memcmp::eq(&want, mac) {
        return Ok(Opened::Invalid);
    }
    let (iv, ciphertext) = body[16..].split_at(16);
    let mut c = Crypter::new(
        cipher(&found.key),
        Mode::Decrypt,
        found.key.aes_key(),
        Some(iv),
    )?;
    let mut plaintext = Zeroizing::new(vec![0u8; ciphertext.len() + 16]);
    let Ok(n) = c.update(ciphertext, &mut plaintext) else {
        return Ok(Opened::Invalid);
    };
    let Ok(m) = c.finalize(&mut plaintext[n..]) else {
        return Ok(Opened::Invalid);
    };
    plaintext.truncate(n + m);
    Ok(Opened::State {
        plaintext,
        renew: !found.current,
    })
}

/// The HMAC algorithm, fetched once.
fn hmac_alg() -> Result<usize, TicketError> {
    static MAC: OnceLock<usize> = OnceLock::new();
    // SAFETY: fetching an algorithm by name; the result is checked and never freed (one per
    // process).
    let mac = *MAC.get_or_init(|| unsafe {
        openssl_sys::EVP_MAC_fetch(std::ptr::null_mut(), c"HMAC".as_ptr(), std::ptr::null())
            as usize
    });
    if mac == 0 {
        return Err(openssl::error::ErrorStack::get().into());
    }
    Ok(mac)
}

fn hmac(key: &[u8], data: &[u8]) -> Result<[u8; MAC_LEN], TicketError> {
    let mac = hmac_alg()?;
    let mut out = [0u8; MAC_LEN];
    let mut len = 0usize;
    // SAFETY: the MAC context is created, checked, used with buffers of the stated sizes and
    // freed on every path.
    unsafe {
        let ctx = openssl_sys::EVP_MAC_CTX_new(mac as *mut openssl_sys::EVP_MAC);
        if ctx.is_null() {
            return Err(openssl::error::ErrorStack::get().into());
        }
        let ok = set_hmac_key(ctx, key)
            && openssl_sys::EVP_MAC_init(ctx, std::ptr::null(), 0, std::ptr::null()) == 1
            && openssl_sys::EVP_MAC_update(ctx, data.as_ptr(), data.len()) == 1
            && openssl_sys::EVP_MAC_final(ctx, out.as_mut_ptr(), &mut len, out.len()) == 1;
        openssl_sys::EVP_MAC_CTX_free(ctx);
        if !ok || len != MAC_LEN {
            return Err(openssl::error::ErrorStack::get().into());
        }
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
