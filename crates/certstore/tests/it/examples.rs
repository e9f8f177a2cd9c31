//! The crate's example, run on a directory with a broken file in it.

use crate::common::Pki;
use edgetls_testkit::examples::example;
use std::process::Command;

#[test]
fn lookup_names_the_file_each_name_gets_and_reports_the_broken_one() {
    let pki = Pki::new();
    std::fs::create_dir(pki.path("sites")).unwrap();
    pki.bundle("sites/a.pem", &pki.ecdsa(&["a.test"]));
    pki.bundle("sites/wild.pem", &pki.ecdsa(&["*.b.test"]));
    pki.write(
        "sites/broken.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    );
    let out = Command::new(example("lookup"))
        .arg(pki.path("sites"))
        .args(["a.test", "x.b.test", "c.test"])
        .output()
        .unwrap();
    let (text, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{text}{err}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("loaded 2 of 3 entries (1 names, 1 wildcards)"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("a.test: ") && lines[1].ends_with("sites/a.pem (exact)"),
        "{text}"
    );
    assert!(lines[2].ends_with("sites/wild.pem (wildcard)"), "{text}");
    // A directory's first entry is the default, as HAProxy serves its first certificate.
    assert!(
        lines[3].starts_with("c.test: ") && lines[3].ends_with("(default)"),
        "{text}"
    );
    assert!(err.contains("broken.pem"), "{err}");

    let missing = Command::new(example("lookup"))
        .arg(pki.path("nowhere"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nowhere"));
}
