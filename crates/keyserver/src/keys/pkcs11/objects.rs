//! Finding a token's keys: every private key the URI selects that has a public key or
//! certificate object with the same `CKA_ID` (or, without an id, the same label). The public
//! half gives the SKI; a certificate also gives the names and addresses to find the key by.

use super::uri::Pkcs11Uri;
use crate::keys::KeyKind;
use crate::keys::file::{ec_kind, rsa_kind};
use crate::keys::index::CertNames;
use cryptoki::error::Error;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use edgetls_keyless_proto::Ski;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use openssl::rsa::Rsa;
use openssl::x509::X509;

/// A private key found in the token.
#[derive(Debug)]
pub(crate) struct Found {
    pub handle: ObjectHandle,
    pub ski: Ski,
    pub kind: KeyKind,
    /// The RSA modulus, for the legacy digest index.
    pub modulus: Option<Vec<u8>>,
    /// `object=…;id=…`, for messages.
    pub name: String,
    pub cert: Option<CertNames>,
}

/// The keys found, and what was skipped (with why).
pub(crate) type Scanned = (Vec<Found>, Vec<String>);

/// The DER of the named-curve OIDs in `CKA_EC_PARAMS`.
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384_OID: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

fn attributes(
    s: &Session,
    object: ObjectHandle,
    types: &[AttributeType],
) -> Result<Vec<Attribute>, Error> {
    s.get_attributes(object, types)
}

fn bytes_of(attrs: &[Attribute], want: AttributeType) -> Option<Vec<u8>> {
    attrs.iter().find_map(|a| match (a, want) {
        (Attribute::Id(v), AttributeType::Id)
        | (Attribute::Label(v), AttributeType::Label)
        | (Attribute::Modulus(v), AttributeType::Modulus)
        | (Attribute::PublicExponent(v), AttributeType::PublicExponent)
        | (Attribute::EcParams(v), AttributeType::EcParams)
        | (Attribute::EcPoint(v), AttributeType::EcPoint)
        | (Attribute::Value(v), AttributeType::Value) => Some(v.clone()),
        _ => None,
    })
}

/// The objects of `class` that go with a private key of this id (or label, if it has no id).
fn partners(
    s: &Session,
    class: ObjectClass,
    id: &[u8],
    label: &[u8],
) -> Result<Vec<ObjectHandle>, Error> {
    let mut template = vec![Attribute::Class(class)];
    template.push(if id.is_empty() {
        Attribute::Label(label.to_vec())
    } else {
        Attribute::Id(id.to_vec())
    });
    s.find_objects(&template)
}

/// The public key held in a public key object.
fn public_key(s: &Session, object: ObjectHandle) -> Result<PKey<Public>, String> {
    let attrs = attributes(
        s,
        object,
        &[
            AttributeType::KeyType,
            AttributeType::Modulus,
            AttributeType::PublicExponent,
            AttributeType::EcParams,
            AttributeType::EcPoint,
        ],
    )
    .map_err(|e| format!("reading the public key: {e}"))?;
    let key_type = attrs.iter().find_map(|a| match a {
        Attribute::KeyType(k) => Some(*k),
        _ => None,
    });
    let bad = |e: openssl::error::ErrorStack| format!("the public key does not parse: {e}");
    match key_type {
        Some(KeyType::RSA) => {
            let n = bytes_of(&attrs, AttributeType::Modulus).ok_or("no CKA_MODULUS")?;
            let e =
                bytes_of(&attrs, AttributeType::PublicExponent).ok_or("no CKA_PUBLIC_EXPONENT")?;
            let rsa = Rsa::from_public_components(
                BigNum::from_slice(&n).map_err(bad)?,
                BigNum::from_slice(&e).map_err(bad)?,
            )
            .map_err(bad)?;
            PKey::from_rsa(rsa).map_err(bad)
        }
        Some(KeyType::EC) => {
            let params = bytes_of(&attrs, AttributeType::EcParams).ok_or("no CKA_EC_PARAMS")?;
            let point = bytes_of(&attrs, AttributeType::EcPoint).ok_or("no CKA_EC_POINT")?;
            let nid = match &params[..] {
                p if p == P256_OID => Nid::X9_62_PRIME256V1,
                p if p == P384_OID => Nid::SECP384R1,
                _ => return Err("unsupported curve (P-256 and P-384 are)".into()),
            };
            let group = EcGroup::from_curve_name(nid).map_err(bad)?;
            let mut ctx = BigNumContext::new().map_err(bad)?;
            let point =
                EcPoint::from_bytes(&group, ec_point(&group, &point), &mut ctx).map_err(bad)?;
            let ec = EcKey::from_public_key(&group, &point).map_err(bad)?;
            PKey::from_ec_key(ec).map_err(bad)
        }
        other => Err(format!("unsupported key type {other:?}")),
    }
}

