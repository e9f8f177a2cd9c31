//! What the admin API checks before a certificate goes anywhere near the store: the key is a
//! private key and the leaf's; each certificate of the chain is issued and signed by the next;
//! the leaf is valid now; the leaf names the name it is added for. Any failure is an error
//! that changes nothing.

use openssl::asn1::Asn1Time;
use openssl::pkey::PKey;
use openssl::x509::X509;

/// A new certificate for `name`, checked: the bundle to store (chain, then key).
pub(crate) fn checked_bundle(name: &str, cert_pem: &str, key_pem: &str) -> Result<Vec<u8>, String> {
    let certs = X509::stack_from_pem(cert_pem.as_bytes())
        .map_err(|e| format!("the certificate is not PEM: {e}"))?;
    let Some(leaf) = certs.first() else {
        return Err("the certificate is not PEM: no certificate in it".into());
    };
    let key = PKey::private_key_from_pem(key_pem.as_bytes()).map_err(
        |_| "the key is not a PEM private key (an encrypted key must be decrypted first)",
    )?;
    let public = leaf
        .public_key()
        .map_err(|e| format!("the certificate's public key: {e}"))?;
    if !public.public_eq(&key) {
        return Err("the key does not match the certificate".into());
    }
    for pair in certs.windows(2) {
        let (child, parent) = (&pair[0], &pair[1]);
        let subject = |c: &X509| format!("{:?}", c.subject_name());
        let parent_key = parent.public_key().map_err(|e| e.to_string())?;
        if parent.issued(child) != openssl::x509::X509VerifyResult::OK
            || !child.verify(&parent_key).unwrap_or(false)
        {
            return Err(format!(
                "the chain is broken: {} is not issued by the certificate after it ({})",
                subject(child),
                subject(parent)
            ));
        }
    }
    let now = Asn1Time::days_from_now(0).map_err(|e| e.to_string())?;
    if leaf.not_after() < now {
        return Err(format!("the certificate expired ({})", leaf.not_after()));
    }
    if leaf.not_before() > now {
        return Err(format!(
            "the certificate is not valid yet ({})",
            leaf.not_before()
        ));
    }
    let name = name.to_ascii_lowercase();
    let covers = leaf.subject_alt_names().is_some_and(|sans| {
        sans.iter().filter_map(|g| g.dnsname()).any(|d| {
            let d = d.to_ascii_lowercase();
            d == name
                || d.strip_prefix("*.").is_some_and(|suffix| {
                    name.split_once('.')
                        .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix)
                })
        })
    });
    if !covers {
        return Err(format!(
            "the certificate does not name {name} (subjectAltName)"
        ));
    }
    let mut bundle = Vec::new();
    for c in &certs {
        bundle.extend(c.to_pem().map_err(|e| e.to_string())?);
    }
    bundle.extend(key.private_key_to_pem_pkcs8().map_err(|e| e.to_string())?);
    Ok(bundle)
}

#[cfg(test)]
mod tests {
    use super::checked_bundle;
    use edgetls_testkit::certs::self_signed;

    #[test]
    fn garbage_a_foreign_key_and_a_wrong_name_are_refused() {
        let (cert, key) = self_signed("a.test");
        let (_, other) = self_signed("b.test");
        let cert_pem = String::from_utf8(cert.to_pem().unwrap()).unwrap();
        let key_pem = String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        let other_pem = String::from_utf8(other.private_key_to_pem_pkcs8().unwrap()).unwrap();
        let e = checked_bundle("a.test", "garbage", &key_pem).unwrap_err();
        assert!(e.contains("not PEM"), "{e}");
        let e = checked_bundle("a.test", &cert_pem, &other_pem).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        // self_signed names a.test only in its CN: no subjectAltName, so no name.
        let e = checked_bundle("a.test", &cert_pem, &key_pem).unwrap_err();
        assert!(e.contains("does not name"), "{e}");
    }
}
