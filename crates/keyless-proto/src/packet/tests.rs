use super::*;
use crate::decoder::Decoder;
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

#[test]
fn ping_vector_byte_for_byte() {
    let bytes = Packet::new(0x0102_0304, Operation::ping(b"hi".to_vec()))
        .to_bytes()
        .unwrap();
    let mut want = vec![
        0x01, 0x00, 0x03, 0xf8, // version 1.0, body length 1016
        0x01, 0x02, 0x03, 0x04, // id
        0x11, 0x00, 0x01, 0xf1, // opcode: ping
        0x12, 0x00, 0x02, b'h', b'i', // payload
        0x20, 0x03, 0xec, // padding: 1004 bytes
    ];
    want.resize(1024, 0);
    assert_eq!(bytes, want);
    assert_eq!(
        Packet::decode(&bytes).unwrap(),
        Packet::new(0x0102_0304, Operation::ping(b"hi".to_vec()))
    );
}

#[test]
fn request_items_are_in_gokeyless_order() {
    let op = Operation {
        opcode: Opcode::ECDSA_SIGN_SHA256,
        payload: vec![0xaa; 32],
        ski: Some(Ski([0x5a; 20])),
        digest: Some(Digest([0x3c; 32])),
        client_ip: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        server_ip: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        sni: Some("example.com".into()),
        ..Operation::default()
    };
    let b = Packet::new(7, op.clone()).to_bytes().unwrap();
    let mut at = HEADER_LEN;
    let mut expect_item = |tag: u8, value: &[u8]| {
        assert_eq!(b[at], tag, "tag at {at}");
        assert_eq!(
            u16::from_be_bytes([b[at + 1], b[at + 2]]) as usize,
            value.len()
        );
        assert_eq!(&b[at + 3..at + 3 + value.len()], value);
        at += 3 + value.len();
    };
    expect_item(0x11, &[0x15]);
    expect_item(0x12, &[0xaa; 32]);
    expect_item(0x04, &[0x5a; 20]);
    expect_item(0x01, &[0x3c; 32]);
    expect_item(0x03, &[192, 0, 2, 1]);
    expect_item(0x05, &Ipv6Addr::LOCALHOST.octets());
    expect_item(0x02, b"example.com");
    assert_eq!(b[at], 0x20);
    assert_eq!(b.len(), PADDED_LEN);
    assert_eq!(Packet::decode(&b).unwrap().op, op);
}

#[test]
fn padding_at_the_boundaries() {
    let len = |payload: usize| {
        Packet::new(1, Operation::response(vec![1; payload]))
            .to_bytes()
            .unwrap()
            .len()
    };
    // Unpadded body = 4 (opcode) + 3 + payload.
    assert_eq!(len(1009), 1024, "body of exactly 1016 bytes: no padding");
    assert_eq!(
        len(1008),
        1026,
        "1 byte short: a 0-byte padding item overshoots by 2"
    );
    assert_eq!(len(1007), 1025, "2 bytes short: overshoots by 1");
    assert_eq!(len(1006), 1024, "3 bytes short: padding item with no data");
    assert_eq!(len(1200), 8 + 4 + 3 + 1200, "long messages are not padded");
    for n in [0, 1, 1006, 1007, 1008, 1009, 1200] {
        let p = Packet::new(1, Operation::response(vec![1; n]));
        assert_eq!(p.encoded_len(), p.to_bytes().unwrap().len(), "n = {n}");
        assert_eq!(Packet::decode(&p.to_bytes().unwrap()).unwrap(), p);
    }
}

#[test]
fn too_long_is_an_error_not_a_truncation() {
    let p = Packet::new(1, Operation::response(vec![0; MAX_BODY]));
    assert!(matches!(p.to_bytes(), Err(ProtoError::TooLong(_))));
}