/// `CKA_EC_POINT` is a DER OCTET STRING around the uncompressed point; some tokens give the
/// bare point. Told apart by length: the bare point of `group` is 1 + 2 × the field size.
fn ec_point<'a>(group: &EcGroup, v: &'a [u8]) -> &'a [u8] {
    let bare = 1 + 2 * (group.degree() as usize).div_ceil(8);
    match v {
        [0x04, len, rest @ ..] if v.len() == bare + 2 && *len as usize == bare => rest,
        other => other,
    }
}

/// Every key the URI selects, and what was skipped (with why).
pub(crate) fn scan(s: &Session, uri: &Pkcs11Uri) -> Result<Scanned, Error> {
    let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
    if let Some(label) = &uri.object {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        template.push(Attribute::Id(id.clone()));
    }
    let (mut found, mut skipped) = (Vec::new(), Vec::new());
    for private in s.find_objects(&template)? {
        let attrs = attributes(s, private, &[AttributeType::Id, AttributeType::Label])?;
        let id = bytes_of(&attrs, AttributeType::Id).unwrap_or_default();
        let label = bytes_of(&attrs, AttributeType::Label).unwrap_or_default();
        let name = format!(
            "object={};id={}",
            String::from_utf8_lossy(&label),
            id.iter().map(|b| format!("%{b:02x}")).collect::<String>()
        );
        let cert = partners(s, ObjectClass::CERTIFICATE, &id, &label)?
            .first()
            .and_then(|&c| attributes(s, c, &[AttributeType::Value]).ok())
            .and_then(|a| bytes_of(&a, AttributeType::Value))
            .and_then(|der| X509::from_der(&der).ok());
        let public = match partners(s, ObjectClass::PUBLIC_KEY, &id, &label)?.first() {
            Some(&p) => public_key(s, p),
            None => match &cert {
                Some(c) => c.public_key().map_err(|e| e.to_string()),
                None => Err("no public key or certificate object with its id".into()),
            },
        };
        let checked = public.and_then(|pkey| {
            let spki = pkey.public_key_to_der().map_err(|e| e.to_string())?;
            let ski = Ski::from_spki_der(&spki).map_err(|e| e.to_string())?;
            let (kind, modulus) = match pkey.rsa() {
                Ok(rsa) => (rsa_kind(pkey.bits())?, Some(rsa.n().to_vec())),
                Err(_) => {
                    let curve = pkey.ec_key().ok().and_then(|ec| ec.group().curve_name());
                    (ec_kind(curve)?, None)
                }
            };
            Ok((ski, kind, modulus))
        });
        match checked {
            Ok((ski, kind, modulus)) => found.push(Found {
                handle: private,
                ski,
                kind,
                modulus,
                cert: cert.as_deref().and_then(CertNames::of),
                name,
            }),
            Err(why) => skipped.push(format!("{name}: {why}")),
        }
    }
    Ok((found, skipped))
}
