//! Key-exchange groups: checking a configured list against what the library has, and the
//! group a handshake negotiated, as a metrics label.
//!
//! A list is colon-separated (`X25519MLKEM768:X25519:P-256`). A group the library lacks is an
//! error at load, unless it is written `?name`: then it is left out (and reported, for a
//! warning) — the same prefix OpenSSL 3.3+ understands, applied here on every library so that a
//! list written for a post-quantum build loads on one without ML-KEM. With no list, the
//! library's own default applies: on OpenSSL 3.5 and later that already prefers
//! X25519MLKEM768, then X25519 and P-256; on 3.0, X25519 first.

use crate::TlsError;

pub use crate::ossl::groups::{has, negotiated};

/// A group list made ready for the library: the groups it keeps and those left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The list to give the library (every name one it has, without `?`).
    pub list: String,
    /// The `?` groups the library lacks, left out.
    pub skipped: Vec<String>,
}

/// Checks `list` against the library: an error names the first group it lacks that is not
/// marked `?`.
pub fn resolve(list: &str) -> Result<Resolved, TlsError> {
    let mut kept = Vec::new();
    let mut skipped = Vec::new();
    for item in list.split(':').map(str::trim).filter(|g| !g.is_empty()) {
        let (optional, name) = match item.strip_prefix('?') {
            Some(name) => (true, name),
            None => (false, item),
        };
        if has(name) {
            kept.push(name);
        } else if optional {
            skipped.push(name.to_string());
        } else {
            return Err(TlsError::UnknownGroup {
                group: name.to_string(),
                library: openssl::version::version().to_string(),
            });
        }
    }
    Ok(Resolved {
        list: kept.join(":"),
        skipped,
    })
}

/// The label for a group name as libraries spell it (`x25519`, `secp256r1`, `prime256v1`, …):
/// one spelling per group, from a fixed set (so a metric's label values stay few).
pub fn label(name: &str) -> &'static str {
    const LABELS: [(&[&str], &str); 12] = [
        (&["X25519MLKEM768"], "X25519MLKEM768"),
        (&["SecP256r1MLKEM768"], "SecP256r1MLKEM768"),
        (&["SecP384r1MLKEM1024"], "SecP384r1MLKEM1024"),
        (&["X25519", "x25519"], "X25519"),
        (&["X448", "x448"], "X448"),
        (&["P-256", "secp256r1", "prime256v1"], "P-256"),
        (&["P-384", "secp384r1"], "P-384"),
        (&["P-521", "secp521r1"], "P-521"),
        (&["ffdhe2048"], "ffdhe2048"),
        (&["ffdhe3072"], "ffdhe3072"),
        (&["ffdhe4096"], "ffdhe4096"),
        (&["MLKEM768"], "MLKEM768"),
    ];
    LABELS
        .iter()
        .find(|(names, _)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
        .map_or("other", |(_, label)| label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_share_one_label_and_unknown_names_are_other() {
        assert_eq!(label("x25519"), "X25519");
        assert_eq!(label("prime256v1"), "P-256");
        assert_eq!(label("SECP384R1"), "P-384");
        assert_eq!(label("X25519MLKEM768"), "X25519MLKEM768");
        assert_eq!(label("brainpoolP256r1"), "other");
    }

    #[test]
    fn a_missing_group_is_an_error_unless_marked_optional() {
        let r = resolve("X25519:P-256").unwrap();
        assert_eq!(r.list, "X25519:P-256");
        assert!(r.skipped.is_empty());
        let e = resolve("X25519:NoSuchGroup").unwrap_err().to_string();
        assert!(
            e.contains("\"NoSuchGroup\"") && e.contains(crate::library::NAME),
            "{e}"
        );
        let r = resolve("?NoSuchGroup:X25519").unwrap();
        assert_eq!(r.list, "X25519");
        assert_eq!(r.skipped, ["NoSuchGroup"]);
        // A `?` group the library has is kept, without the mark.
        assert_eq!(resolve("?X25519").unwrap().list, "X25519");
    }

    #[test]
    fn ml_kem_is_there_exactly_from_openssl_3_5_and_on_aws_lc() {
        let pq = cfg!(awslc) || openssl::version::number() >= 0x3050_0000;
        assert_eq!(has("X25519MLKEM768"), pq);
    }
}
