//! Messages: an 8-byte header and a body of tag-length-value items.
//!
//! ```text
//! header:  major u8 = 1 | minor u8 = 0 | body length u16 BE | request id u32 BE
//! item:    tag u8 | length u16 BE | value
//! ```
//! Items are written in gokeyless's order (opcode, payload, SKI, digest, client IP, server IP,
//! SNI, then the rest). A message shorter than 1024 bytes gets one padding item of zeros that
//! brings it to 1024 (or 1–2 bytes past it when fewer than 3 bytes were missing, as gokeyless
//! does). On decoding, unknown tags are skipped, a repeated known tag is an error, and 1–2 stray
//! bytes after the last item are ignored, as gokeyless ignores them.

use crate::error::ProtoError;
use crate::ids::{Digest, Ski};
use crate::types::{ErrorCode, Opcode, Tag};
use std::net::IpAddr;

/// Header length in bytes.
pub const HEADER_LEN: usize = 8;
/// Messages shorter than this are padded to it.
pub const PADDED_LEN: usize = 1024;
/// The largest body the 16-bit length field allows.
pub const MAX_BODY: usize = u16::MAX as usize;
/// Protocol version this crate speaks.
pub const VERSION: (u8, u8) = (1, 0);

/// The items of a request or response. Every field but the opcode is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Operation {
    /// What to do (or, in an answer, how it went).
    pub opcode: Opcode,
    /// The data: a digest to sign, a ciphertext, a signature, an answer.
    pub payload: Vec<u8>,
    /// The key, by the SHA-1 of its SubjectPublicKeyInfo.
    pub ski: Option<Ski>,
    /// The key, by the legacy SHA-256 of its RSA modulus.
    pub digest: Option<Digest>,
    /// The TLS client's address.
    pub client_ip: Option<IpAddr>,
    /// The address the TLS client connected to.
    pub server_ip: Option<IpAddr>,
    /// The server name the TLS client asked for.
    pub sni: Option<String>,
    /// A certificate id (gokeyless's `CertID` item).
    pub cert_id: Option<Vec<u8>>,
    /// gokeyless's `CustomFuncName` item.
    pub custom_function: Option<Vec<u8>>,
    /// Opaque data from the client (gokeyless's `Extra` item).
    pub extra: Option<Vec<u8>>,
    /// Tracing context (gokeyless's `RequestContext` item).
    pub request_context: Option<Vec<u8>>,
}

impl Operation {
    /// A request for `opcode` on `payload` with the key named by `ski`.
    pub fn request(opcode: Opcode, ski: Ski, payload: Vec<u8>) -> Operation {
        Operation {
            opcode,
            payload,
            ski: Some(ski),
            ..Operation::default()
        }
    }

    /// A successful response carrying `payload`.
    pub fn response(payload: Vec<u8>) -> Operation {
        Operation {
            opcode: Opcode::RESPONSE,
            payload,
            ..Operation::default()
        }
    }

    /// An error response.
    pub fn error(code: ErrorCode) -> Operation {
        Operation {
            opcode: Opcode::ERROR,
            payload: vec![code.0],
            ..Operation::default()
        }
    }

    /// A ping carrying `payload`, and the pong that answers it.
    pub fn ping(payload: Vec<u8>) -> Operation {
        Operation {
            opcode: Opcode::PING,
            payload,
            ..Operation::default()
        }
    }

    /// The answer to a ping: the same payload back.
    pub fn pong(payload: Vec<u8>) -> Operation {
        Operation {
            opcode: Opcode::PONG,
            payload,
            ..Operation::default()
        }
    }

    /// For an error response, its code (a missing or long payload reads as `format`).
    pub fn error_code(&self) -> Option<ErrorCode> {
        let code = match self.payload.as_slice() {
            [code] => ErrorCode(*code),
            _ => ErrorCode::FORMAT,
        };
        (self.opcode == Opcode::ERROR).then_some(code)
    }

