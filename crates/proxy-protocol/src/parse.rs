//! Reading a header.

use crate::{MAX_HEADER, ProxyProtocolError, V1_MAX, V2_SIGNATURE, tlv};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What the sender asks of a v2 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// The connection is the sender's own (a health check): use the real addresses.
    Local,
    /// The connection is relayed for the client the addresses name.
    Proxy,
}

/// A parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// 1 or 2.
    pub version: u8,
    /// `PROXY` (a relayed connection) or `LOCAL` (the balancer's own, e.g. a health check).
    pub command: Command,
    /// The client's address, and the address it connected to; `None` for `UNKNOWN`, `LOCAL`,
    /// UNIX sockets or an unspecified family (use the connection's own addresses then).
    pub source: Option<SocketAddr>,
    /// The address the client connected to.
    pub destination: Option<SocketAddr>,
    /// Type-length-value extensions (v2), in order.
    pub tlvs: Vec<(u8, Vec<u8>)>,
}

impl Header {
    /// The value of the first TLV of `kind`.
    pub fn tlv(&self, kind: u8) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| v.as_slice())
    }

    /// The server name the client asked for (`PP2_TYPE_AUTHORITY`), if sent and UTF-8.
    pub fn authority(&self) -> Option<&str> {
        std::str::from_utf8(self.tlv(tlv::AUTHORITY)?).ok()
    }

    /// The `PP2_TYPE_SSL` TLV, read.
    pub fn ssl(&self) -> Option<Ssl> {
        let v = self.tlv(tlv::SSL)?;
        let (&client, rest) = v.split_first()?;
        let verify = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
        Some(Ssl {
            client,
            verify,
            tlvs: tlvs(&rest[4..]).ok()?,
        })
    }
}

/// What `PP2_TYPE_SSL` says of the client's TLS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ssl {
    /// `tlv::CLIENT_SSL`, `CLIENT_CERT_CONN`, `CLIENT_CERT_SESS` flags.
    pub client: u8,
    /// 0 when the client's certificate was verified (or none was presented).
    pub verify: u32,
    /// The sub-TLVs: version, cipher, CN, …
    pub tlvs: Vec<(u8, Vec<u8>)>,
}

impl Ssl {
    /// The value of the sub-TLV of `kind` (`tlv::SSL_VERSION`, …).
    pub fn sub(&self, kind: u8) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| v.as_slice())
    }
}

/// The outcome of looking at a connection's first bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A whole header, and how many bytes it took (the connection's data follows).
    Header(Header, usize),
    /// Could be a header: at least this many bytes are needed to tell (or to finish it).
    Incomplete(usize),
    /// Not a PROXY header at all (e.g. a TLS ClientHello).
    NotProxy,
}

/// Whether `buf` (at least its first bytes) begins like a v1 or v2 header: as far as it goes,
/// it matches `PROXY ` or the v2 signature.
pub fn starts_like_header(buf: &[u8]) -> bool {
    let n = buf.len().min(12);
    let v1 = b"PROXY ";
    buf[..n.min(v1.len())] == v1[..n.min(v1.len())] || buf[..n] == V2_SIGNATURE[..n]
}

/// Reads a header from the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyProtocolError> {
    if buf.is_empty() {
        return Ok(Parsed::Incomplete(1));
    }
    if !starts_like_header(buf) {
        return Ok(Parsed::NotProxy);
    }
    if buf[0] == b'P' { v1(buf) } else { v2(buf) }
}

