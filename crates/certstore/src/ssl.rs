//! OpenSSL glue: an entry's OpenSSL objects (built when a handshake first needs them, or at
//! load, and shared by every thread through the store's [`PreparedCache`](crate::PreparedCache)),
//! applied to a connection.
//!
//! No `SSL_CTX` is built per certificate (≈110 µs and ≈14 KiB each). The handshake's context
//! holds no certificate; the SNI (or client-hello) callback looks the entry up and sets its
//! chains and keys on the `SSL` itself (≈ 1.2 µs per chain). When an entry has an RSA and an
//! ECDSA chain, both are set, and OpenSSL serves the one that fits the client's signature
//! algorithms.

use crate::cert::{KeyType, KeyTypes};
use crate::ocsp::OcspCheck;
use crate::remote::KeySource;
use edgetls_tls::{Reason, TlsError, refuse};
use openssl::error::ErrorStack;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAlert, SslContextBuilder, SslRef};
use openssl::stack::Stack;
use openssl::x509::X509;
use std::sync::Arc;

pub(crate) struct ReadyChain {
    key_type: KeyType,
    leaf: X509,
    /// The intermediates, as the stack OpenSSL takes.
    chain: Stack<X509>,
    key: PKey<Private>,
    /// Estimated memory of the leaf and key (intermediates are shared between entries).
    bytes: usize,
    /// The OCSP response file's check, and its bytes (stapled when good or revoked).
    ocsp: Option<(OcspCheck, Arc<[u8]>)>,
}

impl ReadyChain {
    pub(crate) fn new(
        key_type: KeyType,
        leaf: X509,
        chain: Stack<X509>,
        key: PKey<Private>,
        leaf_der: usize,
        ocsp: Option<(OcspCheck, Arc<[u8]>)>,
    ) -> Self {
        // Measured with OpenSSL 3.0 (RSS over 10,000 entries): a parsed certificate holds its
        // DER and about as much again in decoded fields; a key 1–3 KiB plus its size.
        let bytes = 2 * leaf_der
            + 2048
            + 8 * key.size()
            + 1024
            + ocsp.as_ref().map_or(0, |(_, der)| der.len() + 64);
        ReadyChain {
            key_type,
            leaf,
            chain,
            key,
            bytes,
            ocsp,
        }
    }
}

/// An entry's chains and keys as OpenSSL objects, ready to set on a connection.
pub struct Materialized {
    chains: Vec<ReadyChain>,
    /// Set when a chain's key is remote: prepares the connection for it.
    remote: Option<Arc<dyn KeySource>>,
}

impl Materialized {
    pub(crate) fn new(chains: Vec<ReadyChain>, remote: Option<Arc<dyn KeySource>>) -> Self {
        Materialized { chains, remote }
    }

    /// The checks of the chains' OCSP responses (chains without a response file have none).
    pub fn ocsp_checks(&self) -> impl Iterator<Item = &OcspCheck> {
        self.chains
            .iter()
            .filter_map(|c| c.ocsp.as_ref().map(|(check, _)| check))
    }

    /// Estimated memory held, bytes (what the cache budget counts).
    pub fn bytes(&self) -> usize {
        256 + self.chains.iter().map(|c| c.bytes).sum::<usize>()
    }
}

impl std::fmt::Debug for Materialized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Materialized")
            .field("chains", &self.chains.len())
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl Materialized {
    /// Sets every chain (leaf, intermediates, key) on the connection. The connection's context
    /// must not carry certificates of its own, or a slot the entry does not fill keeps the
    /// context's certificate.
    pub fn apply(&self, ssl: &mut SslRef) -> Result<(), ErrorStack> {
        self.apply_types(ssl, KeyTypes::ALL)
    }

    /// Sets the chains of the key types in `types` on the connection (see [`apply`](Self::apply)).
    pub fn apply_types(&self, ssl: &mut SslRef, types: KeyTypes) -> Result<(), ErrorStack> {
        if let Some(remote) = &self.remote {
            if let Err(why) = remote.prepare(ssl) {
                let detail = format!("preparing the connection for its remote key: {why}");
                refuse(
                    ssl,
                    SslAlert::INTERNAL_ERROR,
                    Reason::CertificateUnusable,
                    detail,
                );
                return Err(ErrorStack::get());
            }
        }
        for chain in self.chains.iter().filter(|c| types.contains(c.key_type)) {
            edgetls_tls::use_chain(ssl, &chain.leaf, &chain.chain, &chain.key).map_err(stack)?;
            if let Some((check, der)) = &chain.ocsp {
                if check.state.is_stapled() {
                    edgetls_tls::staple::offer(ssl, &chain.leaf, der).map_err(stack)?;
                }
            }
        }
        Ok(())
    }
}

impl Materialized {
    /// Sets every chain on a context being built to serve this entry (one context per entry
    /// and settings, for servers that switch connections to it), and prepares it for remote
    /// keys.
    pub fn apply_to_context(&self, ctx: &mut SslContextBuilder) -> Result<(), ErrorStack> {
        if let Some(remote) = &self.remote {
            remote.prepare_context(ctx).map_err(|_| ErrorStack::get())?;
        }
        for chain in &self.chains {
            edgetls_tls::use_chain_on_context(ctx, &chain.leaf, &chain.chain, &chain.key)
                .map_err(stack)?;
        }
        Ok(())
    }
}

/// The library's errors behind a seam error (what this crate's OpenSSL-facing calls report).
pub(crate) fn stack(e: TlsError) -> ErrorStack {
    match e {
        TlsError::Library(stack) => stack,
        _ => ErrorStack::get(),
    }
}
