//! "Loaded" means servable: every entry a load reports as loaded is accepted by OpenSSL itself
//! (`d2i_X509`, the key decoder, and `SSL_use_PrivateKey`'s own key-match check).

use crate::common::{Pki, encrypted_key, p384};
use edgetls_certstore::{CertStore, LoadOptions, Source};
use openssl::ssl::{Ssl, SslContext, SslMethod};
use zeroize::Zeroizing;

fn mixed_set() -> (Pki, std::path::PathBuf) {
    let pki = Pki::new();
    pki.bundle("ec.pem", &pki.ecdsa(&["ec.example.com"]));
    let p = p384(&pki, &["p384.example.com"]);
    pki.write("p384.crt", &p.cert);
    pki.write("p384.key", &p.key);
    pki.bundle("rsa.pem", &pki.rsa(&["rsa.example.com"]));
    pki.bundle("dual.rsa.pem", &pki.rsa(&["dual.example.com"]));
    pki.bundle("dual.ec.pem", &pki.ecdsa(&["dual.example.com"]));
    let enc = pki.ecdsa(&["enc.example.com"]);
    pki.write(
        "enc.pem",
        &format!("{}{}", enc.cert, encrypted_key(&enc, "pw", true)),
    );
    let legacy = pki.ecdsa(&["legacy.example.com"]);
    pki.write(
        "legacy.pem",
        &format!("{}{}", legacy.cert, encrypted_key(&legacy, "pw", false)),
    );
    // A chain file appended through ssl_ca_name.
    let chained = pki.ecdsa(&["chained.example.com"]);
    pki.bundle("chained.pem", &chained);
    pki.write(
        "extra-chain.pem",
        &pki.ecdsa(&["some-intermediate.example.com"]).cert,
    );
    let config = pki.write(
        "ssl_multicert.config",
        "ssl_cert_name=ec.pem\n\
         ssl_cert_name=p384.crt ssl_key_name=p384.key\n\
         ssl_cert_name=rsa.pem\n\
         ssl_cert_name=dual.rsa.pem,dual.ec.pem\n\
         ssl_cert_name=enc.pem ssl_key_dialog=builtin\n\
         ssl_cert_name=legacy.pem ssl_key_dialog=builtin\n\
         ssl_cert_name=chained.pem ssl_ca_name=extra-chain.pem\n",
    );
    (pki, config)
}

#[test]
fn every_loaded_entry_is_accepted_by_openssl() {
    let (_pki, config) = mixed_set();
    for openssl_verify in [false, true] {
        let mut opts = LoadOptions::default();
        opts.passphrase = Some(Zeroizing::new("pw".into()));
        opts.openssl_verify = openssl_verify;
        // Smaller than two entries: the shared cache holds one at a time.
        opts.cache_bytes = Some(1);
        let (store, report) =
            CertStore::load(vec![Source::Multicert(config.clone())], opts).unwrap();
        assert_eq!(
            (report.loaded, report.failed),
            (7, 0),
            "{:#?}",
            report.problems
        );
        let ctx = SslContext::builder(SslMethod::tls_server())
            .unwrap()
            .build();
        let snapshot = store.snapshot();
        let mut chains = 0;
        for entry in snapshot.entries() {
            let ready = store
                .prepared(entry)
                .unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
            let mut ssl = Ssl::new(&ctx).unwrap();
            // SSL_use_PrivateKey fails if the key is not the certificate's.
            ready
                .apply(&mut ssl)
                .unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
            chains += entry.chains().len();
        }
        assert_eq!(chains, 8);
        // The cache stays within its bound while serving more entries than it holds.
        let stats = store.cache_stats();
        assert_eq!(
            (stats.entries, stats.misses, stats.evicted),
            (1, 7, 6),
            "{stats:?}"
        );
    }
}
