//! A throwaway PKI written to a temporary directory.

use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::symm::Cipher;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::path::PathBuf;
use std::sync::OnceLock;

pub struct Pki {
    pub dir: tempfile::TempDir,
    ca: Issuer<'static, KeyPair>,
}

/// A generated leaf: certificate PEM and key PEM (PKCS#8).
pub struct Leaf {
    pub cert: String,
    pub key: String,
}

/// RSA keys are slow to make: every test shares one.
fn rsa_key_pem() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        let pkey = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        String::from_utf8(pkey.private_key_to_pem_pkcs8().unwrap()).unwrap()
    })
}

impl Pki {
    pub fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "test root");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        Pki {
            dir: tempfile::tempdir().unwrap(),
            ca: Issuer::new(params, key),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn params(names: &[&str], cn: Option<&str>) -> CertificateParams {
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
        p.distinguished_name.push(
            DnType::CommonName,
            cn.unwrap_or(names.first().copied().unwrap_or("no-name")),
        );
        p
    }

    pub fn ecdsa(&self, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = Self::params(names, None).signed_by(&key, &self.ca).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    pub fn rsa(&self, names: &[&str]) -> Leaf {
        let key =
            KeyPair::from_pkcs8_pem_and_sign_algo(rsa_key_pem(), &rcgen::PKCS_RSA_SHA256).unwrap();
        let cert = Self::params(names, None).signed_by(&key, &self.ca).unwrap();
        Leaf {
            cert: cert.pem(),
            key: rsa_key_pem().to_string(),
        }
    }

    /// A certificate with no subjectAltName at all, only the given CN.
    pub fn cn_only(&self, cn: &str) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = Self::params(&[], Some(cn))
            .signed_by(&key, &self.ca)
            .unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A certificate whose SAN extension lists no names, with the given CN.
    pub fn empty_san(&self, cn: &str) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut p = Self::params(&[], Some(cn));
        p.subject_alt_names = vec![rcgen::SanType::URI(
            "https://example.invalid/".try_into().unwrap(),
        )];
        let cert = p.signed_by(&key, &self.ca).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// Writes `name` with `text`, returning its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Writes a bundle (certificate then key) as `name`.
    pub fn bundle(&self, name: &str, leaf: &Leaf) -> PathBuf {
        self.write(name, &format!("{}{}", leaf.cert, leaf.key))
    }
}

/// The key of `leaf` encrypted with `pass`: PKCS#8 (`ENCRYPTED PRIVATE KEY`) or legacy PEM.
pub fn encrypted_key(leaf: &Leaf, pass: &str, pkcs8: bool) -> String {
    let pkey = PKey::private_key_from_pem(leaf.key.as_bytes()).unwrap();
    let pem = if pkcs8 {
        pkey.private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), pass.as_bytes())
            .unwrap()
    } else {
        pkey.ec_key()
            .unwrap()
            .private_key_to_pem_passphrase(Cipher::aes_128_cbc(), pass.as_bytes())
            .unwrap()
    };
    String::from_utf8(pem).unwrap()
}

/// An EC key in SEC1 form (`EC PRIVATE KEY`), P-384, with its own certificate.
pub fn p384(pki: &Pki, names: &[&str]) -> Leaf {
    let ec = EcKey::generate(&EcGroup::from_curve_name(Nid::SECP384R1).unwrap()).unwrap();
    let sec1 = String::from_utf8(ec.private_key_to_pem().unwrap()).unwrap();
    let pkcs8 = String::from_utf8(
        PKey::from_ec_key(ec)
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap(),
    )
    .unwrap();
    let key =
        KeyPair::from_pkcs8_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let cert = Pki::params(names, None).signed_by(&key, &pki.ca).unwrap();
    Leaf {
        cert: cert.pem(),
        key: sec1,
    }
}
