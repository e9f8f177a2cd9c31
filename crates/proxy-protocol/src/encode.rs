//! Writing a v2 header for an origin.

use crate::{V2_SIGNATURE, tlv};
use std::net::SocketAddr;

/// What the origin is told of the TLS connection the client made (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsFacts {
    /// The protocol ALPN selected (`PP2_TYPE_ALPN`).
    pub alpn: Option<Vec<u8>>,
    /// The server name the client asked for (`PP2_TYPE_AUTHORITY`).
    pub sni: Option<String>,
    /// `TLSv1.3`, … (`PP2_SUBTYPE_SSL_VERSION`).
    pub version: Option<String>,
    /// The cipher suite's OpenSSL name (`PP2_SUBTYPE_SSL_CIPHER`).
    pub cipher: Option<String>,
    /// The client presented a certificate on this connection.
    pub client_cert: bool,
    /// The client's certificate was verified (the `verify` field is then 0).
    pub verified: bool,
    /// The verified client certificate's common name (`PP2_SUBTYPE_SSL_CN`).
    pub cn: Option<String>,
}

fn put_tlv(out: &mut Vec<u8>, kind: u8, value: &[u8]) {
    // Values here are short (names, protocol ids); a longer one is cut to what fits.
    let len = value.len().min(usize::from(u16::MAX));
    out.push(kind);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&value[..len]);
}

/// Appends a v2 `PROXY` header for a connection from `client` to `server` to `out`; with
/// `tls`, the TLS TLVs: ALPN, authority, and `PP2_TYPE_SSL` (client flags, verify result,
/// version, cipher and, when verified, the client certificate's CN). Addresses of different
/// families are sent as IPv6 (IPv4-mapped).
pub fn encode_v2(
    client: SocketAddr,
    server: SocketAddr,
    tls: Option<&TlsFacts>,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    out.extend_from_slice(&V2_SIGNATURE);
    out.push(0x21); // version 2, PROXY
    out.extend_from_slice(&[0, 0, 0]); // family, then the length, filled in below
    match (client, server) {
        (SocketAddr::V4(c), SocketAddr::V4(s)) => {
            out[start + 13] = 0x11;
            out.extend_from_slice(&c.ip().octets());
            out.extend_from_slice(&s.ip().octets());
        }
        _ => {
            out[start + 13] = 0x21;
            let v6 = |a: SocketAddr| match a {
                SocketAddr::V4(a) => a.ip().to_ipv6_mapped().octets(),
                SocketAddr::V6(a) => a.ip().octets(),
            };
            out.extend_from_slice(&v6(client));
            out.extend_from_slice(&v6(server));
        }
    }
    out.extend_from_slice(&client.port().to_be_bytes());
    out.extend_from_slice(&server.port().to_be_bytes());
    if let Some(t) = tls {
        if let Some(alpn) = &t.alpn {
            put_tlv(out, tlv::ALPN, alpn);
        }
        if let Some(sni) = &t.sni {
            put_tlv(out, tlv::AUTHORITY, sni.as_bytes());
        }
        let mut ssl = Vec::new();
        let mut flags = tlv::CLIENT_SSL;
        if t.client_cert {
            flags |= tlv::CLIENT_CERT_CONN | tlv::CLIENT_CERT_SESS;
        }
        ssl.push(flags);
        // 0: the client presented a certificate and it was verified, or presented none.
        let verify: u32 = if t.client_cert && !t.verified { 1 } else { 0 };
        ssl.extend_from_slice(&verify.to_be_bytes());
        if let Some(v) = &t.version {
            put_tlv(&mut ssl, tlv::SSL_VERSION, v.as_bytes());
        }
        if let Some(c) = &t.cipher {
            put_tlv(&mut ssl, tlv::SSL_CIPHER, c.as_bytes());
        }
        if let (true, Some(cn)) = (t.verified, &t.cn) {
            put_tlv(&mut ssl, tlv::SSL_CN, cn.as_bytes());
        }
        put_tlv(out, tlv::SSL, &ssl);
    }
    let len = (out.len() - start - 16).min(usize::from(u16::MAX)) as u16;
    out[start + 14..start + 16].copy_from_slice(&len.to_be_bytes());
}
