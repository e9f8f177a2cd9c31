//! PKCS#11 URIs (RFC 7512): which module, which token, which objects, and the PIN.
//!
//! `pkcs11:token=edge;object=site1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234`
//!
//! Path attributes (`;`-separated) select: `token`, `manufacturer`, `serial`, `model`
//! (the token's), `slot-id`, `slot-description`, `slot-manufacturer`, and the keys: `object`
//! (label), `id` (bytes, percent-encoded), `type` (only `private` makes sense here). Query
//! attributes (`&`-separated): `module-path` (required here: which library to load),
//! `pin-value`, `pin-source` (a file holding the PIN; `file:` URIs or paths). Values are
//! percent-decoded. `library-*` attributes are accepted and not checked; `x-` attributes are
//! ignored, as the RFC allows; any other attribute is refused, so that a typo does not widen
//! the selection.

use std::path::PathBuf;

/// A parsed `pkcs11:` URI.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token`: the token's label.
    pub token: Option<String>,
    /// `manufacturer`: the token's manufacturer.
    pub manufacturer: Option<String>,
    /// `serial`: the token's serial number.
    pub serial: Option<String>,
    /// `model`: the token's model.
    pub model: Option<String>,
    /// `slot-id`: the slot number.
    pub slot_id: Option<u64>,
    /// `slot-description`.
    pub slot_description: Option<String>,
    /// `slot-manufacturer`.
    pub slot_manufacturer: Option<String>,
    /// `object`: the key's label (`CKA_LABEL`).
    pub object: Option<String>,
    /// `id`: the key's `CKA_ID`.
    pub id: Option<Vec<u8>>,
    /// `module-path`: the PKCS#11 library to load (required).
    pub module_path: PathBuf,
    pin: Option<Pin>,
    /// The URI as given, with any `pin-value` hidden: for messages.
    shown: String,
}

#[derive(Clone, PartialEq, Eq)]
enum Pin {
    Value(String),
    Source(PathBuf),
}

impl std::fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

fn decode(value: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(value).collect()
}

fn text(attr: &str, value: &str) -> Result<String, String> {
    String::from_utf8(decode(value)).map_err(|_| format!("{attr}: not UTF-8"))
}

impl std::str::FromStr for Pkcs11Uri {
    type Err = String;

    fn from_str(s: &str) -> Result<Pkcs11Uri, String> {
        let rest = s
            .strip_prefix("pkcs11:")
            .ok_or("a PKCS#11 URI starts with \"pkcs11:\"")?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut uri = Pkcs11Uri::default();
        let mut module = None;
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| format!("\"{attr}\" is not name=value"))?;
            match name {
                "token" => uri.token = Some(text(name, value)?),
                "manufacturer" => uri.manufacturer = Some(text(name, value)?),
                "serial" => uri.serial = Some(text(name, value)?),
                "model" => uri.model = Some(text(name, value)?),
                "slot-description" => uri.slot_description = Some(text(name, value)?),
                "slot-manufacturer" => uri.slot_manufacturer = Some(text(name, value)?),
                "slot-id" => {
                    uri.slot_id = Some(
                        text(name, value)?
                            .parse()
                            .map_err(|_| format!("slot-id \"{value}\" is not a number"))?,
                    )
                }
                "object" => uri.object = Some(text(name, value)?),
                "id" => uri.id = Some(decode(value)),
                "type" => match value {
                    "private" => {}
                    other => {
                        return Err(format!(
                            "type={other}: the key server serves private keys (type=private)"
                        ));
                    }
                },
                "library-description" | "library-manufacturer" | "library-version" => {}
                n if n.starts_with("x-") => {}
                n => return Err(format!("unknown path attribute \"{n}\" (RFC 7512)")),
            }
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| format!("\"{attr}\" is not name=value"))?;
            match name {
                "module-path" => module = Some(PathBuf::from(text(name, value)?)),
                "pin-value" => uri.pin = Some(Pin::Value(text(name, value)?)),
                "pin-source" => {
                    let source = text(name, value)?;
                    let path = source.strip_prefix("file://").unwrap_or(&source);
                    let path = path.strip_prefix("file:").unwrap_or(path);
                    uri.pin = Some(Pin::Source(PathBuf::from(path)));
                }
                "module-name" => {
                    return Err(
                        "module-name: give the library's file with module-path instead".into(),
                    );
                }
                n if n.starts_with("x-") => {}
                n => return Err(format!("unknown query attribute \"{n}\" (RFC 7512)")),
            }
        }
        uri.module_path = module.ok_or("module-path is required (the PKCS#11 library to load)")?;
        uri.shown = hide_pin(s);
        Ok(uri)
    }
}

