//! Replays the committed keyless_frames fuzz inputs (seeds and any crash regressions).

use edgetls_keyless_proto::{Decoder, Opcode, Packet};
use std::path::PathBuf;

#[test]
fn keyless_frame_seeds_decode_and_round_trip() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/keyless_frames");
    let mut seen = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in files.iter().filter(|p| {
        p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
    }) {
        let mut d = Decoder::new();
        d.extend(&std::fs::read(path).unwrap());
        while let Some(r) = d.next() {
            let p = r.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(Packet::decode(&p.to_bytes().unwrap()).unwrap(), p);
            seen.push(p.op.opcode);
        }
        assert_eq!(d.buffered(), 0, "{}", path.display());
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            Opcode::ECDSA_SIGN_SHA256,
            Opcode::RESPONSE,
            Opcode::PING,
            Opcode::ERROR
        ]
    );
}
