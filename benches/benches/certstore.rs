//! Certificate store: loading 10k ECDSA entries from a directory, and lookups in a 100k index.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use edgetls_benches::{write_big_crt_list, write_ecdsa_bundles};
use edgetls_certstore::{CertStore, LoadOptions, MatchKind, Source};
use std::hint::black_box;
use std::time::Duration;

fn load_10k(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_ecdsa_bundles(dir.path(), 10_000);
    let mut g = c.benchmark_group("certstore_load");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("dir_10k_ecdsa", |b| {
        b.iter(|| {
            let (store, report) = CertStore::load(
                vec![Source::Dir(dir.path().to_path_buf())],
                LoadOptions::default(),
            )
            .expect("load");
            assert_eq!(report.loaded, 10_000);
            black_box(store)
        })
    });
    g.finish();
}

fn lookup_100k(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let list = write_big_crt_list(dir.path(), 100_000, 10_000);
    let (store, report) =
        CertStore::load(vec![Source::CrtList(list)], LoadOptions::default()).expect("load");
    assert_eq!((report.names, report.wildcards), (100_000, 10_000));
    let snap = store.snapshot();
    // Names in a scrambled order, so every lookup walks a different path through the arrays.
    let order: Vec<usize> = (0..4096).map(|i| (i * 7919) % 100_000).collect();
    let exact: Vec<String> = order
        .iter()
        .map(|i| format!("host{i:06}.example.net"))
        .collect();
    let wild: Vec<String> = order
        .iter()
        .map(|i| format!("api.w{:06}.example.org", i % 10_000))
        .collect();
    let miss: Vec<String> = order
        .iter()
        .map(|i| format!("nohost{i:06}.example.net"))
        .collect();
    assert_eq!(
        snap.lookup(Some(&exact[1]), None).map(|h| h.how),
        Some(MatchKind::Exact)
    );
    assert_eq!(
        snap.lookup(Some(&wild[1]), None).map(|h| h.how),
        Some(MatchKind::Wildcard)
    );

    let mut g = c.benchmark_group("certstore_lookup_100k");
    for (label, names) in [
        ("exact_hit", &exact),
        ("wildcard_hit", &wild),
        ("miss_to_default", &miss),
    ] {
        let mut i = 0;
        g.bench_function(label, |b| {
            b.iter(|| {
                i = (i + 1) % names.len();
                black_box(snap.lookup(Some(&names[i]), None).map(|h| h.how))
            })
        });
    }
    g.finish();
    let _ = BatchSize::SmallInput;
}

criterion_group!(benches, load_10k, lookup_100k);
criterion_main!(benches);