fn v1(buf: &[u8]) -> Result<Parsed, ProxyProtocolError> {
    let bad = ProxyProtocolError::V1;
    let Some(end) = buf.windows(2).take(V1_MAX - 1).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Err(bad("no CRLF within 107 bytes"))
        } else {
            Ok(Parsed::Incomplete(buf.len() + 1))
        };
    };
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| bad("not ASCII"))?;
    let words: Vec<&str> = line.split(' ').collect();
    let (source, destination) = match words.as_slice() {
        ["PROXY", "UNKNOWN", ..] => (None, None),
        ["PROXY", family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let ip = |s: &str| -> Result<IpAddr, ProxyProtocolError> {
                let ip: IpAddr = s.parse().map_err(|_| bad("bad address"))?;
                match (*family, ip) {
                    ("TCP4", IpAddr::V4(_)) | ("TCP6", IpAddr::V6(_)) => Ok(ip),
                    _ => Err(bad("address of the wrong family")),
                }
            };
            let port = |s: &str| -> Result<u16, ProxyProtocolError> {
                // Decimal without leading zeros, as the specification writes them.
                if s.is_empty() || (s.len() > 1 && s.starts_with('0')) {
                    return Err(bad("bad port"));
                }
                s.parse().map_err(|_| bad("bad port"))
            };
            (
                Some(SocketAddr::new(ip(src)?, port(sport)?)),
                Some(SocketAddr::new(ip(dst)?, port(dport)?)),
            )
        }
        _ => {
            return Err(bad(
                "expected PROXY TCP4|TCP6 SRC DST SPORT DPORT or PROXY UNKNOWN",
            ));
        }
    };
    let header = Header {
        version: 1,
        command: Command::Proxy,
        source,
        destination,
        tlvs: Vec::new(),
    };
    Ok(Parsed::Header(header, end + 2))
}

fn v2(buf: &[u8]) -> Result<Parsed, ProxyProtocolError> {
    let bad = ProxyProtocolError::V2;
    if buf.len() < 16 {
        return Ok(Parsed::Incomplete(16));
    }
    let total = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if total > MAX_HEADER {
        return Err(ProxyProtocolError::TooLong(total));
    }
    if buf.len() < total {
        return Ok(Parsed::Incomplete(total));
    }
    let (ver_cmd, fam) = (buf[12], buf[13]);
    if ver_cmd >> 4 != 2 {
        return Err(bad("version is not 2"));
    }
    let command = match ver_cmd & 0x0f {
        0 => Command::Local,
        1 => Command::Proxy,
        _ => return Err(bad("unknown command")),
    };
    let body = &buf[16..total];
    let (addresses, rest) = match fam {
        // TCP or UDP over IPv4 / IPv6.
        0x11 | 0x12 => {
            let a = body.get(..12).ok_or(bad("IPv4 addresses cut short"))?;
            let ip = |o: usize| IpAddr::V4(Ipv4Addr::new(a[o], a[o + 1], a[o + 2], a[o + 3]));
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            (
                Some((
                    SocketAddr::new(ip(0), port(8)),
                    SocketAddr::new(ip(4), port(10)),
                )),
                &body[12..],
            )
        }
        0x21 | 0x22 => {
            let a = body.get(..36).ok_or(bad("IPv6 addresses cut short"))?;
            let ip = |o: usize| {
                let octets: [u8; 16] = a[o..o + 16].try_into().unwrap_or([0; 16]);
                IpAddr::V6(Ipv6Addr::from(octets))
            };
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            (
                Some((
                    SocketAddr::new(ip(0), port(32)),
                    SocketAddr::new(ip(16), port(34)),
                )),
                &body[36..],
            )
        }
        0x31 | 0x32 => (
            None,
            body.get(216..).ok_or(bad("UNIX addresses cut short"))?,
        ),
        0x00 => (None, body),
        _ => return Err(bad("unknown address family or protocol")),
    };
    let tlvs = tlvs(rest)?;
    // LOCAL: the addresses, if any, are not the client's.
    let (source, destination) = match (command, addresses) {
        (Command::Proxy, Some((s, d))) => (Some(s), Some(d)),
        _ => (None, None),
    };
    let header = Header {
        version: 2,
        command,
        source,
        destination,
        tlvs,
    };
    Ok(Parsed::Header(header, total))
}

/// A sequence of type (1 byte), length (2 bytes, big-endian), value.
fn tlvs(mut b: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, ProxyProtocolError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let [kind, hi, lo, rest @ ..] = b else {
            return Err(ProxyProtocolError::V2("TLV header cut short"));
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let value = rest
            .get(..len)
            .ok_or(ProxyProtocolError::V2("TLV value cut short"))?;
        out.push((*kind, value.to_vec()));
        b = &rest[len..];
    }
    Ok(out)
}
