//! Reload: unchanged entries are reused, changed ones re-read, broken ones keep serving their
//! previous version, and snapshots held by readers stay valid.

use crate::common::{Leaf, Pki};
use edgetls_certstore::{CertStore, LoadOptions, Severity, Source};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

fn leaf_of(store: &CertStore, name: &str) -> Option<Vec<u8>> {
    store
        .snapshot()
        .lookup(Some(name), None)
        .map(|h| h.entry.chains()[0].leaf_der().to_vec())
}

fn der(leaf: &Leaf) -> Vec<u8> {
    openssl::x509::X509::from_pem(leaf.cert.as_bytes())
        .unwrap()
        .to_der()
        .unwrap()
}

#[test]
fn reload_reuses_replaces_and_keeps_previous_on_breakage() {
    let pki = Pki::new();
    let a1 = pki.ecdsa(&["a.example.com"]);
    pki.bundle("a.pem", &a1);
    pki.bundle("b.pem", &pki.ecdsa(&["b.example.com"]));
    let c1 = pki.ecdsa(&["c.example.com"]);
    pki.bundle("c.pem", &c1);
    let (store, report) = CertStore::load(
        vec![Source::Dir(pki.dir.path().to_path_buf())],
        LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(report.loaded, 3);
    let before = store.snapshot();

    // a changes to a new certificate; c is broken; b is untouched; d is new.
    let a2 = pki.ecdsa(&["a.example.com"]);
    pki.bundle("a.pem", &a2);
    pki.write("c.pem", "-----BEGIN CERTIFICATE-----\ntruncated");
    pki.bundle("d.pem", &pki.ecdsa(&["d.example.com"]));
    let report = store.reload().unwrap();
    assert_eq!(
        (
            report.loaded,
            report.reused,
            report.kept_previous,
            report.failed
        ),
        (4, 1, 1, 0),
        "{:#?}",
        report.problems
    );
    let kept = report
        .problems
        .iter()
        .find(|p| p.severity == Severity::Error)
        .unwrap()
        .to_string();
    assert!(
        kept.contains("c.pem")
            && kept.contains("kept the previous version")
            && kept.contains("truncated"),
        "{kept}"
    );

    assert_eq!(leaf_of(&store, "a.example.com"), Some(der(&a2)));
    assert_eq!(
        leaf_of(&store, "c.example.com"),
        Some(der(&c1)),
        "broken c keeps serving its previous version"
    );
    assert_eq!(
        store.snapshot().troubled(),
        1,
        "c is not served as configured"
    );
    assert!(leaf_of(&store, "d.example.com").is_some());
    // The snapshot taken before the reload is untouched.
    let old = before.lookup(Some("a.example.com"), None).unwrap();
    assert_eq!(old.entry.chains()[0].leaf_der(), der(&a1).as_slice());
    assert!(
        before.lookup(Some("d.example.com"), None).unwrap().how
            != edgetls_certstore::MatchKind::Exact
    );

    // Fixing c picks up the new file; deleting b drops it.
    let c2 = pki.ecdsa(&["c.example.com"]);
    pki.bundle("c.pem", &c2);
    std::fs::remove_file(pki.path("b.pem")).unwrap();
    let report = store.reload().unwrap();
    assert_eq!((report.loaded, report.kept_previous), (3, 0));
    assert_eq!(leaf_of(&store, "c.example.com"), Some(der(&c2)));
    assert_eq!(store.snapshot().troubled(), 0);
    assert_ne!(
        store
            .snapshot()
            .lookup(Some("b.example.com"), None)
            .unwrap()
            .how,
        edgetls_certstore::MatchKind::Exact
    );
}

#[test]
fn an_unusable_source_on_reload_changes_nothing() {
    let pki = Pki::new();
    pki.bundle("a.pem", &pki.ecdsa(&["a.example.com"]));
    let config = pki.write("ssl_multicert.config", "ssl_cert_name=a.pem\n");
    let (store, _) = CertStore::load(
        vec![Source::Multicert(config.clone())],
        LoadOptions::default(),
    )
    .unwrap();
    std::fs::remove_file(&config).unwrap();
    assert!(store.reload().is_err());
    assert!(leaf_of(&store, "a.example.com").is_some());
}

#[test]
fn watch_reloads_by_itself_when_a_file_changes() {
    let pki = Pki::new();
    pki.bundle("a.pem", &pki.ecdsa(&["a.example.com"]));
    let (store, _) = CertStore::load(
        vec![Source::Dir(pki.dir.path().to_path_buf())],
        LoadOptions::default(),
    )
    .unwrap();
    let store = Arc::new(store);
    let (tx, rx) = mpsc::channel();
    let watcher = store
        .watch(Duration::from_millis(50), move |r| {
            let _ = tx.send(r.map(|r| r.loaded));
        })
        .unwrap();
    // An editor's dotfile among the certificates is not a change.
    pki.write(".a.pem.swp", "x");
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());
    let a2 = pki.ecdsa(&["a.example.com"]);
    pki.bundle("a.pem", &a2);
    pki.bundle("new.pem", &pki.ecdsa(&["new.example.com"]));
    let loaded = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the watcher reloaded")
        .unwrap();
    assert!(loaded >= 1);
    // The two writes may land in one reload or two; wait until both are visible.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while leaf_of(&store, "new.example.com").is_none()
        || leaf_of(&store, "a.example.com") != Some(der(&a2))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "watcher did not pick up both changes"
        );
        let _ = rx.recv_timeout(Duration::from_millis(200));
    }
    // Dropping the watcher stops it: its thread has ended and its callback is gone (the
    // callback's sender is dropped, so the channel says so at once), before any later write.
    while rx.try_recv().is_ok() {}
    drop(watcher);
    assert!(matches!(
        rx.recv_timeout(Duration::from_secs(5)),
        Err(mpsc::RecvTimeoutError::Disconnected)
    ));
    let late = pki.ecdsa(&["late.example.com"]);
    pki.bundle("late.pem", &late);
    assert_ne!(leaf_of(&store, "late.example.com"), Some(der(&late)));
}

