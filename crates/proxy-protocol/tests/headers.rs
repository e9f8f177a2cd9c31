//! Headers as load balancers write them (bytes written out here from the specification, and
//! curl's and HAProxy's forms), round trips through the encoder, and arbitrary input.

use edgetls_proxy_protocol::{
    Command, Parsed, ProxyProtocolError, TlsFacts, V2_SIGNATURE, encode_v2, parse,
    starts_like_header, tlv,
};
use proptest::prelude::*;
use std::net::SocketAddr;

fn header(buf: &[u8]) -> (edgetls_proxy_protocol::Header, usize) {
    match parse(buf).unwrap() {
        Parsed::Header(h, n) => (h, n),
        other => panic!("{other:?}"),
    }
}

#[test]
fn v1_as_curl_and_haproxy_send_it() {
    let line = b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 443\r\n\x16\x03\x01";
    let (h, used) = header(line);
    assert_eq!(
        used,
        line.len() - 3,
        "the TLS bytes after it are left alone"
    );
    assert_eq!((h.version, h.command), (1, Command::Proxy));
    assert_eq!(h.source, Some("192.0.2.7:50000".parse().unwrap()));
    assert_eq!(h.destination, Some("198.51.100.1:443".parse().unwrap()));
    let (h, _) = header(b"PROXY TCP6 2001:db8::7 2001:db8::1 50000 443\r\n");
    assert_eq!(h.source, Some("[2001:db8::7]:50000".parse().unwrap()));
    let (h, _) = header(b"PROXY UNKNOWN ffff:f...f:ffff 65535\r\n");
    assert_eq!(h.source, None);
}

#[test]
fn v1_wrong_or_unfinished_is_said_so() {
    assert_eq!(
        parse(b"PROXY TCP4 1.2.3.4").unwrap(),
        Parsed::Incomplete(19)
    );
    assert_eq!(parse(b"PRO").unwrap(), Parsed::Incomplete(4));
    for bad in [
        &b"PROXY TCP4 2001:db8::1 1.2.3.4 1 2\r\n"[..],
        b"PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.4 1 65536\r\n",
        b"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n",
    ] {
        assert!(
            matches!(parse(bad), Err(ProxyProtocolError::V1(_))),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat();
    assert!(matches!(parse(&long), Err(ProxyProtocolError::V1(_))));
}

#[test]
fn v2_written_out_from_the_specification() {
    // PROXY, TCP over IPv4, 127.0.0.1:1234 -> 127.0.0.1:443, then an AUTHORITY TLV.
    let mut b = V2_SIGNATURE.to_vec();
    b.extend_from_slice(&[0x21, 0x11, 0x00, 0x0c + 3 + 4]);
    b.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1, 0x04, 0xd2, 0x01, 0xbb]);
    b.extend_from_slice(&[0x02, 0x00, 0x04]);
    b.extend_from_slice(b"a.io");
    let (h, used) = header(&b);
    assert_eq!(used, b.len());
    assert_eq!(h.source, Some("127.0.0.1:1234".parse().unwrap()));
    assert_eq!(h.destination, Some("127.0.0.1:443".parse().unwrap()));
    assert_eq!(h.authority(), Some("a.io"));
    // The same as a LOCAL command (a health check): no client addresses.
    b[12] = 0x20;
    let (h, _) = header(&b);
    assert_eq!((h.command, h.source), (Command::Local, None));
    // Cut anywhere: incomplete, asking for the whole header.
    for cut in 1..b.len() {
        assert!(
            matches!(parse(&b[..cut]).unwrap(), Parsed::Incomplete(n) if n > cut),
            "{cut}"
        );
    }
    // A TLV running past the end of the header, and a wrong version.
    let mut short_tlv = b.clone();
    short_tlv[29..31].copy_from_slice(&[0, 9]);
    assert_eq!(
        parse(&short_tlv),
        Err(ProxyProtocolError::V2("TLV value cut short"))
    );
    let mut v3 = b.clone();
    v3[12] = 0x31;
    assert!(matches!(parse(&v3), Err(ProxyProtocolError::V2(_))));
    // Announcing more than we accept.
    let mut huge = V2_SIGNATURE.to_vec();
    huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
    assert_eq!(parse(&huge), Err(ProxyProtocolError::TooLong(65551)));
}