    /// The items to write, in wire order (padding excluded).
    fn items(&self) -> impl Iterator<Item = (Tag, ItemValue<'_>)> {
        fn bytes(tag: Tag, v: Option<&[u8]>) -> Option<(Tag, ItemValue<'_>)> {
            v.map(|v| (tag, ItemValue::Bytes(v)))
        }
        [
            Some((Tag::OPCODE, ItemValue::Byte(self.opcode.0))),
            (!self.payload.is_empty()).then_some((Tag::PAYLOAD, ItemValue::Bytes(&self.payload))),
            bytes(
                Tag::SUBJECT_KEY_IDENTIFIER,
                self.ski.as_ref().map(|s| &s.0[..]),
            ),
            bytes(
                Tag::CERTIFICATE_DIGEST,
                self.digest.as_ref().map(|d| &d.0[..]),
            ),
            self.client_ip.map(|ip| (Tag::CLIENT_IP, ItemValue::Ip(ip))),
            self.server_ip.map(|ip| (Tag::SERVER_IP, ItemValue::Ip(ip))),
            bytes(Tag::SERVER_NAME, self.sni.as_deref().map(str::as_bytes)),
            bytes(Tag::CERTIFICATE_ID, self.cert_id.as_deref()),
            bytes(Tag::CUSTOM_FUNCTION_NAME, self.custom_function.as_deref()),
            bytes(Tag::EXTRA, self.extra.as_deref()),
            bytes(Tag::REQUEST_CONTEXT, self.request_context.as_deref()),
        ]
        .into_iter()
        .flatten()
    }
}

impl Operation {
    /// The body length before padding.
    fn unpadded_body_len(&self) -> usize {
        self.items().map(|(_, v)| 3 + v.len()).sum()
    }

    /// Bytes this operation takes on the wire as a packet, header included.
    pub fn wire_len(&self) -> usize {
        let body = self.unpadded_body_len();
        if body + HEADER_LEN < PADDED_LEN {
            HEADER_LEN + body + 3 + (PADDED_LEN - (body + HEADER_LEN + 3).min(PADDED_LEN))
        } else {
            HEADER_LEN + body
        }
    }

    /// Appends the wire form of this operation as packet `id` to `out`, without copying the
    /// operation (what [`Packet::encode`] does).
    pub fn encode_as(&self, id: u32, out: &mut Vec<u8>) -> Result<(), ProtoError> {
        let total = self.wire_len();
        let body_len = total - HEADER_LEN;
        if body_len > MAX_BODY {
            return Err(ProtoError::TooLong(body_len));
        }
        for (_, v) in self.items() {
            if v.len() > MAX_BODY - 3 {
                return Err(ProtoError::TooLong(v.len()));
            }
        }
        out.reserve(total);
        out.extend_from_slice(&[VERSION.0, VERSION.1]);
        out.extend_from_slice(&(body_len as u16).to_be_bytes());
        out.extend_from_slice(&id.to_be_bytes());
        let body_start = out.len();
        for (tag, value) in self.items() {
            out.push(tag.0);
            out.extend_from_slice(&(value.len() as u16).to_be_bytes());
            value.write(out);
        }
        let written = out.len() - body_start;
        if written + HEADER_LEN < PADDED_LEN {
            let pad = PADDED_LEN.saturating_sub(written + HEADER_LEN + 3);
            out.push(Tag::PADDING.0);
            out.extend_from_slice(&(pad as u16).to_be_bytes());
            out.resize(out.len() + pad, 0);
        }
        Ok(())
    }
}

enum ItemValue<'a> {
    Byte(u8),
    Bytes(&'a [u8]),
    Ip(IpAddr),
}

impl ItemValue<'_> {
    fn len(&self) -> usize {
        match self {
            ItemValue::Byte(_) => 1,
            ItemValue::Bytes(b) => b.len(),
            ItemValue::Ip(IpAddr::V4(_)) => 4,
            ItemValue::Ip(IpAddr::V6(v6)) => {
                if v6.to_ipv4_mapped().is_some() {
                    4
                } else {
                    16
                }
            }
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            ItemValue::Byte(b) => out.push(*b),
            ItemValue::Bytes(b) => out.extend_from_slice(b),
            ItemValue::Ip(IpAddr::V4(v4)) => out.extend_from_slice(&v4.octets()),
            // gokeyless writes IPv4-mapped addresses in their 4-byte form.
            ItemValue::Ip(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => out.extend_from_slice(&v4.octets()),
                None => out.extend_from_slice(&v6.octets()),
            },
        }
    }
}

/// A whole message: request id and items.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Packet {
    /// The request id; an answer carries its request's.
    pub id: u32,
    /// The operation.
    pub op: Operation,
}

impl Packet {
    /// A frame with this id.
    pub fn new(id: u32, op: Operation) -> Packet {
        Packet { id, op }
    }

    /// Bytes this packet takes on the wire, header included.
    pub fn encoded_len(&self) -> usize {
        self.op.wire_len()
    }

