//! Handshakes that failed on this side — a key server down, slow or refusing, a certificate or
//! rule that cannot be used, the ticket keys — are logged at `warn`, the default level shows
//! them: the client did nothing wrong and an operator has something to fix. A dead key server
//! under load fails thousands a second, so each worker logs at most one such line a second,
//! saying how many it left out since its last one. Failures of the client's making (closed,
//! reset, garbage, no protocol in common) stay at `debug`; all are counted in the metrics.

use edgetls_engine::Failure;
use std::cell::Cell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// At most one line this often, per worker.
const EVERY: Duration = Duration::from_secs(1);

thread_local! {
    static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
    static LEFT_OUT: Cell<u64> = const { Cell::new(0) };
}

/// Whether a failure is this side's to fix rather than the client's.
pub(crate) fn is_ours(reason: Failure) -> bool {
    matches!(
        reason,
        Failure::RemoteKey
            | Failure::RemoteTimeout
            | Failure::RemoteUnavailable
            | Failure::KeyServer(_)
            | Failure::CertificateUnusable
            | Failure::SettingsUnusable
            | Failure::TicketKeys
            | Failure::Internal
    )
}

/// Logs a failure of ours at `warn`, unless this worker logged one less than [`EVERY`] ago.
pub(crate) fn warn(peer: SocketAddr, reason: Failure, detail: &str) {
    let now = Instant::now();
    if LAST.get().is_some_and(|t| now.duration_since(t) < EVERY) {
        LEFT_OUT.set(LEFT_OUT.get() + 1);
        return;
    }
    LAST.set(Some(now));
    match LEFT_OUT.replace(0) {
        0 => tracing::warn!("{peer}: handshake failed ({reason}): {detail}"),
        n => tracing::warn!(
            "{peer}: handshake failed ({reason}): {detail} (and {n} more failures of this side \
             since the last such line, not logged one by one; see edgetls_handshakes_total)"
        ),
    }
}