/// `s` with the value of `pin-value` replaced by `***`.
fn hide_pin(s: &str) -> String {
    let Some((head, query)) = s.split_once('?') else {
        return s.to_string();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|a| match a.split_once('=') {
            Some(("pin-value", _)) => "pin-value=***".to_string(),
            _ => a.to_string(),
        })
        .collect();
    format!("{head}?{}", query.join("&"))
}

impl Pkcs11Uri {
    /// The PIN: the `pin-value`, or the first line of the `pin-source` file; `None` if the URI
    /// gives neither (a token without login).
    pub fn pin(&self) -> Result<Option<String>, String> {
        match &self.pin {
            None => Ok(None),
            Some(Pin::Value(v)) => Ok(Some(v.clone())),
            Some(Pin::Source(path)) => std::fs::read_to_string(path)
                .map(|t| Some(t.lines().next().unwrap_or_default().to_string()))
                .map_err(|e| format!("pin-source {}: {e}", path.display())),
        }
    }

    /// Whether a token with this information is the one meant.
    pub(crate) fn matches_token(&self, t: &cryptoki::slot::TokenInfo) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        eq(&self.token, t.label())
            && eq(&self.manufacturer, t.manufacturer_id())
            && eq(&self.serial, t.serial_number())
            && eq(&self.model, t.model())
    }

    /// Whether a slot with this number and information is the one meant.
    pub(crate) fn matches_slot(&self, id: u64, s: &cryptoki::slot::SlotInfo) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        self.slot_id.is_none_or(|want| want == id)
            && eq(&self.slot_description, s.slot_description())
            && eq(&self.slot_manufacturer, s.manufacturer_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_path_and_query_attributes_with_percent_encoding() {
        let u: Pkcs11Uri = "pkcs11:token=edge%20one;object=site;id=%01%ff;type=private\
                            ?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=12%3434"
            .parse()
            .unwrap();
        assert_eq!(u.token.as_deref(), Some("edge one"));
        assert_eq!(u.object.as_deref(), Some("site"));
        assert_eq!(u.id.as_deref(), Some(&[1u8, 0xff][..]));
        assert_eq!(
            u.module_path,
            PathBuf::from("/usr/lib/softhsm/libsofthsm2.so")
        );
        assert_eq!(u.pin().unwrap().as_deref(), Some("12434"));
        assert!(!u.to_string().contains("12%3434"), "{u}");
    }

    #[test]
    fn refuses_what_would_silently_select_something_else() {
        for (uri, says) in [
            ("token=edge?module-path=/x", "starts with"),
            ("pkcs11:token=edge", "module-path is required"),
            (
                "pkcs11:tokn=edge?module-path=/x",
                "unknown path attribute \"tokn\"",
            ),
            ("pkcs11:type=cert?module-path=/x", "type=private"),
            ("pkcs11:slot-id=one?module-path=/x", "not a number"),
            ("pkcs11:token?module-path=/x", "not name=value"),
            ("pkcs11:?module-path=/x&pin=1", "unknown query attribute"),
        ] {
            let e = uri.parse::<Pkcs11Uri>().unwrap_err();
            assert!(e.contains(says), "{uri}: {e}");
        }
        let u: Pkcs11Uri = "pkcs11:x-vendor=1;library-version=2?module-path=/x&x-a=b"
            .parse()
            .unwrap();
        assert_eq!(u.pin().unwrap(), None);
    }

    #[test]
    fn reads_the_pin_from_a_pin_source_file() {
        let dir = std::env::temp_dir().join(format!("edgetls-pin-{}", std::process::id()));
        std::fs::write(&dir, "4321\nignored\n").unwrap();
        let u: Pkcs11Uri = format!("pkcs11:?module-path=/x&pin-source=file:{}", dir.display())
            .parse()
            .unwrap();
        assert_eq!(u.pin().unwrap().as_deref(), Some("4321"));
        std::fs::remove_file(&dir).unwrap();
        assert!(u.pin().unwrap_err().contains("pin-source"));
    }
}
