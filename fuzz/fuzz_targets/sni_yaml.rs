#![no_main]
//! Traffic Server's sni.yaml: any text reads into rules or is refused with an error that names
//! the file, never a panic.
use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let path = Path::new("/fuzz/sni.yaml");
        if let Err(e) = edgetls_policy::config::parse(path, text) {
            assert!(e.to_string().contains("/fuzz/sni.yaml"), "{e}");
        }
    }
});
