//! Remote keys for the certificate store: entries loaded without a private key get one from
//! here, made by the engine from the leaf's public key.

use crate::keys::key::remote_pkey;
use crate::keys::remote::RemoteKey;
use edgetls_certstore::KeySource;
use edgetls_tls::remote_key::{restrict_ssl_to_ecdhe, restrict_to_ecdhe};
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslContextBuilder, SslRef};
use openssl::x509::X509Ref;
use std::sync::Arc;

/// Plugs a [`RemoteKey`] (e.g. [`crate::KeylessKey`]) into `LoadOptions::remote_keys`: every
/// certificate loaded without a key is served with the key server's key for its SKI, and its
/// connections drop static-RSA suites.
#[derive(Clone)]
pub struct StoreKeys {
    remote: Arc<dyn RemoteKey>,
}

impl std::fmt::Debug for StoreKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreKeys").finish_non_exhaustive()
    }
}

impl StoreKeys {
    /// Every certificate without a key of its own is served by `remote`, by its SKI.
    pub fn new(remote: Arc<dyn RemoteKey>) -> StoreKeys {
        StoreKeys { remote }
    }
}

impl KeySource for StoreKeys {
    fn private_key(&self, leaf: &X509Ref) -> Result<PKey<Private>, String> {
        remote_pkey(leaf, Arc::clone(&self.remote)).map_err(|e| e.to_string())
    }

    fn prepare(&self, ssl: &mut SslRef) -> Result<(), String> {
        restrict_ssl_to_ecdhe(ssl).map_err(|e| e.to_string())
    }

    fn prepare_context(&self, ctx: &mut SslContextBuilder) -> Result<(), String> {
        restrict_to_ecdhe(ctx).map_err(|e| e.to_string())
    }
}
