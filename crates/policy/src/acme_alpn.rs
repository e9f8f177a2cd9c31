//! TLS-ALPN-01 (RFC 8737) in the ClientHello hook: a connection that offers `acme-tls/1` for a
//! name with a validation pending is given that validation's self-signed certificate on a
//! context of its own that selects `acme-tls/1`, ahead of any rule. Everything else goes on
//! to the rules untouched; with nothing pending the check is one call of `pending`.

use edgetls_tls::ClientHello;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{AlpnError, SslContext, SslMethod, SslRef, SslVersion};
use openssl::x509::X509;
use std::sync::Arc;

/// The ALPN protocol of a TLS-ALPN-01 validation.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Validations pending, as an ACME client publishes them.
pub trait TlsAlpnAnswers: Send + Sync {
    /// Whether any validation is pending (cheap: called for every ClientHello).
    fn pending(&self) -> bool;
    /// The certificate and key that answer a validation of `name` (lowercase), if one is
    /// pending.
    fn answer(&self, name: &str) -> Option<(X509, PKey<Private>)>;
}

/// The context validations are answered on: TLS 1.2 or later, `acme-tls/1` or nothing.
pub(crate) struct Answering {
    answers: Arc<dyn TlsAlpnAnswers>,
    ctx: SslContext,
}

impl Answering {
    pub(crate) fn new(
        answers: Arc<dyn TlsAlpnAnswers>,
    ) -> Result<Answering, openssl::error::ErrorStack> {
        let mut b = SslContext::builder(SslMethod::tls_server())?;
        b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
        b.set_alpn_select_callback(|_, client| {
            // The client's list: length-prefixed names.
            let mut rest = client;
            while let Some((&n, tail)) = rest.split_first() {
                let Some(name) = tail.get(..usize::from(n)) else {
                    break;
                };
                if name == ACME_TLS_ALPN {
                    return Ok(name);
                }
                rest = &tail[name.len()..];
            }
            Err(AlpnError::ALERT_FATAL)
        });
        Ok(Answering {
            answers,
            ctx: b.build(),
        })
    }

    /// Answers `ssl` when it is a validation this process can answer: `Some(Ok)` once switched
    /// to the validation's context and certificate, `None` to go on to the rules.
    pub(crate) fn answer(
        &self,
        ssl: &mut SslRef,
        sni: Option<&str>,
    ) -> Option<Result<(), openssl::error::ErrorStack>> {
        if !self.answers.pending() {
            return None;
        }
        let offers = ClientHello::of(ssl)
            .alpn_protocols()
            .any(|p| p == ACME_TLS_ALPN);
        if !offers {
            return None;
        }
        let (cert, key) = self.answers.answer(sni?)?;
        Some((|| {
            ssl.set_ssl_context(&self.ctx)?;
            ssl.set_certificate(&cert)?;
            ssl.set_private_key(&key)
        })())
    }
}
