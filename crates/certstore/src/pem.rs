//! PEM blocks, read without OpenSSL's BIO machinery (which costs more than the DER parse).

use base64::Engine as _;

/// One `-----BEGIN LABEL-----` … `-----END LABEL-----` block.
#[derive(Debug)]
pub(crate) struct Block<'a> {
    pub(crate) label: &'a str,
    /// 1-based line of the BEGIN line.
    pub(crate) line: u32,
    /// Whether RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`, `DEK-Info: …`) precede the body.
    pub(crate) has_headers: bool,
    /// The whole block as text, for OpenSSL's legacy encrypted-PEM reader.
    pub(crate) text: &'a [u8],
    pub(crate) der: Vec<u8>,
}

/// A malformed block: the line it starts on and what is wrong.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PemError {
    pub(crate) line: u32,
    pub(crate) message: String,
}

/// Every PEM block in `data`, in order. Text outside blocks is ignored, as OpenSSL does.
pub(crate) fn parse(data: &[u8]) -> Result<Vec<Block<'_>>, PemError> {
    let mut blocks = Vec::new();
    let mut lines = Lines {
        data,
        pos: 0,
        line: 0,
    };
    while let Some((start, begin)) = lines.next_line() {
        let Some(label) = strip(begin, b"-----BEGIN ") else {
            continue;
        };
        let begin_line = lines.line;
        let mut body = Vec::with_capacity(1024);
        let mut has_headers = false;
        let mut in_headers = true;
        let end_label = loop {
            let Some((_, l)) = lines.next_line() else {
                return Err(PemError {
                    line: begin_line,
                    message: format!("truncated: BEGIN {label} has no END line"),
                });
            };
            if let Some(end) = strip(l, b"-----END ") {
                break end;
            }
            if in_headers && l.contains(&b':') {
                has_headers = true;
                continue;
            }
            in_headers = false;
            body.extend(l.iter().copied().filter(|b| !b.is_ascii_whitespace()));
        };
        if end_label != label {
            return Err(PemError {
                line: lines.line,
                message: format!("BEGIN {label} ends with END {end_label}"),
            });
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(&body)
            .map_err(|e| PemError {
                line: begin_line,
                message: format!("{label}: bad base64: {e}"),
            })?;
        if der.is_empty() {
            return Err(PemError {
                line: begin_line,
                message: format!("{label}: empty block"),
            });
        }
        blocks.push(Block {
            label,
            line: begin_line,
            has_headers,
            text: &data[start..lines.pos],
            der,
        });
    }
    Ok(blocks)
}

/// `-----BEGIN LABEL-----` → `LABEL`.
fn strip<'a>(line: &'a [u8], prefix: &[u8]) -> Option<&'a str> {
    let rest = line.strip_prefix(prefix)?;
    let label = rest.strip_suffix(b"-----")?;
    std::str::from_utf8(label).ok()
}

struct Lines<'a> {
    data: &'a [u8],
    pos: usize,
    line: u32,
}

impl<'a> Lines<'a> {
    /// The next line without its terminator (and surrounding blanks), with its start offset.
    fn next_line(&mut self) -> Option<(usize, &'a [u8])> {
        if self.pos >= self.data.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.data[start..];
        let len = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        self.pos = start + len + 1;
        self.pos = self.pos.min(self.data.len());
        self.line += 1;
        Some((start, rest[..len].trim_ascii()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str =
        "junk before\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\r\n";

    #[test]
    fn reads_blocks_and_skips_text_outside() {
        let b = parse(CERT.as_bytes()).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(
            (b[0].label, b[0].line, b[0].der.as_slice()),
            ("CERTIFICATE", 2, &[0, 1, 2, 3][..])
        );
        assert!(parse(b"nothing here").unwrap().is_empty());
    }

    #[test]
    fn truncated_and_mismatched_blocks_are_errors_with_lines() {
        let e = parse(b"\n-----BEGIN CERTIFICATE-----\nAAEC\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("truncated"), "{e:?}");
        let e =
            parse(b"-----BEGIN CERTIFICATE-----\nAAEC\n-----END PRIVATE KEY-----\n").unwrap_err();
        assert!(e.message.contains("ends with END PRIVATE KEY"), "{e:?}");
        let e =
            parse(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n").unwrap_err();
        assert!(e.message.contains("bad base64"), "{e:?}");
    }

    #[test]
    fn notices_encryption_headers() {
        let text = b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAEC\n-----END RSA PRIVATE KEY-----\n";
        let b = parse(text).unwrap();
        assert!(b[0].has_headers);
        assert_eq!(b[0].der, vec![0, 1, 2]);
    }
}
