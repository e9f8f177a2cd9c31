#![no_main]
//! Ticket key files of every format: parsing never panics, and every set that parses writes
//! back to a file that parses to the same keys.
use edgetls_tickets::format::{self, Format};
use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for f in [Format::Ats, Format::Nginx48, Format::Nginx80, Format::Haproxy] {
        if let Ok(set) = format::parse(Path::new("fuzz"), data, f) {
            if let Ok(bytes) = format::write(&set, f) {
                let back = format::parse(Path::new("fuzz"), &bytes, f).expect("own output parses");
                assert_eq!(back.encrypting(), set.encrypting());
                assert_eq!(back.keys.len(), set.keys.len());
            }
        }
    }
});
