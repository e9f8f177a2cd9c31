//! One bad entry never stops the others, and every problem names its file.

use crate::common::{Pki, encrypted_key, p384};
use edgetls_certstore::{CertStore, LoadOptions, MatchKind, Severity, Source};
use zeroize::Zeroizing;

/// Builds a config where good and broken entries alternate, loads it, and checks both sides.
#[test]
fn every_bad_entry_is_reported_by_file_and_every_good_entry_served() {
    let pki = Pki::new();
    let good = pki.ecdsa(&["good.example.com"]);
    pki.bundle("good.pem", &good);
    // Truncated: the certificate stops half-way.
    let other = pki.ecdsa(&["trunc.example.com"]);
    pki.write("truncated.pem", &other.cert[..other.cert.len() / 2]);
    // Garbage: not PEM at all.
    pki.write("garbage.pem", "\u{1}\u{2}this is not a certificate\u{ff}");
    // The key of another certificate.
    let a = pki.ecdsa(&["wrongkey.example.com"]);
    let b = pki.ecdsa(&["b.example.com"]);
    pki.write("wrongkey.pem", &format!("{}{}", a.cert, b.key));
    // Unreadable: a directory where a file should be (root can read any file, so chmod won't do).
    std::fs::create_dir(pki.path("unreadable.pem")).unwrap();
    // Duplicate names: the first in source order keeps dup.example.com.
    pki.bundle(
        "dup1.pem",
        &pki.ecdsa(&["dup.example.com", "dup1.example.com"]),
    );
    pki.bundle(
        "dup2.pem",
        &pki.ecdsa(&["dup.example.com", "dup2.example.com"]),
    );
    // Empty SAN: nothing could ever select it.
    pki.bundle("emptysan.pem", &pki.empty_san("ignored-cn.example.com"));
    // Encrypted with another passphrase than the one given.
    let enc = pki.ecdsa(&["wrongpass.example.com"]);
    pki.write(
        "wrongpass.pem",
        &format!(
            "{}{}",
            enc.cert,
            encrypted_key(&enc, "not-the-passphrase", true)
        ),
    );
    // Encrypted, passphrase from an exec: dialog.
    let exec = pki.ecdsa(&["exec.example.com"]);
    pki.write(
        "exec.pem",
        &format!("{}{}", exec.cert, encrypted_key(&exec, "from-exec", true)),
    );
    // Encrypted, passphrase from a dialog whose quotes only a shell honours (as Traffic Server
    // runs it).
    let shell = pki.ecdsa(&["shell.example.com"]);
    pki.write(
        "shell.pem",
        &format!("{}{}", shell.cert, encrypted_key(&shell, "two words", true)),
    );
    // Legacy encrypted PEM with the builtin passphrase.
    let legacy = pki.ecdsa(&["legacy.example.com"]);
    pki.write(
        "legacy.pem",
        &format!(
            "{}{}",
            legacy.cert,
            encrypted_key(&legacy, "builtin-pass", false)
        ),
    );
    // Certificate without its key.
    pki.write("nokey.pem", &pki.ecdsa(&["nokey.example.com"]).cert);
    // Other good key types: RSA (PKCS#8), P-384 (SEC1, separate key file).
    pki.bundle("rsa.pem", &pki.rsa(&["rsa.example.com"]));
    let p = p384(&pki, &["p384.example.com"]);
    pki.write("p384.crt", &p.cert);
    pki.write("p384.key", &p.key);

    let config = pki.write(
        "ssl_multicert.config",
        "ssl_cert_name=good.pem\n\
         ssl_cert_name=truncated.pem\n\
         ssl_cert_name=garbage.pem\n\
         ssl_cert_name=wrongkey.pem\n\
         ssl_cert_name=missing.pem\n\
         ssl_cert_name=unreadable.pem\n\
         ssl_cert_name=dup1.pem\n\
         ssl_cert_name=dup2.pem\n\
         ssl_cert_name=emptysan.pem\n\
         ssl_cert_name=wrongpass.pem ssl_key_dialog=builtin\n\
         ssl_cert_name=exec.pem ssl_key_dialog=\"exec:/bin/echo from-exec\"\n\
         ssl_cert_name=legacy.pem ssl_key_dialog=builtin\n\
         ssl_cert_name=nokey.pem\n\
         ssl_cert_name=rsa.pem\n\
         ssl_cert_name=p384.crt ssl_key_name=p384.key\n\
         ssl_cert_name=shell.pem ssl_key_dialog=\"exec:/bin/sh -c 'echo -n two words'\"\n",
    );
    let mut opts = LoadOptions::default();
    opts.passphrase = Some(Zeroizing::new("builtin-pass".into()));
    let (store, report) = CertStore::load(vec![Source::Multicert(config)], opts).unwrap();

    let errors: Vec<String> = report.errors().map(|p| p.to_string()).collect();
    let expect = [
        (2, "truncated.pem", "truncated"),
        (3, "garbage.pem", "no PEM blocks"),
        (4, "wrongkey.pem", "does not match"),
        (5, "missing.pem", "No such file"),
        (6, "unreadable.pem", "directory"),
        (9, "emptysan.pem", "no usable name"),
        (10, "wrongpass.pem", "wrong passphrase"),
        (13, "nokey.pem", "no private key"),
    ];
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
    for (line, file, words) in expect {
        let hit = errors.iter().find(|e| e.contains(&format!(":{line}: ")));
        let hit = hit.unwrap_or_else(|| panic!("no error for line {line}: {errors:#?}"));
        assert!(
            hit.contains(file) && hit.contains(words),
            "line {line}: {hit}"
        );
    }
    assert_eq!((report.failed, report.loaded, report.entries), (8, 8, 16));

    let conflict = report
        .problems
        .iter()
        .find(|p| p.severity == Severity::Warning && p.to_string().contains("dup.example.com"));
    let conflict = conflict.expect("conflict reported").to_string();
    assert!(
        conflict.contains("dup2.pem") && conflict.contains("dup1.pem") && conflict.contains(":8:"),
        "{conflict}"
    );

    let snap = store.snapshot();
    let served = |name: &str| {
        snap.lookup(Some(name), None)
            .filter(|h| h.how == MatchKind::Exact)
            .map(|h| {
                h.entry
                    .path()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
    };
    for (name, file) in [
        ("good.example.com", "good.pem"),
        ("dup.example.com", "dup1.pem"),
        ("dup2.example.com", "dup2.pem"),
        ("exec.example.com", "exec.pem"),
        ("legacy.example.com", "legacy.pem"),
        ("rsa.example.com", "rsa.pem"),
        ("p384.example.com", "p384.crt"),
        ("shell.example.com", "shell.pem"),
    ] {
        assert_eq!(served(name).as_deref(), Some(file), "{name}");
    }
    for name in [
        "trunc.example.com",
        "wrongkey.example.com",
        "wrongpass.example.com",
        "nokey.example.com",
    ] {
        assert_eq!(served(name), None, "{name} must not be served");
    }
}

#[test]
fn an_unusable_source_is_an_error_not_an_empty_store() {
    let pki = Pki::new();
    let err = CertStore::load(
        vec![Source::Multicert(pki.path("absent.config"))],
        LoadOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("absent.config"), "{err}");
    let err = CertStore::load(
        vec![Source::Dir(pki.path("no-such-dir"))],
        LoadOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no-such-dir"), "{err}");
}

#[test]
fn encrypted_key_without_any_passphrase_says_so() {
    let pki = Pki::new();
    let leaf = pki.ecdsa(&["enc.example.com"]);
    pki.write(
        "enc.pem",
        &format!("{}{}", leaf.cert, encrypted_key(&leaf, "x", true)),
    );
    let (_, report) = CertStore::load(
        vec![Source::Dir(pki.dir.path().to_path_buf())],
        LoadOptions::default(),
    )
    .unwrap();
    let e = report.errors().next().expect("an error").to_string();
    assert!(e.contains("enc.pem") && e.contains("no passphrase"), "{e}");
}

#[test]
fn directory_pairs_bundles_and_dual_members() {
    let pki = Pki::new();
    let a = pki.ecdsa(&["a.example.com"]);
    pki.write("a.crt", &a.cert);
    pki.write("a.key", &a.key);
    pki.bundle("b.pem", &pki.ecdsa(&["b.example.com", "*.b.example.com"]));
    pki.bundle("c.pem.rsa", &pki.rsa(&["c.example.com"]));
    pki.bundle("c.pem.ecdsa", &pki.ecdsa(&["c.example.com"]));
    pki.write("orphan.key", &pki.ecdsa(&["x"]).key);
    pki.write("README", "not a certificate");
    let (store, report) = CertStore::load(
        vec![Source::Dir(pki.dir.path().to_path_buf())],
        LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(
        (report.loaded, report.failed),
        (3, 1),
        "{:#?}",
        report.problems
    );
    assert!(
        report
            .errors()
            .next()
            .unwrap()
            .to_string()
            .contains("orphan.key")
    );
    let snap = store.snapshot();
    let c = snap.lookup(Some("c.example.com"), None).unwrap();
    let mut types: Vec<&str> = c
        .entry
        .chains()
        .iter()
        .map(|ch| ch.key_type().as_str())
        .collect();
    types.sort();
    assert_eq!(types, vec!["ecdsa", "rsa"]);
    assert_eq!(
        snap.lookup(Some("x.b.example.com"), None).unwrap().how,
        MatchKind::Wildcard
    );
    // No explicit default: the first entry in file-name order is the default (as HAProxy does).
    let d = snap.lookup(Some("unknown.example.org"), None).unwrap();
    assert_eq!(
        (d.how, d.entry.path().file_name().unwrap().to_str().unwrap()),
        (MatchKind::Default, "a.crt")
    );
}

/// HAProxy serves the first certificate of a crt-list or directory as the default, whatever
/// names it has; a certificate with no SAN and a CN that is no host name, alone, is served so.
#[test]
fn a_nameless_certificate_alone_in_a_directory_or_crt_list_is_served_as_the_default() {
    let pki = Pki::new();
    let leaf = pki.cn_only("My Test Certificate");
    let file = pki.bundle("only.pem", &leaf);
    let der = openssl::x509::X509::from_pem(leaf.cert.as_bytes())
        .unwrap()
        .to_der()
        .unwrap();
    let list = pki.write("list.crt-list", &format!("{}\n", file.display()));
    let multicert = pki.write("ssl_multicert.config", "ssl_cert_name=only.pem\n");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&file, dir.path().join("only.pem")).unwrap();
    for source in [Source::Dir(dir.path().to_path_buf()), Source::CrtList(list)] {
        let (store, report) =
            CertStore::load(vec![source.clone()], LoadOptions::default()).unwrap();
        assert_eq!(
            (report.loaded, report.failed),
            (1, 0),
            "{source:?}: {:#?}",
            report.problems
        );
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.severity == Severity::Warning
                    && p.to_string().contains("served only as the default")),
            "{:#?}",
            report.problems
        );
        let snapshot = store.snapshot();
        let hit = snapshot.lookup(Some("anything.example.com"), None).unwrap();
        assert_eq!(hit.how, MatchKind::Default);
        assert_eq!(hit.entry.chains()[0].leaf_der(), &der[..]);
    }
    // Traffic Server has a default only with dest_ip=*: there it can never be selected.
    let (_, report) =
        CertStore::load(vec![Source::Multicert(multicert)], LoadOptions::default()).unwrap();
    assert_eq!(report.failed, 1);
    assert!(
        report
            .errors()
            .any(|e| e.to_string().contains("no usable name"))
    );
}
