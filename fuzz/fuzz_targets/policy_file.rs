#![no_main]
//! The per-name policy file (TOML, sni.yaml-like): any text parses into rules or is rejected
//! with an error that names the file, never a panic.
use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let path = Path::new("/fuzz/policy.toml");
        if let Err(e) = edgetls_policy::config::parse(path, text) {
            assert!(e.to_string().contains("/fuzz/policy.toml"), "{e}");
        }
    }
});
