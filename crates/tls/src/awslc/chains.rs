//! Chains and keys on AWS-LC, and which one a connection serves.
//!
//! AWS-LC keeps an RSA and an ECDSA chain side by side and picks by the client's signature
//! algorithms, as OpenSSL does — but only among chains whose key it holds. A remote key signs
//! through the private-key method, which AWS-LC has one of per connection, not per chain. So
//! where a connection has two chains and one is remote, the ClientHello hook's caller
//! ([`settle`]) picks the chain itself, as AWS-LC would, and keeps only that one.

use crate::TlsError;
use crate::ossl::remote_key::Binding;
use foreign_types::ForeignTypeRef;
use openssl::ex_data::Index;
use openssl::pkey::{Id, PKey, PKeyRef, Private};
use openssl::ssl::{Ssl, SslContext, SslContextBuilder, SslRef};
use openssl::stack::{Stack, StackRef};
use openssl::x509::{X509, X509Ref};
use std::sync::{Mutex, OnceLock};

/// One chain set on a connection or a context.
struct Chain {
    leaf: X509,
    chain: Stack<X509>,
    key: PKey<Private>,
    remote: Option<Binding>,
    ecdsa: bool,
}

/// The chains set on a connection or a context (at most one per key type).
#[derive(Default)]
struct Chains(Vec<Chain>);

impl Chains {
    fn put(&mut self, c: Chain) {
        self.0.retain(|o| o.ecdsa != c.ecdsa);
        self.0.push(c);
    }

    /// The remote key that signs with `ecdsa` (or the only remote key).
    fn remote(&self, ecdsa: bool) -> Option<Binding> {
        let mut remote = self.0.iter().filter(|c| c.remote.is_some());
        let first = remote.next()?;
        let fit = std::iter::once(first)
            .chain(remote)
            .find(|c| c.ecdsa == ecdsa)
            .unwrap_or(first);
        fit.remote.clone()
    }
}

fn ssl_index() -> Result<Index<Ssl, Chains>, TlsError> {
    static I: OnceLock<Result<Index<Ssl, Chains>, openssl::error::ErrorStack>> = OnceLock::new();
    Ok(I.get_or_init(Ssl::new_ex_index).clone()?)
}

fn ctx_index() -> Result<Index<SslContext, Mutex<Chains>>, TlsError> {
    static I: OnceLock<Result<Index<SslContext, Mutex<Chains>>, openssl::error::ErrorStack>> =
        OnceLock::new();
    Ok(I.get_or_init(SslContext::new_ex_index).clone()?)
}

fn entry<T>(leaf: &X509Ref, chain: &StackRef<X509>, key: &PKeyRef<T>) -> Result<Chain, TlsError> {
    let mut owned = Stack::new()?;
    for c in chain {
        owned.push(c.to_owned())?;
    }
    // SAFETY: an up-ref of the live key under the Private marker, as the caller holds it.
    let key: PKey<Private> = unsafe {
        openssl_sys::EVP_PKEY_up_ref(key.as_ptr());
        foreign_types::ForeignType::from_ptr(key.as_ptr())
    };
    Ok(Chain {
        leaf: leaf.to_owned(),
        chain: owned,
        remote: super::remote_key::binding_of(&key),
        ecdsa: key.id() == Id::EC,
        key,
    })
}

fn check(ok: std::ffi::c_int) -> Result<(), TlsError> {
    if ok == 1 {
        Ok(())
    } else {
        Err(openssl::error::ErrorStack::get().into())
    }
}

/// Sets `c` on the connection (replacing its key type's slot).
fn apply(ssl: &mut SslRef, c: &Chain) -> Result<(), TlsError> {
    // SAFETY: all objects are live; AWS-LC copies the certificates (as DER buffers) and
    // up-refs the key; the key method is a static.
    unsafe {
        check(openssl_sys::SSL_use_cert_and_key(
            ssl.as_ptr(),
            c.leaf.as_ptr(),
            c.key.as_ptr(),
            c.chain.as_ptr(),
            1,
        ))?;
        if c.remote.is_some() {
            openssl_sys::SSL_set_private_key_method(ssl.as_ptr(), super::key_method::method());
        }
    }
    Ok(())
}

/// `use_chain` on AWS-LC.
pub(crate) fn use_chain<T>(
    ssl: &mut SslRef,
    leaf: &X509Ref,
    chain: &StackRef<X509>,
    key: &PKeyRef<T>,
) -> Result<(), TlsError> {
    let c = entry(leaf, chain, key)?;
    apply(ssl, &c)?;
    let index = ssl_index()?;
    match ssl.ex_data_mut(index) {
        Some(chains) => chains.put(c),
        None => {
            let mut chains = Chains::default();
            chains.put(c);
            ssl.set_ex_data(index, chains);
        }
    }
    Ok(())
}

