//! The OCSP-staple hook on OpenSSL: the status callback staples the response offered for the
//! chain OpenSSL chose (the RSA or the ECDSA one of an entry).

use crate::TlsError;
use foreign_types::ForeignTypeRef;
use openssl::ex_data::Index;
use openssl::ssl::{Ssl, SslContextBuilder, SslRef};
use openssl::x509::X509Ref;
use std::sync::{Arc, OnceLock};

/// The responses of the chains set on a connection, by the address of their leaf.
#[derive(Default)]
struct Staples(Vec<(usize, Arc<[u8]>)>);

fn staples_index() -> Result<Index<Ssl, Staples>, TlsError> {
    static I: OnceLock<Result<Index<Ssl, Staples>, openssl::error::ErrorStack>> = OnceLock::new();
    Ok(I.get_or_init(Ssl::new_ex_index).clone()?)
}

/// Offers `der` (a DER OCSP response) as the staple of the chain whose leaf is `leaf`, set on
/// `ssl`: stapled if the client asks for a status and that chain is the one served.
pub fn offer(ssl: &mut SslRef, leaf: &X509Ref, der: &Arc<[u8]>) -> Result<(), TlsError> {
    let index = staples_index()?;
    let key = leaf.as_ptr() as usize;
    match ssl.ex_data_mut(index) {
        Some(s) => {
            s.0.retain(|(k, _)| *k != key);
            s.0.push((key, Arc::clone(der)));
        }
        None => ssl.set_ex_data(index, Staples(vec![(key, Arc::clone(der))])),
    }
    Ok(())
}

/// Makes contexts built with `b` staple what [`offer`] offered (call it on every context a
/// handshake may be switched to).
pub fn enable(b: &mut SslContextBuilder) -> Result<(), TlsError> {
    b.set_status_callback(|ssl| {
        // Nothing may unwind into OpenSSL: a panic means no staple.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| staple(ssl))).unwrap_or(Ok(false))
    })?;
    Ok(())
}

/// The status callback: staples the response of the chain OpenSSL chose, if it has one.
fn staple(ssl: &mut SslRef) -> Result<bool, openssl::error::ErrorStack> {
    let Some(chosen) = ssl.certificate().map(|c| c.as_ptr() as usize) else {
        return Ok(false);
    };
    let der = staples_index()
        .ok()
        .and_then(|i| ssl.ex_data(i))
        .and_then(|s| s.0.iter().find(|(k, _)| *k == chosen))
        .map(|(_, der)| Arc::clone(der));
    match der {
        Some(der) => ssl.set_ocsp_status(&der).map(|()| true),
        None => Ok(false),
    }
}
