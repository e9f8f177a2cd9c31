//! Replays the committed keyless_frames fuzz inputs. Hand-made seeds (`seed-*`) must decode
//! cleanly; regression inputs from crashes (`seed-regression-*`) are replayed as the fuzz
//! target runs them: bad frames may be rejected, every accepted packet must round-trip.

use edgetls_keyless_proto::{Decoder, Opcode, Packet};
use std::path::PathBuf;

#[test]
fn keyless_frame_seeds_decode_and_round_trip() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/keyless_frames");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut seen = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("seed-") {
            continue;
        }
        let strict = !name.starts_with("seed-regression-");
        let mut d = Decoder::new();
        d.extend(&std::fs::read(&path).unwrap());
        while let Some(r) = d.next() {
            match r {
                Ok(p) => {
                    assert_eq!(
                        Packet::decode(&p.to_bytes().unwrap()).unwrap(),
                        p,
                        "{name}: round trip"
                    );
                    seen.push(p.op.opcode);
                }
                Err(e) => assert!(!strict, "{name}: {e}"),
            }
        }
        if strict {
            assert_eq!(d.buffered(), 0, "{name}");
        }
    }
    for want in [
        Opcode::ECDSA_SIGN_SHA256,
        Opcode::RESPONSE,
        Opcode::PING,
        Opcode::ERROR,
    ] {
        assert!(seen.contains(&want), "{want:?} missing from {seen:?}");
    }
}
