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
use crate::error::CertStoreError;
use crate::ffi;
use crate::ocsp::{OcspCheck, OcspState};
use crate::remote::KeySource;
use crate::store::CertStore;
use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::error::ErrorStack;
use openssl::ex_data::Index;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{NameType, SniError, Ssl, SslAlert, SslContextBuilder, SslRef};
use openssl::stack::Stack;
use openssl::x509::X509;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

pub(crate) struct ReadyChain {
    key_type: KeyType,
    leaf: X509,
    /// The intermediates, as the stack OpenSSL takes.
    chain: Stack<X509>,
    key: PKey<Private>,
    /// Estimated memory of the leaf and key (intermediates are shared between entries).
    bytes: usize,
    /// The OCSP response file's check, and its bytes (stapled only when good).
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
            // The reason was recorded by the implementation; OpenSSL only needs a failure.
            remote.prepare(ssl).map_err(|_| ErrorStack::get())?;
        }
        for chain in self.chains.iter().filter(|c| types.contains(c.key_type)) {
            // One call instead of SSL_use_certificate + SSL_use_PrivateKey + one
            // SSL_add1_chain_cert per intermediate: 1.2 µs instead of 3.3–3.9 µs here (those
            // repeat the key-type lookup and the key check).
            // SAFETY: all four objects are live for the call; OpenSSL takes its own references
            // (it up-refs the certificate, the key and each chain certificate) and replaces what
            // the slot held.
            let ok = unsafe {
                ffi::SSL_use_cert_and_key(
                    ssl.as_ptr(),
                    chain.leaf.as_ptr(),
                    chain.key.as_ptr(),
                    chain.chain.as_ptr(),
                    1,
                )
            };
            if ok != 1 {
                return Err(ErrorStack::get());
            }
            if let Some((check, der)) = &chain.ocsp {
                if check.state == OcspState::Good {
                    crate::ocsp::offer(ssl, &chain.leaf, der)?;
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
            // SAFETY: as in `apply`, for a context under construction.
            let ok = unsafe {
                ffi::SSL_CTX_use_cert_and_key(
                    ctx.as_ptr(),
                    chain.leaf.as_ptr(),
                    chain.key.as_ptr(),
                    chain.chain.as_ptr(),
                    1,
                )
            };
            if ok != 1 {
                return Err(ErrorStack::get());
            }
        }
        Ok(())
    }
}

/// The OpenSSL objects of the entry `store` selects for `name` and `local`, from the store's
/// shared cache. `None` when nothing matches or the match is a tunnel; an error when the entry
/// cannot be materialized.
pub fn materialize(
    store: &CertStore,
    name: Option<&str>,
    local: Option<SocketAddr>,
) -> Result<Option<(u64, Arc<Materialized>)>, CertStoreError> {
    let snapshot = store.snapshot();
    let Some(selected) = snapshot.lookup(name, local) else {
        return Ok(None);
    };
    if selected.entry.is_tunnel() {
        return Ok(None);
    }
    let id = selected.entry.id;
    store.prepared(selected.entry).map(|m| Some((id, m)))
}

/// The ex_data slot where a server stores a connection's local address (`SocketAddr`) before
/// the handshake, so address-based entries (`dest_ip`) can be selected.
/// Fails only if OpenSSL cannot allocate the index (out of memory).
pub fn local_addr_index() -> Result<Index<Ssl, SocketAddr>, ErrorStack> {
    static INDEX: OnceLock<Result<Index<Ssl, SocketAddr>, ErrorStack>> = OnceLock::new();
    INDEX.get_or_init(Ssl::new_ex_index).clone()
}

/// Why a callback refused a connection: kept on the SSL (see [`refusal_index`]) so whoever
/// drives the handshake can count and log the real reason, not only the alert the client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A short, fixed label for metrics (`unrecognized_name`, `tunnel_name`,
    /// `certificate_unusable`, `settings_unusable`, `internal`).
    pub reason: &'static str,
    /// What exactly happened (names the server name, the file or OpenSSL's message).
    pub detail: String,
}

/// The ex_data slot holding a connection's [`Refusal`], set by the callbacks of this crate
/// and of `edgetls-policy` when they end a handshake.
pub fn refusal_index() -> Result<Index<Ssl, Refusal>, ErrorStack> {
    static INDEX: OnceLock<Result<Index<Ssl, Refusal>, ErrorStack>> = OnceLock::new();
    INDEX.get_or_init(Ssl::new_ex_index).clone()
}

/// Records why `ssl` is refused and returns the alert to end it with.
pub fn refuse(
    ssl: &mut SslRef,
    alert: SslAlert,
    reason: &'static str,
    detail: impl Into<String>,
) -> SslAlert {
    if let Ok(i) = refusal_index() {
        ssl.set_ex_data(
            i,
            Refusal {
                reason,
                detail: detail.into(),
            },
        );
    }
    alert
}

/// An SNI callback for `SslContextBuilder::set_servername_callback` that selects the entry for
/// each connection from the store's current snapshot and sets its certificates (from the
/// store's shared cache).
/// No match (and no default) ends the handshake with `unrecognized_name`.
pub fn servername_callback(
    store: Arc<CertStore>,
) -> impl Fn(&mut SslRef, &mut SslAlert) -> Result<(), SniError> + Send + Sync + 'static {
    move |ssl, alert| {
        // Nothing may unwind into OpenSSL: a panic here becomes an internal-error alert.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| select(&store, ssl, alert)))
            .unwrap_or_else(|_| {
                *alert = SslAlert::INTERNAL_ERROR;
                Err(SniError::ALERT_FATAL)
            })
    }
}

