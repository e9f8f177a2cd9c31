//! Replays the committed `ticket_keys` fuzz inputs: each hand-made seed parses in its own format
//! and writes back to a file that parses to the same keys; in any other format it is rejected
//! or parsed, never a panic.

use edgetls_tickets::format::{self, Format};
use std::path::{Path, PathBuf};

#[test]
fn ticket_key_seeds_parse_and_write_back() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/ticket_keys");
    let mut parsed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("seed-") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for f in [
            Format::Ats,
            Format::Nginx48,
            Format::Nginx80,
            Format::Haproxy,
        ] {
            let Ok(set) = format::parse(Path::new("seed"), &bytes, f) else {
                continue;
            };
            let back = format::write(&set, f).unwrap();
            let again = format::parse(Path::new("seed"), &back, f).unwrap();
            assert_eq!(again.keys.len(), set.keys.len(), "{name} as {f:?}");
            assert_eq!(again.encrypting(), set.encrypting(), "{name} as {f:?}");
            parsed += 1;
        }
    }
    assert!(parsed >= 4, "every seed parses in at least its own format");
}
