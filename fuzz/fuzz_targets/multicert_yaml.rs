#![no_main]
//! ssl_multicert.yaml: any text must parse into entries and problems, never panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = edgetls_certstore::fuzzing::multicert_yaml(text);
    }
});