    /// Appends the packet's wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ProtoError> {
        self.op.encode_as(self.id, out)
    }

    /// The packet's wire form.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ProtoError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }

    /// Decodes one whole message (header and exactly its body).
    pub fn decode(frame: &[u8]) -> Result<Packet, ProtoError> {
        let header = Header::parse(frame).ok_or(ProtoError::Format {
            id: 0,
            reason: "shorter than a header".into(),
        })?;
        let body = &frame[HEADER_LEN..];
        if body.len() != usize::from(header.length) {
            return Err(ProtoError::Format {
                id: header.id,
                reason: format!(
                    "header says {} body bytes, frame has {}",
                    header.length,
                    body.len()
                ),
            });
        }
        header.check()?;
        Ok(Packet {
            id: header.id,
            op: decode_body(header.id, body)?,
        })
    }
}

/// A parsed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Protocol major version (1).
    pub major: u8,
    /// Protocol minor version.
    pub minor: u8,
    /// Bytes of body that follow the header.
    pub length: u16,
    /// The request id.
    pub id: u32,
}

impl Header {
    /// Reads a header from the first 8 bytes.
    pub fn parse(b: &[u8]) -> Option<Header> {
        let h: &[u8; HEADER_LEN] = b.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Header {
            major: h[0],
            minor: h[1],
            length: u16::from_be_bytes([h[2], h[3]]),
            id: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        })
    }

    /// Major version 1 is spoken; the minor version is reserved and ignored.
    pub fn check(&self) -> Result<(), ProtoError> {
        if self.major != VERSION.0 {
            return Err(ProtoError::Version {
                id: self.id,
                major: self.major,
                minor: self.minor,
            });
        }
        Ok(())
    }
}

fn decode_body(id: u32, mut body: &[u8]) -> Result<Operation, ProtoError> {
    let fail = |reason: String| ProtoError::Format { id, reason };
    let mut op = Operation::default();
    let mut seen = [false; 256];
    let mut have_opcode = false;
    while body.len() >= 3 {
        let tag = Tag(body[0]);
        let len = usize::from(u16::from_be_bytes([body[1], body[2]]));
        let value = body.get(3..3 + len).ok_or_else(|| {
            fail(format!(
                "item {tag} claims {len} bytes, {} remain",
                body.len() - 3
            ))
        })?;
        body = &body[3 + len..];
        if tag.name().is_none() {
            continue; // unknown tags are skipped
        }
        if std::mem::replace(&mut seen[usize::from(tag.0)], true) {
            return Err(fail(format!("item {tag} appears twice")));
        }
        let exact = |n: usize| {
            if value.len() == n {
                Ok(())
            } else {
                Err(fail(format!(
                    "item {tag} has {} bytes, not {n}",
                    value.len()
                )))
            }
        };
        match tag {
            Tag::OPCODE => {
                exact(1)?;
                op.opcode = Opcode(value[0]);
                have_opcode = true;
            }
            Tag::PAYLOAD => op.payload = value.to_vec(),
            Tag::SUBJECT_KEY_IDENTIFIER => {
                exact(20)?;
                op.ski = Some(Ski(value.try_into().map_err(|_| fail("bad SKI".into()))?));
            }
            Tag::CERTIFICATE_DIGEST => {
                exact(32)?;
                op.digest = Some(Digest(
                    value.try_into().map_err(|_| fail("bad digest".into()))?,
                ));
            }
            Tag::CLIENT_IP => {
                op.client_ip =
                    Some(ip(value).ok_or_else(|| fail(format!("{tag}: {} bytes", value.len())))?)
            }
            Tag::SERVER_IP => {
                op.server_ip =
                    Some(ip(value).ok_or_else(|| fail(format!("{tag}: {} bytes", value.len())))?)
            }
            Tag::SERVER_NAME => {
                op.sni = Some(
                    String::from_utf8(value.to_vec())
                        .map_err(|_| fail("server name is not UTF-8".into()))?,
                )
            }
            Tag::CERTIFICATE_ID => op.cert_id = Some(value.to_vec()),
            Tag::CUSTOM_FUNCTION_NAME => op.custom_function = Some(value.to_vec()),
            Tag::EXTRA => op.extra = Some(value.to_vec()),
            Tag::REQUEST_CONTEXT => op.request_context = Some(value.to_vec()),
            _ => {} // padding
        }
    }
    if !have_opcode {
        return Err(fail("no opcode item".into()));
    }
    Ok(op)
}

/// An address item: 4 or 16 bytes. An IPv4-mapped IPv6 address reads as the IPv4 address it
/// maps, the form the encoder writes (as gokeyless does), so decoding and encoding agree.
fn ip(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => {
            let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?);
            Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
