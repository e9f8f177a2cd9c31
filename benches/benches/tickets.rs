//! Session tickets: sealing and opening one (the RFC 5077 layout OpenSSL uses, same primitives:
//! AES-CBC + HMAC-SHA256), and finding a key by name in the ring.
//!
//! `cargo bench -p edgetls-benches --bench tickets`

use criterion::{Criterion, criterion_group, criterion_main};
use edgetls_tickets::{
    KeySet, KeySize, Opened, RingOptions, StaticSource, TicketKey, TicketKeys, open, seal,
};
use std::hint::black_box;

fn ring(size: KeySize, keys: usize) -> TicketKeys {
    let set = KeySet::new(
        (0..keys)
            .map(|_| TicketKey::generate(size).unwrap())
            .collect(),
        0,
    )
    .unwrap();
    TicketKeys::new(StaticSource(set), RingOptions::default()).unwrap()
}

fn bench(c: &mut Criterion) {
    // A TLS 1.3 session as OpenSSL serializes it into a ticket is ≈ 160–200 bytes.
    let state = vec![0x5a_u8; 192];
    for (label, size) in [("aes256", KeySize::Aes256), ("aes128", KeySize::Aes128)] {
        let keys = ring(size, 3);
        c.bench_function(&format!("ticket seal+open {label} 192 B"), |b| {
            b.iter(|| {
                let t = seal(&keys, black_box(&state)).unwrap();
                match open(&keys, &t).unwrap() {
                    Opened::State { plaintext, .. } => black_box(plaintext.len()),
                    _ => unreachable!(),
                }
            })
        });
    }
    let keys = ring(KeySize::Aes256, 3);
    let ticket = seal(&keys, &state).unwrap();
    c.bench_function("ticket seal aes256 192 B", |b| {
        b.iter(|| seal(&keys, black_box(&state)).unwrap())
    });
    c.bench_function("ticket open aes256 192 B", |b| {
        b.iter(|| {
            black_box(matches!(
                open(&keys, black_box(&ticket)).unwrap(),
                Opened::State { .. }
            ))
        })
    });
    let name = *keys.encrypting().name();
    c.bench_function("ticket key lookup by name (3 keys)", |b| {
        b.iter(|| keys.find(black_box(&name)).is_some())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
