//! Replays every committed fuzz input (seeds, and regression inputs for any crash found) through
//! the same entry points the fuzzers drive, so the normal test suite catches regressions.

use std::path::PathBuf;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
        .into_iter()
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect()
}

#[test]
fn multicert_seeds_parse() {
    for (path, bytes) in inputs("multicert") {
        let (entries, problems) =
            edgetls_certstore::fuzzing::multicert(std::str::from_utf8(&bytes).unwrap());
        assert!(
            entries > 0 && problems == 0,
            "{}: {entries} entries, {problems} problems",
            path.display()
        );
    }
}

#[test]
fn multicert_yaml_seeds_parse() {
    for (path, bytes) in inputs("multicert_yaml") {
        let (entries, problems) =
            edgetls_certstore::fuzzing::multicert_yaml(std::str::from_utf8(&bytes).unwrap());
        assert!(
            entries > 0 && problems == 0,
            "{}: {entries} entries, {problems} problems",
            path.display()
        );
    }
}

#[test]
fn ocsp_response_seeds_are_judged_good() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/data");
    let leaf = std::fs::read(data.join("ocsp-leaf.pem")).unwrap();
    let issuer = std::fs::read(data.join("ocsp-issuer.pem")).unwrap();
    for (path, bytes) in inputs("ocsp_response") {
        let now = 1_800_000_000; // 2027-01-15: within the seed's validity
        let state = edgetls_certstore::fuzzing::ocsp_response(&bytes, &leaf, &issuer, now);
        assert_eq!(state, "good", "{}", path.display());
        // The same bytes cut short are judged invalid, not a crash.
        let cut = edgetls_certstore::fuzzing::ocsp_response(
            &bytes[..bytes.len() / 2],
            &leaf,
            &issuer,
            now,
        );
        assert_eq!(cut, "invalid");
    }
}

#[test]
fn crt_list_seeds_parse() {
    for (path, bytes) in inputs("crt_list") {
        let (entries, problems) =
            edgetls_certstore::fuzzing::crt_list(std::str::from_utf8(&bytes).unwrap());
        assert!(
            entries > 0 && problems == 0,
            "{}: {entries} entries, {problems} problems",
            path.display()
        );
    }
}

#[test]
fn pem_bundle_seeds_validate() {
    for (path, bytes) in inputs("pem_bundle") {
        let names = edgetls_certstore::fuzzing::bundle(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(names > 0, "{}", path.display());
        // Every strict prefix of a valid bundle is rejected with an error, never a panic.
        for cut in (0..bytes.len()).step_by(97) {
            let _ = edgetls_certstore::fuzzing::bundle(&bytes[..cut]);
        }
    }
}
