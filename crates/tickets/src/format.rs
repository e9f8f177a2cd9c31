//! Ticket key files as Traffic Server, nginx and HAProxy write them. They all differ, so the
//! format is always named explicitly:
//!
//! | format | file | record layout | which key encrypts |
//! |---|---|---|---|
//! | `ats` | n × 48 B raw (bytes after the last whole record ignored, as Traffic Server does) | name16 · hmac16 · aes16 | record 0 |
//! | `nginx48` | one 48 B raw key per file | name16 · aes16 · hmac16 | the first file |
//! | `nginx80` | one 80 B raw key per file | name16 · hmac32 · aes32 | the first file |
//! | `haproxy` | base64 lines of 48 or 80 B | name16 · aes · hmac | the penultimate line |

use crate::error::TicketError;
use crate::key::{KeySet, KeySize, TicketKey};
use base64::Engine as _;
use std::path::Path;
use zeroize::Zeroizing;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
/// A ticket key file format, always named: the bytes alone cannot tell nginx's from HAProxy's.
pub enum Format {
    /// Traffic Server: 48-byte records (name, HMAC secret, AES key), the first one encrypts.
    Ats,
    /// nginx: one 48-byte key (AES-128) per file.
    Nginx48,
    /// nginx: one 80-byte key (AES-256) per file.
    Nginx80,
    /// HAProxy: base64 lines, 48 or 80 bytes each; the penultimate encrypts.
    Haproxy,
}

impl std::str::FromStr for Format {
    type Err = TicketError;

    fn from_str(s: &str) -> Result<Format, TicketError> {
        Ok(match s {
            "ats" => Format::Ats,
            "nginx48" => Format::Nginx48,
            "nginx80" => Format::Nginx80,
            "haproxy" => Format::Haproxy,
            other => return Err(TicketError::UnknownFormat(other.to_string())),
        })
    }
}

impl Format {
    /// The format's name: `ats`, `nginx48`, `nginx80` or `haproxy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Ats => "ats",
            Format::Nginx48 => "nginx48",
            Format::Nginx80 => "nginx80",
            Format::Haproxy => "haproxy",
        }
    }

    /// The key size a fresh file of this format holds.
    pub fn default_size(self) -> KeySize {
        match self {
            Format::Ats | Format::Nginx48 => KeySize::Aes128,
            Format::Nginx80 | Format::Haproxy => KeySize::Aes256,
        }
    }

    /// Where the encrypting key of `n` keys sits in a file of this format.
    pub fn encrypting_index(self, n: usize) -> usize {
        match self {
            Format::Haproxy if n >= 2 => n - 2,
            _ => 0,
        }
    }
}

/// Reads one key file.
pub fn read(path: &Path, format: Format) -> Result<KeySet, TicketError> {
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| TicketError::Io {
        path: path.to_path_buf(),
        source,
    })?);
    parse(path, &bytes, format)
}

/// Reads several key files of one format, as nginx does with several `ssl_session_ticket_key`
/// lines: the first file's encrypting key encrypts, every key decrypts.
pub fn read_files(paths: &[&Path], format: Format) -> Result<KeySet, TicketError> {
    let mut keys = Vec::new();
    let mut encrypt = 0;
    for (i, p) in paths.iter().enumerate() {
        let set = read(p, format)?;
        if i == 0 {
            encrypt = set.encrypt;
        }
        keys.extend(set.keys);
    }
    KeySet::new(keys, encrypt)
}