#[test]
fn reload_changed_reads_only_the_entries_naming_the_changed_files() {
    let pki = Pki::new();
    for n in ["a", "b", "c"] {
        pki.bundle(
            &format!("{n}.pem"),
            &pki.ecdsa(&[&format!("{n}.example.com")]),
        );
    }
    let (store, _) = CertStore::load(
        vec![Source::Dir(pki.dir.path().to_path_buf())],
        LoadOptions::default(),
    )
    .unwrap();
    let path = |f: &str| pki.dir.path().join(f);

    // a is rewritten, c is broken: only those two are read; b is not looked at.
    let a2 = pki.ecdsa(&["a.example.com"]);
    pki.bundle("a.pem", &a2);
    pki.write("c.pem", "-----BEGIN CERTIFICATE-----\ntruncated");
    let report = store
        .reload_changed(&[path("a.pem"), path("c.pem")])
        .unwrap();
    assert_eq!(
        (
            report.loaded,
            report.reused,
            report.kept_previous,
            report.failed
        ),
        (3, 1, 1, 0),
        "{:#?}",
        report.problems
    );
    assert_eq!(leaf_of(&store, "a.example.com"), Some(der(&a2)));
    assert!(
        leaf_of(&store, "c.example.com").is_some(),
        "c keeps serving"
    );
    assert_eq!(store.snapshot().troubled(), 1);

    // A file no entry names (a new one) makes it a full reload: d is listed and loaded.
    pki.bundle("d.pem", &pki.ecdsa(&["d.example.com"]));
    let report = store.reload_changed(&[path("d.pem")]).unwrap();
    assert_eq!(report.loaded, 4, "{:#?}", report.problems);
    assert!(leaf_of(&store, "d.example.com").is_some());

    // An unchanged file named as changed is reused (its metadata says so).
    let report = store.reload_changed(&[path("b.pem")]).unwrap();
    assert_eq!((report.loaded, report.reused), (4, 4));
    // c is still broken, through the full reload and the partial one that did not read it.
    assert_eq!(store.snapshot().troubled(), 1);

    // Fixed, by a partial reload: nothing is wrong any more.
    pki.bundle("c.pem", &pki.ecdsa(&["c.example.com"]));
    store.reload_changed(&[path("c.pem")]).unwrap();
    assert_eq!(store.snapshot().troubled(), 0);

    // Replaced for other names (the index cannot be kept): the new names are found, the old
    // one is not; replaced again for the same names (the index is kept): the new leaf is.
    let moved = pki.ecdsa(&["moved.example.com"]);
    pki.bundle("a.pem", &moved);
    store.reload_changed(&[path("a.pem")]).unwrap();
    assert_eq!(leaf_of(&store, "moved.example.com"), Some(der(&moved)));
    let how = store
        .snapshot()
        .lookup(Some("a.example.com"), None)
        .map(|s| s.how);
    assert_eq!(
        how,
        Some(edgetls_certstore::MatchKind::Default),
        "a.example.com is no name any more"
    );
    let again = pki.ecdsa(&["moved.example.com"]);
    pki.bundle("a.pem", &again);
    store.reload_changed(&[path("a.pem")]).unwrap();
    assert_eq!(leaf_of(&store, "moved.example.com"), Some(der(&again)));
    // An RSA certificate for the same name changes its key type: found as RSA now.
    let rsa = pki.rsa(&["moved.example.com"]);
    pki.bundle("a.pem", &rsa);
    store.reload_changed(&[path("a.pem")]).unwrap();
    assert_eq!(leaf_of(&store, "moved.example.com"), Some(der(&rsa)));
}

