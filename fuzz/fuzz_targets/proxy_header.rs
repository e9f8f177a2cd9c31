#![no_main]
//! PROXY protocol headers from a load balancer (or anyone pretending to be one): the parser
//! must never panic, never claim more bytes than it was given, and a header it accepts must
//! encode back (as v2) to one that reads the same addresses.
use edgetls_proxy_protocol::{Parsed, encode_v2, parse};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(Parsed::Header(h, used)) => {
            assert!(used <= data.len());
            if let (Some(s), Some(d)) = (h.source, h.destination) {
                let mut out = Vec::new();
                encode_v2(s, d, None, &mut out);
                match parse(&out) {
                    Ok(Parsed::Header(again, n)) => {
                        assert_eq!(n, out.len());
                        let plain = |a: std::net::SocketAddr| (a.ip(), a.port());
                        if s.is_ipv4() == d.is_ipv4() {
                            assert_eq!(again.source.map(plain), Some(plain(s)));
                            assert_eq!(again.destination.map(plain), Some(plain(d)));
                        }
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        Ok(Parsed::Incomplete(n)) => assert!(n > data.len()),
        Ok(Parsed::NotProxy) | Err(_) => {}
    }
});
