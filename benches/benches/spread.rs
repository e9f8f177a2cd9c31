//! The ClientHello decision with the SNI spread over many names, each with its own certificate
//! and key (10,000 and 100,000 entries), in a fixed shuffled order: warm (after one pass over
//! every name, the entries' OpenSSL objects are in the store's shared cache), cold (each name's
//! first handshake: its objects are built from the entry's DER), and one name of the same store
//! for comparison. Each iteration is a new connection object and the whole decision (rule,
//! context switch, per-connection settings, certificate and key).
//!
//! `cargo bench -p edgetls-benches --bench spread`

use criterion::{Criterion, criterion_group, criterion_main};
use edgetls_benches::{shuffled_names, write_ecdsa_bundles};
use edgetls_certstore::{CertStore, LoadOptions, Source};
use edgetls_policy::{Decision, Env, Policy, config, decide};
use openssl::ssl::{Ssl, SslAcceptor, SslMethod};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn load(dir: &Path) -> Arc<CertStore> {
    let (store, report) =
        CertStore::load(vec![Source::Dir(dir.into())], LoadOptions::default()).unwrap();
    assert_eq!(report.failed, 0);
    Arc::new(store)
}

fn bench(c: &mut Criterion) {
    let base = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .unwrap()
        .build();
    let policy = Policy::build(
        config::parse(Path::new("bench.toml"), "[[sni]]\nfqdn = \"*\"\n").unwrap(),
        &Env::default(),
    )
    .unwrap();
    let one = |store: &Arc<CertStore>, name: &str| {
        let mut ssl = Ssl::new(base.context()).unwrap();
        // A plain Ssl (no driver running deferred work): a miss is built inline, so the cold
        // figure includes the build.
        let decided = decide(&policy, Some(store), &mut ssl, black_box(Some(name)), None);
        assert!(matches!(decided, Ok(Decision::Decided(_))));
        ssl
    };
    let mut g = c.benchmark_group("spread");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    for n in [10_000, 100_000] {
        let dir = tempfile::tempdir().unwrap();
        write_ecdsa_bundles(dir.path(), n);
        let names = shuffled_names(n);
        let store = load(dir.path());
        for name in &names {
            one(&store, name); // the warm-up pass
        }
        let mut i = 0;
        g.bench_function(format!("{n} names, warm"), |b| {
            b.iter(|| {
                i = (i + 1) % n;
                one(&store, &names[i])
            })
        });
        g.bench_function(format!("one name of {n}, warm"), |b| {
            b.iter(|| one(&store, &names[0]))
        });
        drop(store);
        g.bench_function(format!("{n} names, cold (each name's first)"), |b| {
            b.iter_custom(|iters| {
                let (mut store, mut k, mut took) = (load(dir.path()), 0, Duration::ZERO);
                for _ in 0..iters {
                    if k == n {
                        (store, k) = (load(dir.path()), 0);
                    }
                    let t = Instant::now();
                    black_box(one(&store, &names[k]));
                    took += t.elapsed();
                    k += 1;
                }
                took
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
