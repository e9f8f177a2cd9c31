//! Per-connection values the hooks share, each in an ex_data slot of its own: the local address
//! a server stores before the handshake, and the refusal a hook records when it ends one.

use crate::error::TlsError;
use crate::refusal::{Reason, Refusal};
use openssl::ex_data::Index;
use openssl::ssl::{Ssl, SslAlert, SslRef};
use std::net::SocketAddr;
use std::sync::OnceLock;

/// Allocates one index per slot type for the life of the process.
fn index<T: Send + Sync + 'static>(
    cell: &'static OnceLock<Result<Index<Ssl, T>, openssl::error::ErrorStack>>,
) -> Result<Index<Ssl, T>, TlsError> {
    Ok(cell.get_or_init(Ssl::new_ex_index).clone()?)
}

fn local_index() -> Result<Index<Ssl, SocketAddr>, TlsError> {
    static I: OnceLock<Result<Index<Ssl, SocketAddr>, openssl::error::ErrorStack>> =
        OnceLock::new();
    index(&I)
}

fn refusal_index() -> Result<Index<Ssl, Refusal>, TlsError> {
    static I: OnceLock<Result<Index<Ssl, Refusal>, openssl::error::ErrorStack>> = OnceLock::new();
    index(&I)
}

/// Stores the address the client connected to, before the handshake, so that address-based
/// certificates and rules (`dest_ip`, `addr:port`) can be selected.
pub fn set_local_addr(ssl: &mut SslRef, local: SocketAddr) -> Result<(), TlsError> {
    ssl.set_ex_data(local_index()?, local);
    Ok(())
}

/// The address stored by [`set_local_addr`].
pub fn local_addr(ssl: &SslRef) -> Option<SocketAddr> {
    ssl.ex_data(local_index().ok()?).copied()
}

/// Records why `ssl` is refused and returns the alert to end it with. The first refusal
/// recorded on a connection stands: a later hook failing because of it does not hide it.
pub fn refuse(
    ssl: &mut SslRef,
    alert: SslAlert,
    reason: Reason,
    detail: impl Into<String>,
) -> SslAlert {
    if let Ok(i) = refusal_index() {
        if ssl.ex_data(i).is_none() {
            let detail = detail.into();
            ssl.set_ex_data(i, Refusal { reason, detail });
        }
    }
    alert
}

/// Why a hook refused `ssl`, if one did.
pub fn refusal(ssl: &SslRef) -> Option<&Refusal> {
    ssl.ex_data(refusal_index().ok()?)
}
