//! Entry points for `fuzz/` (cargo-fuzz). Not a stable API.

use crate::source::{SourceOptions, crtlist, multicert, multicert_yaml};
use std::path::Path;

/// Parses `text` as an ssl_multicert.config; returns (entries, problems).
pub fn multicert(text: &str) -> (usize, usize) {
    let (specs, problems) = multicert::parse(
        Path::new("/fuzz/ssl_multicert.config"),
        text,
        &SourceOptions::default(),
    );
    (specs.len(), problems.len())
}

/// Parses `text` as an ssl_multicert.yaml; returns (entries, problems).
pub fn multicert_yaml(text: &str) -> (usize, usize) {
    let (specs, problems) = multicert_yaml::parse(
        Path::new("/fuzz/ssl_multicert.yaml"),
        text,
        &SourceOptions::default(),
    );
    (specs.len(), problems.len())
}

/// Parses `text` as a crt-list; returns (entries, problems).
pub fn crt_list(text: &str) -> (usize, usize) {
    let (specs, problems) = crtlist::parse(Path::new("/fuzz/crt-list"), text);
    (specs.len(), problems.len())
}

/// Validates `bytes` as a PEM bundle (chain + key) into an entry; returns its name count.
pub fn bundle(bytes: &[u8]) -> Result<usize, String> {
    crate::load::check_bundle(bytes).map_err(|e| e.to_string())
}

/// Checks `der` as the OCSP response for the certificate `leaf_pem` issued by `issuer_pem`
/// (both PEM) at Unix time `now`; returns the state's label.
pub fn ocsp_response(der: &[u8], leaf_pem: &[u8], issuer_pem: &[u8], now: i64) -> &'static str {
    use openssl::x509::X509;
    match (X509::from_pem(leaf_pem), X509::from_pem(issuer_pem)) {
        (Ok(leaf), Ok(issuer)) => crate::ocsp::check(der, &leaf, &issuer, now).state.as_str(),
        _ => "no certificates",
    }
}