/// Builds a frame from raw items (no padding), for decoding tests.
fn frame(id: u32, major: u8, items: &[(u8, &[u8])], trailing: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (tag, v) in items {
        body.push(*tag);
        body.extend_from_slice(&(v.len() as u16).to_be_bytes());
        body.extend_from_slice(v);
    }
    body.extend_from_slice(trailing);
    let mut f = vec![major, 0];
    f.extend_from_slice(&(body.len() as u16).to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    f.extend(body);
    f
}

fn format_reason(r: Result<Packet, ProtoError>) -> (u32, String) {
    match r {
        Err(ProtoError::Format { id, reason }) => (id, reason),
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn decoding_rules() {
    // Unknown tags are skipped; 1-2 stray bytes after the last item are ignored.
    let p = Packet::decode(&frame(
        9,
        1,
        &[(0x11, &[0xf1]), (0x99, b"future"), (0x12, b"x")],
        &[0, 0],
    ))
    .unwrap();
    assert_eq!(
        (p.id, p.op.opcode, p.op.payload.as_slice()),
        (9, Opcode::PING, &b"x"[..])
    );
    // Repeated known tag.
    let (id, why) = format_reason(Packet::decode(&frame(
        5,
        1,
        &[(0x11, &[1]), (0x11, &[2])],
        &[],
    )));
    assert_eq!(id, 5);
    assert!(why.contains("twice"), "{why}");
    // An item running past the body.
    let mut f = frame(6, 1, &[(0x11, &[1])], &[0x12, 0x00, 0x09, 1, 2]);
    assert!(
        format_reason(Packet::decode(&f))
            .1
            .contains("claims 9 bytes")
    );
    // Header length that does not match the frame.
    f.push(0);
    assert!(format_reason(Packet::decode(&f)).1.contains("header says"));
    // Missing opcode, wrong sizes.
    assert!(
        format_reason(Packet::decode(&frame(1, 1, &[(0x12, b"p")], &[])))
            .1
            .contains("no opcode")
    );
    assert!(
        format_reason(Packet::decode(&frame(1, 1, &[(0x11, &[1, 2])], &[])))
            .1
            .contains("not 1")
    );
    assert!(
        format_reason(Packet::decode(&frame(
            1,
            1,
            &[(0x11, &[1]), (0x04, &[0; 19])],
            &[]
        )))
        .1
        .contains("not 20")
    );
    assert!(
        format_reason(Packet::decode(&frame(
            1,
            1,
            &[(0x11, &[1]), (0x01, &[0; 31])],
            &[]
        )))
        .1
        .contains("not 32")
    );
    assert!(
        format_reason(Packet::decode(&frame(
            1,
            1,
            &[(0x11, &[1]), (0x03, &[1, 2, 3])],
            &[]
        )))
        .1
        .contains("client IP")
    );
    assert!(
        format_reason(Packet::decode(&frame(
            1,
            1,
            &[(0x11, &[1]), (0x02, &[0xff, 0xfe])],
            &[]
        )))
        .1
        .contains("UTF-8")
    );
    // Version 2 is refused with the id to answer.
    let e = Packet::decode(&frame(77, 2, &[(0x11, &[1])], &[])).unwrap_err();
    assert_eq!(e.reply(), Some((77, ErrorCode::VERSION_MISMATCH)));
    // Too short for a header.
    assert!(Packet::decode(&[1, 0, 0]).is_err());
}

#[test]
fn ipv4_mapped_addresses_read_as_ipv4_both_ways() {
    // Found by fuzzing: a 16-byte ::ffff:a.b.c.d decoded as IPv6 but re-encoded as 4 bytes.
    let mapped = Ipv4Addr::new(255, 255, 0, 17).to_ipv6_mapped().octets();
    let p = Packet::decode(&frame(7, 1, &[(0x11, &[0x53]), (0x03, &mapped)], &[])).unwrap();
    assert_eq!(
        p.op.client_ip,
        Some(IpAddr::V4(Ipv4Addr::new(255, 255, 0, 17)))
    );
    assert_eq!(Packet::decode(&p.to_bytes().unwrap()).unwrap(), p);
    let v6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let p = Packet::decode(&frame(8, 1, &[(0x11, &[0x53]), (0x05, &v6.octets())], &[])).unwrap();
    assert_eq!(p.op.server_ip, Some(IpAddr::V6(v6)));
}

#[test]
fn error_responses_carry_their_code() {
    let p = Packet::decode(
        &Packet::new(3, Operation::error(ErrorCode::KEY_NOT_FOUND))
            .to_bytes()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(p.op.error_code(), Some(ErrorCode::KEY_NOT_FOUND));
    assert_eq!(ErrorCode::KEY_NOT_FOUND.to_string(), "key not found");
    assert_eq!(format!("{:?}", ErrorCode(0x42)), "ErrorCode(0x42)");
    assert_eq!(Operation::response(vec![]).error_code(), None);
    assert_eq!(
        Opcode::RSA_PSS_SIGN_SHA384.sign_hash(),
        Some((crate::types::HashAlgorithm::Sha384, 48))
    );
    assert_eq!(
        Opcode::ECDSA_SIGN_MD5SHA1.sign_hash().map(|h| h.1),
        Some(36)
    );
    assert!(Opcode::PONG.is_response() && !Opcode::PING.is_response());
}

#[test]
fn decoder_skips_bad_frames_and_keeps_the_stream_in_sync() {
    let good1 = Packet::new(1, Operation::ping(vec![1])).to_bytes().unwrap();
    let bad = frame(2, 1, &[(0x11, &[1]), (0x11, &[1])], &[]);
    let old = frame(3, 9, &[(0x11, &[1])], &[]);
    let good2 = Packet::new(4, Operation::response(vec![2; 2000]))
        .to_bytes()
        .unwrap();
    let stream: Vec<u8> = [good1, bad, old, good2].concat();
    let mut d = Decoder::new();
    let mut out = Vec::new();
    for b in &stream {
        d.extend(std::slice::from_ref(b));
        while let Some(r) = d.next() {
            out.push(r.map(|p| p.id).map_err(|e| e.reply()));
        }
    }
    assert_eq!(
        out,
        vec![
            Ok(1),
            Err(Some((2, ErrorCode::FORMAT))),
            Err(Some((3, ErrorCode::VERSION_MISMATCH))),
            Ok(4)
        ]
    );
    assert_eq!(d.buffered(), 0);
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        // Not IPv4-mapped: those are written in their 4-byte form.
        any::<[u8; 16]>().prop_filter_map("mapped", |b| {
            let v6 = Ipv6Addr::from(b);
            v6.to_ipv4_mapped().is_none().then_some(IpAddr::V6(v6))
        }),
    ]
}

fn operation() -> impl Strategy<Value = Operation> {
    (
        any::<u8>(),
        bytes(1500),
        proptest::option::of(any::<[u8; 20]>()),
        proptest::option::of(any::<[u8; 32]>()),
        proptest::option::of(ip()),
        proptest::option::of(ip()),
        proptest::option::of("[a-z0-9.-]{0,40}"),
        (
            proptest::option::of(bytes(40)),
            proptest::option::of(bytes(40)),
            proptest::option::of(bytes(40)),
            proptest::option::of(bytes(40)),
        ),
    )
        .prop_map(
            |(
                opcode,
                payload,
                ski,
                digest,
                client_ip,
                server_ip,
                sni,
                (cert_id, custom_function, extra, request_context),
            )| Operation {
                opcode: Opcode(opcode),
                payload,
                ski: ski.map(Ski),
                digest: digest.map(Digest),
                client_ip,
                server_ip,
                sni,
                cert_id,
                custom_function,
                extra,
                request_context,
            },
        )
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(id in any::<u32>(), op in operation()) {
        let p = Packet::new(id, op);
        let bytes = p.to_bytes().unwrap();
        prop_assert_eq!(bytes.len(), p.encoded_len());
        prop_assert!(bytes.len() >= PADDED_LEN);
        prop_assert_eq!(Packet::decode(&bytes).unwrap(), p);
    }

    #[test]
    fn any_split_of_a_stream_yields_the_same_packets(ops in proptest::collection::vec(operation(), 1..5), cuts in proptest::collection::vec(1usize..700, 1..20)) {
        let packets: Vec<Packet> = ops.into_iter().enumerate().map(|(i, op)| Packet::new(i as u32, op)).collect();
        let stream: Vec<u8> = packets.iter().flat_map(|p| p.to_bytes().unwrap()).collect();
        let mut d = Decoder::new();
        let mut got = Vec::new();
        let mut at = 0;
        for cut in cuts.iter().cycle() {
            if at >= stream.len() { break; }
            let end = (at + cut).min(stream.len());
            d.extend(&stream[at..end]);
            at = end;
            while let Some(p) = d.next() { got.push(p.unwrap()); }
        }
        prop_assert_eq!(got, packets);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in bytes(3000)) {
        let _ = Packet::decode(&data);
        let mut d = Decoder::new();
        d.extend(&data);
        while let Some(r) = d.next() { let _ = r; }
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_header_never_panic(id in any::<u32>(), body in bytes(2000)) {
        let mut f = vec![1, 0];
        f.extend_from_slice(&(body.len() as u16).to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
        f.extend(body);
        if let Err(e) = Packet::decode(&f) { prop_assert_eq!(e.reply().map(|r| r.0), Some(id)); }
    }
}
