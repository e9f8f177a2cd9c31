//! Host names as the index stores them: lowercase ASCII, one trailing dot stripped.
//!
//! Wildcards follow RFC 9525: only a whole left-most `*` label, matching exactly one label.
//! `*.example.com` matches `a.example.com`, but neither `example.com` nor `a.b.example.com`.

/// The longest DNS name (RFC 1035), without the trailing dot.
pub(crate) const MAX_NAME_LEN: usize = 253;

/// What a configured name turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NamePattern {
    /// An exact host name, normalized.
    Exact(String),
    /// `*.suffix`: holds the normalized suffix (without `*.`).
    Wildcard(String),
}

/// Normalizes a configured name (from a certificate SAN/CN or a config file).
///
/// Returns `None` for names that can never match an SNI value: empty, too long, non-ASCII,
/// containing characters outside letters, digits, `-`, `_`, `.` (and `*` as a whole first label),
/// empty labels, or a wildcard anywhere but as the whole left-most label.
pub(crate) fn parse_pattern(raw: &str) -> Option<NamePattern> {
    let name = normalize(raw)?;
    if let Some(suffix) = name.strip_prefix("*.") {
        // The suffix needs at least two labels: `*.com` would match every .com name.
        if suffix.contains('*') || !suffix.contains('.') || !valid_labels(suffix) {
            return None;
        }
        return Some(NamePattern::Wildcard(suffix.to_string()));
    }
    if name.contains('*') || !valid_labels(&name) {
        return None;
    }
    Some(NamePattern::Exact(name))
}

fn normalize(raw: &str) -> Option<String> {
    let trimmed = raw.strip_suffix('.').unwrap_or(raw);
    if trimmed.is_empty() || trimmed.len() > MAX_NAME_LEN || !trimmed.is_ascii() {
        return None;
    }
    Some(trimmed.to_ascii_lowercase())
}

fn valid_labels(name: &str) -> bool {
    name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Normalizes a name received from a client (SNI) into `buf` without allocating.
///
/// Returns `None` when the name cannot be in the index (too long or non-ASCII).
pub(crate) fn normalize_lookup<'b>(raw: &str, buf: &'b mut [u8; MAX_NAME_LEN]) -> Option<&'b [u8]> {
    let raw = raw.as_bytes();
    let raw = raw.strip_suffix(b".").unwrap_or(raw);
    if raw.is_empty() || raw.len() > MAX_NAME_LEN {
        return None;
    }
    let out = &mut buf[..raw.len()];
    for (o, &b) in out.iter_mut().zip(raw) {
        if !b.is_ascii() {
            return None;
        }
        *o = b.to_ascii_lowercase();
    }
    Some(out)
}

/// The part of a name after its first label, the key a one-label wildcard is stored under.
pub(crate) fn parent(name: &[u8]) -> Option<&[u8]> {
    let dot = name.iter().position(|&b| b == b'.')?;
    let rest = &name[dot + 1..];
    // `a.com` has parent `com`: wildcards over a single label are never stored, skip the search.
    (!rest.is_empty() && rest.contains(&b'.')).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_are_lowercased_and_lose_one_trailing_dot() {
        assert_eq!(
            parse_pattern("WWW.Example.COM."),
            Some(NamePattern::Exact("www.example.com".into()))
        );
        assert_eq!(parse_pattern("example.com.."), None);
        assert_eq!(parse_pattern(""), None);
        assert_eq!(parse_pattern("."), None);
    }

    #[test]
    fn wildcards_must_be_a_whole_leftmost_label() {
        assert_eq!(
            parse_pattern("*.Example.com"),
            Some(NamePattern::Wildcard("example.com".into()))
        );
        assert_eq!(parse_pattern("w*.example.com"), None);
        assert_eq!(parse_pattern("a.*.example.com"), None);
        assert_eq!(parse_pattern("*.*.example.com"), None);
        assert_eq!(parse_pattern("*.com"), None);
        assert_eq!(parse_pattern("*"), None);
    }

    #[test]
    fn rejects_bad_characters_and_lengths() {
        assert_eq!(parse_pattern("exa mple.com"), None);
        assert_eq!(parse_pattern("bücher.de"), None);
        assert_eq!(parse_pattern(&format!("{}.com", "a".repeat(64))), None);
        assert_eq!(parse_pattern(&"a.".repeat(130)), None);
    }

    #[test]
    fn lookup_normalization_matches_insert_normalization() {
        let mut buf = [0u8; MAX_NAME_LEN];
        assert_eq!(
            normalize_lookup("WwW.Example.Com.", &mut buf),
            Some(&b"www.example.com"[..])
        );
        assert_eq!(normalize_lookup("", &mut buf), None);
        assert_eq!(normalize_lookup("é.com", &mut buf), None);
    }

    #[test]
    fn parent_skips_single_label_suffixes() {
        assert_eq!(parent(b"a.b.example.com"), Some(&b"b.example.com"[..]));
        assert_eq!(parent(b"a.com"), None);
        assert_eq!(parent(b"localhost"), None);
    }
}
