#![no_main]
//! What a client sends at the ClientHello: ALPN/NPN protocol lists (with and without the outer
//! length) and the server_name extension. Parsing never panics; a list that parses writes back
//! to the same bytes; a selected protocol is one the client offered.
use edgetls_policy::alpn;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(names) = alpn::parse_list(data) {
        let owned: Vec<Vec<u8>> = names.iter().map(|n| n.to_vec()).collect();
        assert_eq!(alpn::to_wire(&owned), data);
    }
    if let Ok(names) = alpn::parse_extension(data) {
        assert!(!names.is_empty());
    }
    let server = [b"h2".to_vec(), b"http/1.1".to_vec()];
    if let Ok(Some(chosen)) = alpn::select(&server, data) {
        assert!(server.iter().any(|s| s.as_slice() == chosen));
    }
    if let Some(name) = edgetls_tls::hello::server_name_extension(data) {
        assert!(!name.is_empty());
    }
});
