//! The server name of a ClientHello read from the socket without consuming it, for tunnel
//! rules that must be routed before TLS is terminated.

/// The SNI in a TLS record holding a ClientHello, if the bytes hold a whole one.
pub(crate) fn client_hello_sni(record: &[u8]) -> Option<String> {
    // Record: type 22 (handshake), version (2), length (2).
    let (&kind, rest) = record.split_first()?;
    if kind != 22 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]));
    let body = rest.get(4..4 + len)?;
    // Handshake: type 1 (ClientHello), 3-byte length.
    if *body.first()? != 1 {
        return None;
    }
    let mut p = body.get(4..)?;
    p = p.get(2 + 32..)?; // version, random
    let sid = usize::from(*p.first()?);
    p = p.get(1 + sid..)?;
    let suites = usize::from(u16::from_be_bytes([*p.first()?, *p.get(1)?]));
    p = p.get(2 + suites..)?;
    let comp = usize::from(*p.first()?);
    p = p.get(1 + comp..)?;
    let ext_len = usize::from(u16::from_be_bytes([*p.first()?, *p.get(1)?]));
    let mut ext = p.get(2..2 + ext_len)?;
    while ext.len() >= 4 {
        let kind = u16::from_be_bytes([ext[0], ext[1]]);
        let n = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        let data = ext.get(4..4 + n)?;
        if kind == 0 {
            return edgetls_tls::hello::server_name_extension(data);
        }
        ext = &ext[4 + n..];
    }
    None
}

/// Bytes needed to hold the whole first record, once its header is in.
pub(crate) fn record_len(header: &[u8]) -> Option<usize> {
    (header.len() >= 5).then(|| 5 + usize::from(u16::from_be_bytes([header[3], header[4]])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sni_of_a_real_client_hello_and_survives_truncation() {
        // A ClientHello as OpenSSL writes it, captured through a memory BIO.
        let ctx = openssl::ssl::SslContext::builder(openssl::ssl::SslMethod::tls_client())
            .unwrap()
            .build();
        let mut ssl = openssl::ssl::Ssl::new(&ctx).unwrap();
        ssl.set_hostname("Tunnel.Example.com").unwrap();
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        // Non-blocking: the handshake writes its ClientHello and stops, waiting for nothing.
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let _ = ssl.connect(a);
        let mut record = vec![0u8; 4096];
        let n = std::io::Read::read(&mut b, &mut record).unwrap();
        record.truncate(n);
        assert_eq!(record_len(&record), Some(n));
        assert_eq!(
            client_hello_sni(&record).as_deref(),
            Some("tunnel.example.com")
        );
        for cut in 0..n {
            assert_eq!(client_hello_sni(&record[..cut]), None);
        }
    }
}