/// `use_chain_on_context` on AWS-LC (one remote key per context: the last one set signs).
pub(crate) fn use_chain_on_context<T>(
    ctx: &mut SslContextBuilder,
    leaf: &X509Ref,
    chain: &StackRef<X509>,
    key: &PKeyRef<T>,
) -> Result<(), TlsError> {
    let c = entry(leaf, chain, key)?;
    // SAFETY: as in `apply`, for a context under construction.
    unsafe {
        check(openssl_sys::SSL_CTX_use_cert_and_key(
            ctx.as_ptr(),
            c.leaf.as_ptr(),
            c.key.as_ptr(),
            c.chain.as_ptr(),
            1,
        ))?;
        if c.remote.is_some() {
            openssl_sys::SSL_CTX_set_private_key_method(ctx.as_ptr(), super::key_method::method());
        }
    }
    let index = ctx_index()?;
    // SAFETY: the builder's context is live; read through its shared reference for the call.
    let built = unsafe { openssl::ssl::SslContextRef::from_ptr(ctx.as_ptr()) };
    match built.ex_data(index) {
        Some(chains) => chains.lock().unwrap_or_else(|p| p.into_inner()).put(c),
        None => {
            let mut chains = Chains::default();
            chains.put(c);
            ctx.set_ex_data(index, Mutex::new(chains));
        }
    }
    Ok(())
}

/// The remote key that signs for `ssl` with a key of type `ecdsa`: the connection's own, else
/// its context's.
pub(crate) fn remote_for(ssl: &SslRef, ecdsa: bool) -> Option<Binding> {
    if let Some(b) = ssl_index()
        .ok()
        .and_then(|i| ssl.ex_data(i))
        .and_then(|c| c.remote(ecdsa))
    {
        return Some(b);
    }
    ctx_index()
        .ok()
        .and_then(|i| ssl.ssl_context().ex_data(i))
        .and_then(|c| c.lock().unwrap_or_else(|p| p.into_inner()).remote(ecdsa))
}

/// After the ClientHello hook: where the connection has two chains and a remote key among
/// them, keeps only the one AWS-LC would pick for this client (ECDSA when the client can
/// verify it, else RSA).
pub(crate) fn settle(ssl: &mut SslRef) {
    let Ok(index) = ssl_index() else { return };
    let Some(chains) = ssl.ex_data(index) else {
        return;
    };
    if chains.0.len() < 2 || chains.0.iter().all(|c| c.remote.is_none()) {
        return;
    }
    let want_ecdsa = chains
        .0
        .iter()
        .find(|c| c.ecdsa)
        .is_some_and(|c| client_verifies_ecdsa(ssl, &c.key));
    let Some(pick) = chains.0.iter().position(|c| c.ecdsa == want_ecdsa) else {
        return;
    };
    let Some(mut chains) = ssl.ex_data_mut(index).map(std::mem::take) else {
        return;
    };
    let chosen = chains.0.swap_remove(pick);
    // SAFETY: clears the live connection's chains and keys (it holds its own copies).
    unsafe { openssl_sys::SSL_certs_clear(ssl.as_ptr()) };
    let _ = apply(ssl, &chosen);
    ssl.set_ex_data(index, Chains(vec![chosen]));
}

/// Whether the client's ClientHello lets the server sign with the ECDSA key `key`: the
/// signature scheme for its curve is offered (TLS 1.3 binds curve and hash) and, for a client
/// without TLS 1.3, an ECDHE-ECDSA suite too.
fn client_verifies_ecdsa(ssl: &SslRef, key: &PKeyRef<Private>) -> bool {
    let hello = crate::ClientHello::of(ssl);
    let scheme: u16 = match key.ec_key().ok().and_then(|k| k.group().curve_name()) {
        Some(openssl::nid::Nid::X9_62_PRIME256V1) => 0x0403,
        Some(openssl::nid::Nid::SECP384R1) => 0x0503,
        Some(openssl::nid::Nid::SECP521R1) => 0x0603,
        _ => return false,
    };
    let offered = hello
        .extension(13)
        .and_then(|e| e.get(2..))
        .is_some_and(|list| {
            list.chunks_exact(2)
                .any(|s| u16::from_be_bytes([s[0], s[1]]) == scheme)
        });
    if !offered {
        return false;
    }
    let tls13 = hello
        .extension(43)
        .and_then(|e| e.get(1..))
        .is_some_and(|v| v.chunks_exact(2).any(|s| s == [3, 4]));
    tls13
        || hello.cipher_suites().any(|s| {
            matches!(
                s,
                0xC009 | 0xC00A | 0xC023 | 0xC024 | 0xC02B | 0xC02C | 0xCCA9
            )
        })
}
