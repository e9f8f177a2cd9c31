//! The lookup tables a store keeps: by SKI, by the legacy RSA digest, and — from certificates
//! found beside the keys — by DNS name and IP address, as gokeyless selects keys.

use super::PrivateKey;
use edgetls_keyless_proto::{Digest, Operation, Ski};
use openssl::x509::X509Ref;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Keys by SKI, digest, name and address.
#[derive(Debug, Default)]
pub struct KeyIndex {
    by_ski: HashMap<Ski, Arc<dyn PrivateKey>>,
    by_digest: HashMap<Digest, Arc<dyn PrivateKey>>,
    /// DNS names (lower case; `*.domain` as written) of certificates whose key is here.
    by_name: HashMap<String, Arc<dyn PrivateKey>>,
    by_ip: HashMap<IpAddr, Arc<dyn PrivateKey>>,
}

/// What a certificate tells about its key: the SKI and the names it covers.
#[derive(Debug)]
pub(crate) struct CertNames {
    pub ski: Ski,
    pub names: Vec<String>,
    pub ips: Vec<IpAddr>,
}

impl CertNames {
    pub(crate) fn of(cert: &X509Ref) -> Option<CertNames> {
        let spki = cert.public_key().ok()?.public_key_to_der().ok()?;
        let ski = Ski::from_spki_der(&spki).ok()?;
        let (mut names, mut ips) = (Vec::new(), Vec::new());
        for n in cert.subject_alt_names().iter().flatten() {
            if let Some(d) = n.dnsname() {
                names.push(d.to_ascii_lowercase());
            } else if let Some(ip) = n.ipaddress() {
                match ip.len() {
                    4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(ip).ok()?)),
                    16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(ip).ok()?)),
                    _ => {}
                }
            }
        }
        Some(CertNames { ski, names, ips })
    }
}

impl KeyIndex {
    /// Adds a key (a later key with the same SKI replaces the earlier one).
    pub fn insert(&mut self, key: Arc<dyn PrivateKey>) {
        if let Some(n) = key.rsa_modulus() {
            self.by_digest
                .insert(Digest::of_rsa_modulus(&n), Arc::clone(&key));
        }
        self.by_ski.insert(key.ski(), key);
    }

    /// Indexes the key of `cert`, if held here, by its names and addresses (the first
    /// certificate to claim a name keeps it).
    pub(crate) fn add_names(&mut self, cert: CertNames) {
        let Some(key) = self.by_ski.get(&cert.ski).cloned() else {
            return;
        };
        for n in cert.names {
            self.by_name.entry(n).or_insert_with(|| Arc::clone(&key));
        }
        for ip in cert.ips {
            self.by_ip.entry(ip).or_insert_with(|| Arc::clone(&key));
        }
    }

    /// The key a request names: by SKI, else by digest; a request with neither, by the
    /// server name it carries (exact, then the `*.domain` wildcard), else by its server IP.
    pub fn find(&self, op: &Operation) -> Option<&Arc<dyn PrivateKey>> {
        if op.ski.is_some() || op.digest.is_some() {
            return op
                .ski
                .and_then(|ski| self.by_ski.get(&ski))
                .or_else(|| op.digest.and_then(|d| self.by_digest.get(&d)));
        }
        let by_name = op.sni.as_deref().and_then(|sni| {
            let sni = sni.to_ascii_lowercase();
            self.by_name.get(&sni).or_else(|| {
                let (_, domain) = sni.split_once('.')?;
                self.by_name.get(&format!("*.{domain}"))
            })
        });
        by_name.or_else(|| op.server_ip.and_then(|ip| self.by_ip.get(&ip)))
    }

    /// Keys indexed.
    pub fn len(&self) -> usize {
        self.by_ski.len()
    }

    /// Whether no key is indexed.
    pub fn is_empty(&self) -> bool {
        self.by_ski.is_empty()
    }
}
