//! Entries whose private key is not on this machine.
//!
//! With [`LoadOptions::remote_keys`](crate::LoadOptions) set, a certificate of a source declared
//! keyless (`LoadOptions::remote_key_sources`) that comes without a private key (no key file, no
//! key block in its bundle) is loaded as a remote-key entry: the key is the one whose public
//! half the leaf certifies, identified on the key server by the SKI of that public key. A
//! missing key is never taken as a remote one elsewhere. The handshake asks the [`KeySource`] for an OpenSSL key object
//! (once per entry and thread, cached with the entry's other OpenSSL objects).

use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslContextBuilder, SslRef};
use openssl::x509::X509Ref;

/// Makes private keys for certificates whose key is held elsewhere (implemented by
/// `edgetls-engine` for keys on a key server).
pub trait KeySource: Send + Sync + 'static {
    /// A key object for `leaf` whose private operations happen remotely.
    fn private_key(&self, leaf: &X509Ref) -> Result<PKey<Private>, String>;

    /// Adjusts a connection that is about to use a remote key (e.g. removes cipher suites the
    /// remote key cannot serve). Called when the entry's chains are set on the connection.
    fn prepare(&self, ssl: &mut SslRef) -> Result<(), String> {
        let _ = ssl;
        Ok(())
    }

    /// The same for a context built to serve the entry (see `Materialized::apply_to_context`).
    fn prepare_context(&self, ctx: &mut SslContextBuilder) -> Result<(), String> {
        let _ = ctx;
        Ok(())
    }
}