fn select(store: &CertStore, ssl: &mut SslRef, alert: &mut SslAlert) -> Result<(), SniError> {
    let local = local_addr_index()
        .ok()
        .and_then(|i| ssl.ex_data(i).copied());
    let sni = ssl.servername(NameType::HOST_NAME).map(str::to_string);
    apply_certificate(store, ssl, sni.as_deref(), local).map_err(|a| {
        *alert = a;
        SniError::ALERT_FATAL
    })
}

/// Sets on `ssl` the certificates of the entry `store` selects for `name` (a server name, or
/// the name a policy chose) and the local address, from the store's shared cache. The error is the
/// alert to end the handshake with: `unrecognized_name` when nothing matches (or the match is
/// a tunnel), `internal_error` when the entry's objects cannot be built or OpenSSL refuses
/// them; the reason is recorded on `ssl` ([`refusal_index`]).
pub fn apply_certificate(
    store: &CertStore,
    ssl: &mut SslRef,
    name: Option<&str>,
    local: Option<SocketAddr>,
) -> Result<(), SslAlert> {
    let snapshot = store.snapshot();
    let Some(selected) = snapshot.lookup(name, local) else {
        return Err(no_certificate(ssl, name));
    };
    // One chain per key type, possibly from different entries (an RSA and an ECDSA crt-list
    // line for one name): all are set, and OpenSSL serves the one the client's signature
    // algorithms and ciphers can use.
    for served in selected.served() {
        if served.entry.is_tunnel() {
            // Tunnelled names are passed through before TLS is terminated; reaching here means
            // the caller terminated one anyway.
            return Err(tunnel_name(ssl, name));
        }
        let applied = store
            .prepared(served.entry)
            .map_err(|e| e.to_string())
            .and_then(|ready| {
                ready
                    .apply_types(ssl, served.types)
                    .map_err(|e| format!("OpenSSL refused it: {e}"))
            });
        if let Err(detail) = applied {
            let detail = format!("{}: {detail}", served.entry.path().display());
            return Err(refuse(
                ssl,
                SslAlert::INTERNAL_ERROR,
                "certificate_unusable",
                detail,
            ));
        }
    }
    Ok(())
}

/// Records that no certificate serves `name`; the alert for it.
pub fn no_certificate(ssl: &mut SslRef, name: Option<&str>) -> SslAlert {
    refuse(
        ssl,
        SslAlert::UNRECOGNIZED_NAME,
        "unrecognized_name",
        format!("no certificate for {}", name.unwrap_or("<no server name>")),
    )
}

/// Records that `name` is tunnelled, not terminated; the alert for it.
pub fn tunnel_name(ssl: &mut SslRef, name: Option<&str>) -> SslAlert {
    refuse(
        ssl,
        SslAlert::UNRECOGNIZED_NAME,
        "tunnel_name",
        format!(
            "{} is tunnelled, not terminated here",
            name.unwrap_or("<no server name>")
        ),
    )
}

/// The server name the ClientHello being processed asks for, lowercased (for ClientHello
/// callbacks, which run before OpenSSL has processed the server_name extension).
pub fn client_hello_server_name(ssl: &SslRef) -> Option<String> {
    let mut p: *const u8 = std::ptr::null();
    let mut len: usize = 0;
    // SAFETY: called from the ClientHello callback on a live SSL; OpenSSL points `p` into its
    // copy of the ClientHello, valid during the callback, and the bytes are copied out here.
    unsafe {
        if openssl_sys::SSL_client_hello_get0_ext(ssl.as_ptr(), 0, &mut p, &mut len) != 1
            || p.is_null()
        {
            return None;
        }
        server_name_extension(std::slice::from_raw_parts(p, len))
    }
}

/// The host name (lowercased) in the body of a ClientHello's server_name extension
/// (RFC 6066), if well formed: for code that reads ClientHellos itself.
pub fn server_name_extension(ext: &[u8]) -> Option<String> {
    let list = ext.get(2..)?;
    let len = usize::from(u16::from_be_bytes([*ext.first()?, *ext.get(1)?]));
    let list = list.get(..len)?;
    // One entry: type 0 (host_name), a 2-byte length, the name.
    if *list.first()? != 0 {
        return None;
    }
    let n = usize::from(u16::from_be_bytes([*list.get(1)?, *list.get(2)?]));
    // RFC 6066: HostName is 1 to 2^16-1 bytes; an empty one is no name.
    let name = list.get(3..3 + n).filter(|n| !n.is_empty())?;
    std::str::from_utf8(name).ok().map(str::to_ascii_lowercase)
}

#[cfg(test)]
mod tests {
    use super::server_name_extension as server_name;

    #[test]
    fn an_empty_host_name_is_no_name() {
        assert_eq!(server_name(&[0, 3, 0, 0, 0]), None);
    }

    #[test]
    fn server_name_extension_parsing_survives_any_input() {
        let mut ext = vec![0, 12, 0, 0, 9];
        ext.extend_from_slice(b"Site.Test");
        assert_eq!(server_name(&ext).as_deref(), Some("site.test"));
        for cut in 0..ext.len() {
            assert_eq!(server_name(&ext[..cut]), None, "truncated at {cut}");
        }
        assert_eq!(server_name(&[0, 3, 1, 0, 0]), None, "not a host_name entry");
        assert_eq!(server_name(&[0xff, 0xff, 0, 0xff, 0xff]), None);
    }
}
