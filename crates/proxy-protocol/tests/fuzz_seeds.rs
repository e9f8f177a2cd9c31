//! Replays the committed proxy_header fuzz seeds: hand-made ones (`seed-*`) are whole, valid
//! headers; regression inputs (`seed-regression-*`) may be refused, never panic.

use edgetls_proxy_protocol::{Parsed, parse};
use std::path::PathBuf;

#[test]
fn proxy_header_seeds_parse() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/proxy_header");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("seed-") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let parsed = parse(&bytes);
        if !name.starts_with("seed-regression-") {
            assert!(
                matches!(parsed, Ok(Parsed::Header(_, n)) if n == bytes.len()),
                "{name}: {parsed:?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 6, "the seeds are there ({checked})");
}
