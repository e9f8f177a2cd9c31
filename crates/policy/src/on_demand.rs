//! Certificates on demand at the ClientHello: a connection for a name no certificate names
//! (exactly or by a wildcard) may wait while a certificate is obtained for it — the hook
//! leaves the wait to the driver (`Pending::later`), and the handshake resumes when it ends,
//! with whatever the store then holds (the new certificate, or the default). Each connection
//! asks at most once.

use edgetls_certstore::{CertStore, MatchKind};
use edgetls_tls::retry::{self, Pending};
use openssl::ex_data::Index;
use openssl::ssl::{Ssl, SslRef};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

/// What obtains certificates on demand.
pub trait OnDemand: Send + Sync {
    /// Called on the handshake's path for `name` (lowercase), which no certificate names: a
    /// wait that ends once a certificate for it is loaded into the store (or is not coming),
    /// or `None` to go on at once (a refused name, a limit reached). Refusals must be cheap.
    fn obtain(&self, name: &str) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>>;
}

/// Marks a connection that has asked.
struct Asked;

fn asked_index() -> Option<Index<Ssl, Asked>> {
    static I: OnceLock<Option<Index<Ssl, Asked>>> = OnceLock::new();
    *I.get_or_init(|| Ssl::new_ex_index().ok())
}

/// Leaves the wait for `sni` to the driver when it applies: `Some(())` when the handshake
/// pauses now.
pub(crate) fn maybe_wait(
    on_demand: &dyn OnDemand,
    certs: &CertStore,
    ssl: &mut SslRef,
    sni: Option<&str>,
    local: Option<std::net::SocketAddr>,
) -> Option<()> {
    let name = sni?;
    let index = asked_index()?;
    if ssl.ex_data(index).is_some() || !retry::can_defer(ssl) {
        return None;
    }
    let snapshot = certs.snapshot();
    let named = snapshot
        .lookup(Some(name), local)
        .is_some_and(|s| matches!(s.how, MatchKind::Exact | MatchKind::Wildcard));
    if named {
        return None;
    }
    let wait = on_demand.obtain(name)?;
    ssl.set_ex_data(index, Asked);
    retry::defer(ssl, Pending::later(wait)).ok().map(|_| ())
}

/// The listener's ACME hooks.
#[derive(Clone, Default)]
pub struct AcmeHooks {
    /// TLS-ALPN-01 validations to answer.
    pub answers: Option<Arc<dyn crate::TlsAlpnAnswers>>,
    /// Certificates on demand.
    pub on_demand: Option<Arc<dyn OnDemand>>,
}

impl std::fmt::Debug for AcmeHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeHooks")
            .field("answers", &self.answers.is_some())
            .field("on_demand", &self.on_demand.is_some())
            .finish()
    }
}
