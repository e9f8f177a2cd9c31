//! systemd's readiness protocol (`sd_notify`), when systemd started the process with
//! `NOTIFY_SOCKET` (`Type=notify`): `READY=1` once the proxy accepts, `MAINPID=` when a new
//! process took over from the old one (with `NotifyAccess=all`, so that `ExecReload=edgetls
//! upgrade` leaves systemd following the new process), `STOPPING=1` when it drains on a signal.
//! Without `NOTIFY_SOCKET` nothing is sent.

use std::os::unix::net::UnixDatagram;

/// Sends `state` (lines such as `READY=1`) to systemd, if it listens; failures are logged.
pub(crate) fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|s| {
        let bytes = path.as_encoded_bytes();
        match bytes.strip_prefix(b"@") {
            // An abstract socket (systemd's usual choice).
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                s.send_to_addr(state.as_bytes(), &addr)
            }
            None => s.send_to(state.as_bytes(), &path),
        }
    });
    if let Err(e) = sent {
        tracing::warn!(
            "telling systemd {state:?} on {}: {e}",
            path.to_string_lossy()
        );
    }
}
