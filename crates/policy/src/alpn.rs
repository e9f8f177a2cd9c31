//! ALPN and NPN protocol lists in wire format (RFC 7301 §3.1): a 2-byte length (ALPN; the
//! extension body) or none (the inner list), then entries of a 1-byte length and 1–255 bytes.

/// Why a wire-format list was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// No entries at all.
    Empty,
    /// An entry of length 0.
    EmptyName,
    /// An entry runs past the end of the list.
    Overrun,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WireError::Empty => "empty protocol list",
            WireError::EmptyName => "empty protocol name",
            WireError::Overrun => "a length runs past the end of the list",
        })
    }
}

/// The protocol names of a list of length-prefixed entries (no outer length), strictly: no empty
/// names, no overruns, at least one name.
pub fn parse_list(list: &[u8]) -> Result<Vec<&[u8]>, WireError> {
    let mut out = Vec::new();
    let mut rest = list;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len);
        if len == 0 {
            return Err(WireError::EmptyName);
        }
        if tail.len() < len {
            return Err(WireError::Overrun);
        }
        let (name, tail) = tail.split_at(len);
        out.push(name);
        rest = tail;
    }
    if out.is_empty() {
        return Err(WireError::Empty);
    }
    Ok(out)
}

/// The protocol names of an ALPN extension body (2-byte length, then the list).
pub fn parse_extension(ext: &[u8]) -> Result<Vec<&[u8]>, WireError> {
    let [hi, lo, list @ ..] = ext else {
        return Err(WireError::Overrun);
    };
    let len = usize::from(u16::from_be_bytes([*hi, *lo]));
    if list.len() != len {
        return Err(WireError::Overrun);
    }
    parse_list(list)
}

/// The wire list (no outer length) of `protocols` (each 1–255 bytes).
pub fn to_wire(protocols: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in protocols {
        out.push(p.len() as u8);
        out.extend_from_slice(p);
    }
    out
}

/// RFC 7301 selection: the first of the server's protocols, in its order of preference, that
/// the client offered. `client` is the client's wire list.
pub fn select<'c>(server: &[Vec<u8>], client: &'c [u8]) -> Result<Option<&'c [u8]>, WireError> {
    let offered = parse_list(client)?;
    Ok(server
        .iter()
        .find_map(|s| offered.iter().find(|c| **c == s.as_slice()).copied()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_parsing() {
        assert_eq!(
            parse_list(b"\x02h2\x08http/1.1").unwrap(),
            vec![&b"h2"[..], b"http/1.1"]
        );
        assert_eq!(parse_list(b""), Err(WireError::Empty));
        assert_eq!(parse_list(b"\x00"), Err(WireError::EmptyName));
        assert_eq!(parse_list(b"\x02h2\x00"), Err(WireError::EmptyName));
        assert_eq!(parse_list(b"\x03h2"), Err(WireError::Overrun));
        assert_eq!(
            parse_extension(b"\x00\x03\x02h2").unwrap(),
            vec![&b"h2"[..]]
        );
        assert_eq!(parse_extension(b"\x00\x04\x02h2"), Err(WireError::Overrun));
        assert_eq!(parse_extension(b"\x00"), Err(WireError::Overrun));
    }

    #[test]
    fn the_server_preference_wins_among_the_client_offers() {
        let server = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        assert_eq!(
            select(&server, b"\x08http/1.1\x02h2").unwrap(),
            Some(&b"h2"[..])
        );
        assert_eq!(
            select(&server, b"\x08http/1.1").unwrap(),
            Some(&b"http/1.1"[..])
        );
        assert_eq!(select(&server, b"\x06banana").unwrap(), None);
        assert_eq!(to_wire(&server), b"\x02h2\x08http/1.1");
    }
}