#[test]
fn a_tls_client_hello_is_not_a_header() {
    assert!(!starts_like_header(&[0x16, 0x03, 0x01, 0x02, 0x00]));
    assert_eq!(parse(&[0x16, 0x03, 0x01]).unwrap(), Parsed::NotProxy);
    assert_eq!(parse(b"GET / HTTP/1.1\r\n").unwrap(), Parsed::NotProxy);
    assert!(starts_like_header(b"PRO"));
    assert!(starts_like_header(&V2_SIGNATURE[..5]));
}

#[test]
fn the_tls_facts_go_out_as_tlvs() {
    let mut facts = TlsFacts::default();
    facts.alpn = Some(b"h2".to_vec());
    facts.sni = Some("shop.example.com".into());
    facts.version = Some("TLSv1.3".into());
    facts.cipher = Some("TLS_AES_128_GCM_SHA256".into());
    facts.client_cert = true;
    facts.verified = true;
    facts.cn = Some("client-1".into());
    let mut out = vec![0xaa]; // appended, not overwritten
    encode_v2(
        "192.0.2.7:50000".parse().unwrap(),
        "[2001:db8::1]:443".parse().unwrap(),
        Some(&facts),
        &mut out,
    );
    let (h, used) = header(&out[1..]);
    assert_eq!(used, out.len() - 1);
    // Mixed families go out as IPv6, the IPv4 client mapped.
    assert_eq!(h.source, Some("[::ffff:192.0.2.7]:50000".parse().unwrap()));
    assert_eq!(h.tlv(tlv::ALPN), Some(&b"h2"[..]));
    assert_eq!(h.authority(), Some("shop.example.com"));
    let ssl = h.ssl().unwrap();
    assert_eq!(
        ssl.client,
        tlv::CLIENT_SSL | tlv::CLIENT_CERT_CONN | tlv::CLIENT_CERT_SESS
    );
    assert_eq!(ssl.verify, 0);
    let sub = |k| ssl.sub(k);
    assert_eq!(sub(tlv::SSL_VERSION), Some(&b"TLSv1.3"[..]));
    assert_eq!(sub(tlv::SSL_CIPHER), Some(&b"TLS_AES_128_GCM_SHA256"[..]));
    assert_eq!(sub(tlv::SSL_CN), Some(&b"client-1"[..]));
    // An unverified certificate: verify non-zero, no CN.
    let mut out = Vec::new();
    let mut unverified = facts;
    unverified.verified = false;
    encode_v2(
        "192.0.2.7:1".parse().unwrap(),
        "198.51.100.1:2".parse().unwrap(),
        Some(&unverified),
        &mut out,
    );
    let ssl = header(&out).0.ssl().unwrap();
    assert!(ssl.client & tlv::CLIENT_CERT_CONN != 0 && ssl.verify != 0);
    assert_eq!(ssl.sub(tlv::SSL_CN), None);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse(&bytes);
        let mut signed = V2_SIGNATURE.to_vec();
        signed.extend_from_slice(&bytes);
        let _ = parse(&signed);
        let mut v1 = b"PROXY ".to_vec();
        v1.extend_from_slice(&bytes);
        let _ = parse(&v1);
    }

    #[test]
    fn what_is_written_reads_back(
        c in any::<SocketAddr>(), s in any::<SocketAddr>(),
        sni in proptest::option::of("[a-z0-9.-]{1,60}"), alpn in proptest::option::of(proptest::collection::vec(any::<u8>(), 1..20)),
    ) {
        let mut facts = TlsFacts::default();
        facts.sni = sni.clone();
        facts.alpn = alpn.clone();
        let mut out = Vec::new();
        encode_v2(c, s, Some(&facts), &mut out);
        let (h, used) = header(&out);
        prop_assert_eq!(used, out.len());
        // Only the address and the port travel (not an IPv6 scope or flow label).
        let plain = |a: SocketAddr| match (a, c.is_ipv4() && s.is_ipv4()) {
            (SocketAddr::V4(v4), false) => SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port()),
            _ => SocketAddr::new(a.ip(), a.port()),
        };
        prop_assert_eq!(h.source, Some(plain(c)));
        prop_assert_eq!(h.destination, Some(plain(s)));
        prop_assert_eq!(h.authority().map(str::to_string), sni);
        prop_assert_eq!(h.tlv(tlv::ALPN).map(<[u8]>::to_vec), alpn);
    }
}
