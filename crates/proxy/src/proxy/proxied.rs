//! The PROXY protocol at both ends: the header a load balancer in `proxy_protocol_from` sends
//! before the ClientHello (required from there, refused from anyone else), and the v2 header a
//! route with `send_proxy = "v2"` sends its origin before anything else.

use crate::proxy::Shared;
use edgetls_proxy_protocol::{MAX_HEADER, Parsed, TlsFacts, encode_v2, parse};
use openssl::nid::Nid;
use openssl::ssl::{NameType, SslRef};
use openssl::x509::X509VerifyResult;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The client's address and the one it connected to: from the PROXY header when `peer` is a
/// load balancer of `proxy_protocol_from` (the header is read off the socket then), else the
/// socket's own. `Err`: the connection is to be closed, with why.
pub(crate) async fn addresses(
    shared: &Shared,
    tcp: &mut TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    deadline: tokio::time::Instant,
) -> Result<(SocketAddr, Option<SocketAddr>), String> {
    if !shared
        .routes
        .load()
        .0
        .proxy_protocol_from
        .contains(peer.ip())
    {
        return Ok((peer, local));
    }
    let mut buf = vec![0u8; MAX_HEADER];
    let read = async {
        loop {
            let n = tcp.peek(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed before its PROXY header".to_string());
            }
            match parse(&buf[..n]) {
                Ok(Parsed::Header(h, used)) => {
                    // Off the socket: what follows is the client's ClientHello.
                    tcp.read_exact(&mut buf[..used])
                        .await
                        .map_err(|e| e.to_string())?;
                    return Ok(h);
                }
                Ok(Parsed::Incomplete(_)) if n < buf.len() => {
                    // Not all there yet: peek returns at once while data is pending.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Ok(Parsed::NotProxy) => {
                    shared.metrics.proxy_protocol("missing");
                    return Err("no PROXY header from a proxy_protocol_from address".into());
                }
                Ok(Parsed::Incomplete(_)) | Err(_) => {
                    shared.metrics.proxy_protocol("invalid");
                    let why = parse(&buf[..n])
                        .err()
                        .map_or("too long".into(), |e| e.to_string());
                    return Err(format!("bad PROXY header: {why}"));
                }
            }
        }
    };
    let header = match tokio::time::timeout_at(deadline, read).await {
        Ok(h) => h?,
        Err(_) => {
            shared.metrics.timeout();
            return Err("no PROXY header within the handshake timeout".into());
        }
    };
    shared.metrics.proxy_protocol("accepted");
    // LOCAL (a health check) or UNKNOWN: the connection's own addresses.
    Ok((header.source.unwrap_or(peer), header.destination.or(local)))
}

/// Whether a connection that is not from `proxy_protocol_from` starts like a PROXY header,
/// given its first byte (`P` of v1, `\r` of v2's signature; a ClientHello starts 0x16).
pub(crate) fn unexpected_header(shared: &Shared, peer: SocketAddr, first: u8) -> bool {
    let header = (first == b'P' || first == b'\r')
        && !shared
            .routes
            .load()
            .0
            .proxy_protocol_from
            .contains(peer.ip());
    if header {
        shared.metrics.proxy_protocol("refused");
    }
    header
}

/// The v2 header for the origin: the client's address, the address it connected to, and what
/// the TLS connection negotiated.
pub(crate) fn header_for_origin(
    ssl: &SslRef,
    client: SocketAddr,
    local: Option<SocketAddr>,
) -> Vec<u8> {
    let local = local.unwrap_or_else(|| {
        let any = match client.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        SocketAddr::new(any, 0)
    });
    let cert = ssl.peer_certificate();
    let cn = cert.as_ref().and_then(|c| {
        let entry = c.subject_name().entries_by_nid(Nid::COMMONNAME).next()?;
        entry.data().to_string().ok()
    });
    let mut facts = TlsFacts::default();
    facts.alpn = ssl.selected_alpn_protocol().map(<[u8]>::to_vec);
    facts.sni = ssl.servername(NameType::HOST_NAME).map(str::to_string);
    facts.version = Some(ssl.version_str().to_string());
    facts.cipher = ssl.current_cipher().map(|c| c.name().to_string());
    facts.client_cert = cert.is_some();
    facts.verified = cert.is_some() && ssl.verify_result() == X509VerifyResult::OK;
    facts.cn = cn;
    let mut out = Vec::with_capacity(128);
    encode_v2(client, local, Some(&facts), &mut out);
    out
}
