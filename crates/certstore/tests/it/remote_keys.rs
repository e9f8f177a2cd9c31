//! Which certificates have their keys elsewhere is declared per source, never inferred from a
//! missing key.

use crate::common::Pki;
use edgetls_certstore::{CertStore, CertStoreError, KeySource, LoadOptions, Source};
use std::sync::Arc;

/// Accepts remote-key entries; never asked for a key object (nothing here serves handshakes).
struct Elsewhere;

impl KeySource for Elsewhere {
    fn private_key(
        &self,
        _leaf: &openssl::x509::X509Ref,
    ) -> Result<openssl::pkey::PKey<openssl::pkey::Private>, String> {
        Err("not asked in these tests".into())
    }
}

#[test]
fn only_declared_sources_serve_certificates_without_their_key() {
    let local = Pki::new();
    local.bundle("a.pem", &local.ecdsa(&["a.example.com"]));
    // A bundle caught half-written: its certificate, no key yet.
    local.write("b.pem", &local.ecdsa(&["b.example.com"]).cert);
    let remote = Pki::new();
    remote.write("c.pem", &remote.ecdsa(&["c.example.com"]).cert);
    let sources = || {
        vec![
            Source::Dir(local.dir.path().into()),
            Source::Dir(remote.dir.path().into()),
        ]
    };
    let mut opts = LoadOptions::default();
    opts.remote_keys = Some(Arc::new(Elsewhere));
    opts.remote_key_sources = vec![remote.dir.path().into()];
    let (store, report) = CertStore::load(sources(), opts.clone()).unwrap();
    assert_eq!(
        (report.loaded, report.failed),
        (2, 1),
        "{:#?}",
        report.problems
    );
    let error = report.errors().next().unwrap().to_string();
    assert!(
        error.contains("b.pem") && error.contains("declared keyless"),
        "{error}"
    );
    let snap = store.snapshot();
    assert!(snap.lookup(Some("c.example.com"), None).is_some());
    assert_eq!(snap.troubled(), 1);

    // A declared path that is not a source, or declared sources without a key source: the
    // load is refused, naming the path.
    let mut wrong = opts.clone();
    wrong.remote_key_sources = vec![local.path("nowhere")];
    let e = CertStore::load(sources(), wrong).unwrap_err();
    assert!(
        matches!(&e, CertStoreError::RemoteKeySource { .. }) && e.to_string().contains("nowhere"),
        "{e}"
    );
    let mut no_keys = opts;
    no_keys.remote_keys = None;
    let e = CertStore::load(sources(), no_keys).unwrap_err();
    assert!(e.to_string().contains("no key source"), "{e}");
}
