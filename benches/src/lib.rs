//! Fixtures shared by the benches.

use rayon::prelude::*;
use rcgen::{CertificateParams, KeyPair};
use std::fmt::Write as _;
use std::path::Path;

/// Writes `n` ECDSA P-256 bundles (certificate + PKCS#8 key, each its own key) into `dir`,
/// named `siteNNNNNN.example.com.pem`, as `cargo xtask gen-certs` does.
pub fn write_ecdsa_bundles(dir: &Path, n: usize) {
    (0..n).into_par_iter().for_each(|i| {
        let name = format!("site{i:06}.example.com");
        let key = KeyPair::generate().expect("keygen");
        let cert = CertificateParams::new(vec![name.clone(), format!("www.{name}")])
            .expect("params")
            .self_signed(&key)
            .expect("sign");
        std::fs::write(
            dir.join(format!("{name}.pem")),
            format!("{}{}", cert.pem(), key.serialize_pem()),
        )
        .expect("write");
    });
}

/// A crt-list of `exact` exact names and `wild` wildcards, every line pointing at one
/// certificate: the quickest honest way to a 100k-entry index through the public loader.
/// Returns (crt-list path, exact names, wildcard suffixes).
pub fn write_big_crt_list(dir: &Path, exact: usize, wild: usize) -> std::path::PathBuf {
    write_ecdsa_bundles(dir, 1);
    let mut list = String::new();
    for i in 0..exact {
        let _ = writeln!(list, "site000000.example.com.pem host{i:06}.example.net");
    }
    for i in 0..wild {
        let _ = writeln!(list, "site000000.example.com.pem *.w{i:06}.example.org");
    }
    let path = dir.join("crt-list");
    std::fs::write(&path, list).expect("write crt-list");
    path
}
