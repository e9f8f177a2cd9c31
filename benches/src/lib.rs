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

/// The names of [`write_ecdsa_bundles`] (`siteNNNNNN.example.com`), each once, in a fixed
/// shuffled order: the SNI spread of the benches.
pub fn shuffled_names(n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n).map(|i| format!("site{i:06}.example.com")).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
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
