#![no_main]
//! A certificate file (chain + key, PEM): validated into an entry or rejected, never a panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = edgetls_certstore::fuzzing::bundle(data);
});