/// A store loaded from a relative path (here, relative to the test's working directory)
/// understands the absolute paths a watcher reports: a written file is that entry's change, and
/// `reload_changed` with its absolute path reads that entry alone.
#[test]
fn a_store_from_a_relative_path_takes_absolute_changed_paths() {
    let pki = Pki::new();
    for n in ["a", "b"] {
        pki.bundle(
            &format!("{n}.pem"),
            &pki.ecdsa(&[&format!("{n}.example.com")]),
        );
    }
    // The same directory, as a path relative to the working directory.
    let cwd = std::env::current_dir().unwrap();
    let up = "../".repeat(cwd.components().count() - 1);
    let relative = std::path::PathBuf::from(up).join(pki.dir.path().strip_prefix("/").unwrap());
    assert!(relative.is_relative() && relative.is_dir());
    let (store, _) = CertStore::load(vec![Source::Dir(relative)], LoadOptions::default()).unwrap();
    let absolute = pki.dir.path().join("a.pem");

    let set = store.watch_set();
    assert_eq!(
        set.change(&absolute, false),
        edgetls_certstore::Change::Entries
    );
    assert!(
        set.dirs().any(|d| d == pki.dir.path()),
        "the directory is watched by its absolute path"
    );

    let a2 = pki.ecdsa(&["a.example.com"]);
    pki.bundle("a.pem", &a2);
    let report = store.reload_changed(&[absolute]).unwrap();
    assert_eq!(
        (report.loaded, report.reused),
        (2, 1),
        "{:#?}",
        report.problems
    );
    assert_eq!(leaf_of(&store, "a.example.com"), Some(der(&a2)));
}

/// A lone certificate file created in a directory source (what an ACME client or `edgetls
/// certs add` writes) is added on its own, in the place a full read would give it: the rest
/// of the directory is not read again. Anything else new (a key file) reads everything.
#[test]
fn a_new_file_in_a_directory_is_added_without_reading_the_rest() {
    let pki = Pki::new();
    pki.bundle("a.pem", &pki.ecdsa(&["a.example.com"]));
    pki.bundle("c.pem", &pki.ecdsa(&["c.example.com"]));
    let (store, _) = CertStore::load(
        vec![Source::Dir(pki.dir.path().to_path_buf())],
        LoadOptions::default(),
    )
    .unwrap();
    // A broken file the fast path must not read (a full read reports it).
    pki.write("z-broken.pem", "not a certificate\n");
    let b = pki.ecdsa(&["b.example.com"]);
    let new = pki.bundle("b.pem", &b);
    assert_eq!(
        store.watch_set().change(&new, false),
        edgetls_certstore::Change::Added
    );
    let report = store.reload_changed(&[new]).unwrap();
    assert_eq!(
        (report.loaded, report.failed),
        (3, 0),
        "{:#?}",
        report.problems
    );
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert_eq!(leaf_of(&store, "b.example.com"), Some(der(&b)));
    let order: Vec<_> = store
        .snapshot()
        .entries()
        .iter()
        .map(|e| e.path().file_name().unwrap().to_owned())
        .collect();
    assert_eq!(order, ["a.pem", "b.pem", "c.pem"], "file-name order");

    // A new key file is not an entry of its own: everything is read again (and the broken
    // file is found).
    let key = pki.write("d.key", &pki.ecdsa(&["d.example.com"]).key);
    let report = store.reload_changed(&[key]).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.origin.ends_with("z-broken.pem")),
        "{:#?}",
        report.problems
    );
}

/// A change reported for a file whose entry is as loaded (a watcher seeing the write the
/// reload before it already read) leaves the snapshot in force: nothing is rebuilt.
#[test]
fn a_reload_of_unchanged_files_keeps_the_snapshot() {
    let pki = Pki::new();
    let a = pki.bundle("a.pem", &pki.ecdsa(&["a.example.com"]));
    pki.bundle("b.pem", &pki.ecdsa(&["b.example.com"]));
    let (store, _) = CertStore::load(
        vec![Source::Dir(pki.dir.path().to_path_buf())],
        LoadOptions::default(),
    )
    .unwrap();
    let before = store.snapshot();
    let report = store.reload_changed(std::slice::from_ref(&a)).unwrap();
    assert_eq!(report.loaded, 2);
    assert!(Arc::ptr_eq(&before, &store.snapshot()), "the same snapshot");
    // Written anew: a new snapshot.
    pki.bundle("a.pem", &pki.ecdsa(&["a.example.com"]));
    store.reload_changed(&[a]).unwrap();
    assert!(!Arc::ptr_eq(&before, &store.snapshot()));
}
