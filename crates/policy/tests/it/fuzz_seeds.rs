//! Replays the committed fuzz inputs of `policy_file` and `alpn_wire` through the functions the
//! fuzz targets drive, with the targets' own checks (and stricter ones for the hand-made seeds).

use edgetls_policy::alpn;
use std::path::PathBuf;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_string_lossy().into_owned();
            name.starts_with("seed-")
                .then(|| (name, std::fs::read(&p).unwrap()))
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

#[test]
fn sni_yaml_seeds_read_into_rules() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("clients-ca.pem"), "").unwrap();
    for (name, bytes) in seeds("sni_yaml") {
        let text = std::str::from_utf8(&bytes).unwrap();
        let rules = edgetls_policy::config::parse(&dir.path().join("sni.yaml"), text)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!rules.is_empty(), "{name}");
    }
}

#[test]
fn policy_file_seeds_parse_into_rules() {
    let dir = tempfile::tempdir().unwrap();
    // The reference seed names a client CA file relative to the policy file.
    std::fs::write(dir.path().join("clients-ca.pem"), "").unwrap();
    for (name, bytes) in seeds("policy_file") {
        let text = std::str::from_utf8(&bytes).unwrap();
        let path = dir.path().join("policy.toml");
        match edgetls_policy::config::parse(&path, text) {
            Ok(rules) => assert!(!rules.is_empty(), "{name}"),
            Err(e) if name.starts_with("seed-regression-") => {
                assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}")
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
}

#[test]
fn alpn_wire_seeds_round_trip() {
    let server = [b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut lists = 0;
    for (name, data) in seeds("alpn_wire") {
        if let Ok(names) = alpn::parse_list(&data) {
            let owned: Vec<Vec<u8>> = names.iter().map(|n| n.to_vec()).collect();
            assert_eq!(alpn::to_wire(&owned), data, "{name}");
            lists += 1;
        }
        if let Ok(Some(chosen)) = alpn::select(&server, &data) {
            assert!(server.iter().any(|s| s.as_slice() == chosen), "{name}");
        }
        if let Some(host) = edgetls_tls::hello::server_name_extension(&data) {
            assert!(!host.is_empty(), "{name}");
        }
    }
    assert!(lists >= 2, "the ALPN and NPN list seeds parse");
}
