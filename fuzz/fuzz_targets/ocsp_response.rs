#![no_main]
//! OCSP responses as read from CERT.ocsp files: any bytes must be judged (good, revoked,
//! unknown, expired or invalid), never panic, never crash OpenSSL's parser.
const LEAF: &[u8] = include_bytes!("../data/ocsp-leaf.pem");
const ISSUER: &[u8] = include_bytes!("../data/ocsp-issuer.pem");

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = edgetls_certstore::fuzzing::ocsp_response(data, LEAF, ISSUER, 1_800_000_000);
});
