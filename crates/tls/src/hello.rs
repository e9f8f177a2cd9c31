//! The parts of a ClientHello the hooks decide on, parsed from the extensions' bytes. Nothing
//! here touches the TLS library: the same parsing serves every library behind the seam and
//! code that reads ClientHellos off the socket itself (a TCP-level SNI router).

/// What a ClientHello hook ([`on_client_hello`](crate::on_client_hello)) tells the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Go on with the handshake.
    Continue,
    /// Pause it: the hook left work for the driver ([`retry::defer`](crate::retry::defer)),
    /// which runs it and steps the handshake again; the hook then runs again.
    Retry,
}

/// The host name (lowercased) in the body of a ClientHello's server_name extension
/// (RFC 6066), if well formed.
pub fn server_name_extension(ext: &[u8]) -> Option<String> {
    let list = ext.get(2..)?;
    let len = usize::from(u16::from_be_bytes([*ext.first()?, *ext.get(1)?]));
    let list = list.get(..len)?;
    // One entry: type 0 (host_name), a 2-byte length, the name.
    if *list.first()? != 0 {
        return None;
    }
    let n = usize::from(u16::from_be_bytes([*list.get(1)?, *list.get(2)?]));
    // RFC 6066: HostName is 1 to 2^16-1 bytes; an empty one is no name.
    let name = list.get(3..3 + n).filter(|n| !n.is_empty())?;
    std::str::from_utf8(name).ok().map(str::to_ascii_lowercase)
}

/// The protocol names of an ALPN extension body (RFC 7301: a 2-byte list length, then
/// length-prefixed names), in the client's order. A malformed list yields what precedes the
/// fault, and an empty name ends it.
pub fn alpn_protocols(ext: &[u8]) -> impl Iterator<Item = &[u8]> {
    let declared = ext
        .get(..2)
        .map_or(0, |l| usize::from(u16::from_be_bytes([l[0], l[1]])));
    let mut rest = ext.get(2..).and_then(|r| r.get(..declared)).unwrap_or(&[]);
    std::iter::from_fn(move || {
        let (&n, tail) = rest.split_first()?;
        let name = tail.get(..usize::from(n)).filter(|n| !n.is_empty());
        rest = match name {
            Some(name) => &tail[name.len()..],
            None => &[],
        };
        name
    })
}

#[cfg(test)]
mod tests {
    use super::{alpn_protocols, server_name_extension as server_name};

    #[test]
    fn an_empty_host_name_is_no_name() {
        assert_eq!(server_name(&[0, 3, 0, 0, 0]), None);
    }

    #[test]
    fn server_name_extension_parsing_survives_any_input() {
        let mut ext = vec![0, 12, 0, 0, 9];
        ext.extend_from_slice(b"Site.Test");
        assert_eq!(server_name(&ext).as_deref(), Some("site.test"));
        for cut in 0..ext.len() {
            assert_eq!(server_name(&ext[..cut]), None, "truncated at {cut}");
        }
        assert_eq!(server_name(&[0, 3, 1, 0, 0]), None, "not a host_name entry");
        assert_eq!(server_name(&[0xff, 0xff, 0, 0xff, 0xff]), None);
    }

    #[test]
    fn alpn_lists_are_read_in_order_and_faults_end_them() {
        let ext = [
            0, 12, 2, b'h', b'2', 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1',
        ];
        let got: Vec<&[u8]> = alpn_protocols(&ext).collect();
        assert_eq!(got, [&b"h2"[..], &b"http/1.1"[..]]);
        // Cut anywhere, the whole names before the cut survive and nothing else.
        for cut in 0..ext.len() {
            let n = alpn_protocols(&ext[..cut]).count();
            assert_eq!(
                n, 0,
                "a list shorter than it says is refused (cut at {cut})"
            );
        }
        let overlong = [0, 3, 5, b'a', b'b'];
        assert_eq!(alpn_protocols(&overlong).count(), 0);
        let empty_name = [0, 4, 0, 2, b'h', b'2'];
        assert_eq!(alpn_protocols(&empty_name).count(), 0);
    }
}
