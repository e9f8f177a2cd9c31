//! Keyless codec: encoding and decoding a typical sign request and response.

use criterion::{Criterion, criterion_group, criterion_main};
use edgetls_keyless_proto::{Decoder, Opcode, Operation, Packet, Ski};
use std::hint::black_box;

fn codec(c: &mut Criterion) {
    let request = Packet::new(
        42,
        Operation {
            sni: Some("www.example.com".into()),
            client_ip: Some("192.0.2.1".parse().unwrap()),
            ..Operation::request(Opcode::ECDSA_SIGN_SHA256, Ski([7; 20]), vec![0xab; 32])
        },
    );
    let response = Packet::new(42, Operation::response(vec![0x30; 71]));
    let req_bytes = request.to_bytes().unwrap();
    let resp_bytes = response.to_bytes().unwrap();
    let mut g = c.benchmark_group("keyless_codec");
    let mut buf = Vec::with_capacity(2048);
    g.bench_function("encode_sign_request", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&request).encode(&mut buf).unwrap();
            black_box(buf.len())
        })
    });
    g.bench_function("decode_sign_request", |b| {
        b.iter(|| Packet::decode(black_box(&req_bytes)).unwrap())
    });
    g.bench_function("decode_response_streaming", |b| {
        let mut d = Decoder::new();
        b.iter(|| {
            d.extend(black_box(&resp_bytes));
            d.next().unwrap().unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