/// Parses the content of a key file (`path` names it in errors).
pub fn parse(path: &Path, bytes: &[u8], format: Format) -> Result<KeySet, TicketError> {
    match format {
        Format::Ats => {
            // Traffic Server reads ⌊n/48⌋ records and ignores what is left (its own test file
            // is 834 bytes: 17 records and 18 bytes); fewer than 48 bytes is no key at all.
            if bytes.len() < 48 {
                return Err(TicketError::format(
                    path,
                    format!(
                        "{} bytes: an ATS ticket key file holds 48-byte records, at least one",
                        bytes.len()
                    ),
                ));
            }
            let keys = bytes
                .chunks_exact(48)
                .map(|r| TicketKey::new(name(r), &r[16..32], &r[32..48]))
                .collect::<Result<Vec<_>, _>>()?;
            KeySet::new(keys, 0)
        }
        Format::Nginx48 | Format::Nginx80 => {
            let want = if format == Format::Nginx48 { 48 } else { 80 };
            if bytes.len() != want {
                return Err(TicketError::format(
                    path,
                    format!(
                        "{} bytes: an {} ticket key file holds exactly {want} bytes",
                        bytes.len(),
                        format.as_str()
                    ),
                ));
            }
            let key = if want == 48 {
                TicketKey::new(name(bytes), &bytes[32..48], &bytes[16..32])?
            } else {
                TicketKey::new(name(bytes), &bytes[16..48], &bytes[48..80])?
            };
            KeySet::new(vec![key], 0)
        }
        Format::Haproxy => {
            let text = std::str::from_utf8(bytes).map_err(|_| {
                TicketError::format(path, "not text (HAProxy keys are base64 lines)")
            })?;
            let mut keys = Vec::new();
            let mut size = None;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let bad = |message: String| TicketError::Line {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message,
                };
                let raw = Zeroizing::new(
                    base64::engine::general_purpose::STANDARD
                        .decode(line)
                        .map_err(|e| bad(format!("not base64: {e}")))?,
                );
                let this = KeySize::from_record_len(raw.len()).ok_or_else(|| {
                    bad(format!(
                        "{} bytes after base64 (a key is 48 or 80)",
                        raw.len()
                    ))
                })?;
                if *size.get_or_insert(this) != this {
                    return Err(bad("keys of different sizes in one file".into()));
                }
                let n = this.secret_len();
                keys.push(TicketKey::new(
                    name(&raw),
                    &raw[16 + n..],
                    &raw[16..16 + n],
                )?);
            }
            if keys.is_empty() {
                return Err(TicketError::format(path, "no keys"));
            }
            let encrypt = format.encrypting_index(keys.len());
            KeySet::new(keys, encrypt)
        }
    }
}

/// The file content for `set` in `format`. The encrypting key is placed where the format
/// expects it (first, or penultimate for HAProxy).
pub fn write(set: &KeySet, format: Format) -> Result<Zeroizing<Vec<u8>>, TicketError> {
    let n = set.keys.len();
    let mut order: Vec<&TicketKey> = set.keys.iter().collect();
    order.swap(set.encrypt, format.encrypting_index(n));
    let mut out = Zeroizing::new(Vec::new());
    match format {
        Format::Ats => {
            for k in &order {
                if k.size() != KeySize::Aes128 {
                    return Err(TicketError::Invalid(
                        "ATS ticket key files hold 48-byte (AES-128) keys only".into(),
                    ));
                }
                out.extend_from_slice(k.name());
                out.extend_from_slice(k.hmac_secret());
                out.extend_from_slice(k.aes_key());
            }
        }
        Format::Nginx48 | Format::Nginx80 => {
            if n != 1 {
                return Err(TicketError::Invalid(format!(
                    "nginx reads one key per file ({n} given): write one file per key, \
                     the encrypting one first in the configuration"
                )));
            }
            let k = order[0];
            let want = if format == Format::Nginx48 {
                KeySize::Aes128
            } else {
                KeySize::Aes256
            };
            if k.size() != want {
                return Err(TicketError::Invalid(format!(
                    "{} holds {} keys",
                    format.as_str(),
                    want.as_str()
                )));
            }
            out.extend_from_slice(k.name());
            if format == Format::Nginx48 {
                out.extend_from_slice(k.aes_key());
                out.extend_from_slice(k.hmac_secret());
            } else {
                out.extend_from_slice(k.hmac_secret());
                out.extend_from_slice(k.aes_key());
            }
        }
        Format::Haproxy => {
            for k in &order {
                let mut raw = Zeroizing::new(Vec::with_capacity(80));
                raw.extend_from_slice(k.name());
                raw.extend_from_slice(k.aes_key());
                raw.extend_from_slice(k.hmac_secret());
                let line = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*raw));
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        }
    }
    Ok(out)
}

fn name(record: &[u8]) -> [u8; 16] {
    let mut n = [0u8; 16];
    n.copy_from_slice(&record[..16]);
    n
}
