//! Why a handshake failed, as a short fixed label (for metrics) and the whole story (for logs).

use crate::error::EngineError;
use edgetls_keyless_client::ClientError;
use edgetls_keyless_proto::ErrorCode as KeyServerCode;
use edgetls_tls::{Reason, TlsError};
use openssl::ssl::{ErrorCode, SslRef};

/// The reason a handshake failed, from a small fixed set (a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Failure {
    /// The client closed the connection before the handshake ended.
    Closed,
    /// The connection was reset.
    Reset,
    /// Another socket error.
    Io,
    /// Not TLS, or TLS that breaks the protocol (garbage, HTTP, bad lengths, bad messages).
    Protocol,
    /// No TLS version in common.
    Version,
    /// No cipher suite, group or signature algorithm in common.
    NoSharedCipher,
    /// No ALPN protocol in common (alert 120).
    NoApplicationProtocol,
    /// A required client certificate was missing or did not verify.
    ClientCertificate,
    /// The client ended the handshake with an alert of its own.
    PeerAlert,
    /// No certificate or rule serves the requested name.
    UnrecognizedName,
    /// The requested name is tunnelled, not terminated.
    TunnelName,
    /// A certificate entry could not be used (objects not built, OpenSSL refused them).
    CertificateUnusable,
    /// A rule's settings could not be applied.
    SettingsUnusable,
    /// The session-ticket keys could not be used.
    TicketKeys,
    /// The remote private-key operation failed for another reason (an answer that does not
    /// fit, an unsupported scheme, a caught panic).
    RemoteKey,
    /// The key server gave no answer before the deadline.
    RemoteTimeout,
    /// No key server could take the request (none reachable, queue full, client shut down).
    RemoteUnavailable,
    /// The key server answered with this error code (key not found, bad opcode, …).
    KeyServer(KeyServerCode),
    /// Anything else (an internal error, a caught panic).
    Internal,
}

impl Failure {
    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Closed => "closed",
            Failure::Reset => "reset",
            Failure::Io => "io",
            Failure::Protocol => "protocol",
            Failure::Version => "version",
            Failure::NoSharedCipher => "no_shared_cipher",
            Failure::NoApplicationProtocol => "no_application_protocol",
            Failure::ClientCertificate => "client_certificate",
            Failure::PeerAlert => "peer_alert",
            Failure::UnrecognizedName => "unrecognized_name",
            Failure::TunnelName => "tunnel_name",
            Failure::CertificateUnusable => "certificate_unusable",
            Failure::SettingsUnusable => "settings_unusable",
            Failure::TicketKeys => "ticket_keys",
            Failure::RemoteKey => "remote_key",
            Failure::RemoteTimeout => "remote_timeout",
            Failure::RemoteUnavailable => "remote_unavailable",
            Failure::KeyServer(code) => key_server_label(code),
            Failure::Internal => "internal",
        }
    }

    /// Every reason, for metrics that list them all.
    pub const ALL: [Failure; 30] = [
        Failure::Closed,
        Failure::Reset,
        Failure::Io,
        Failure::Protocol,
        Failure::Version,
        Failure::NoSharedCipher,
        Failure::NoApplicationProtocol,
        Failure::ClientCertificate,
        Failure::PeerAlert,
        Failure::UnrecognizedName,
        Failure::TunnelName,
        Failure::CertificateUnusable,
        Failure::SettingsUnusable,
        Failure::TicketKeys,
        Failure::RemoteKey,
        Failure::RemoteTimeout,
        Failure::RemoteUnavailable,
        Failure::KeyServer(KeyServerCode::CRYPTO),
        Failure::KeyServer(KeyServerCode::KEY_NOT_FOUND),
        Failure::KeyServer(KeyServerCode::READ),
        Failure::KeyServer(KeyServerCode::VERSION_MISMATCH),
        Failure::KeyServer(KeyServerCode::BAD_OPCODE),
        Failure::KeyServer(KeyServerCode::UNEXPECTED_OPCODE),
        Failure::KeyServer(KeyServerCode::FORMAT),
        Failure::KeyServer(KeyServerCode::INTERNAL),
        Failure::KeyServer(KeyServerCode::CERT_NOT_FOUND),
        Failure::KeyServer(KeyServerCode::EXPIRED),
        Failure::KeyServer(KeyServerCode::REMOTE_CONFIGURATION),
        Failure::KeyServer(KeyServerCode(0xff)),
        Failure::Internal,
    ];

    /// The reason a failed remote operation gives its handshake: a remote key's own error
    /// travels through the seam whole, and is told apart here.
    pub(crate) fn of_remote(e: &TlsError) -> Failure {
        match e {
            TlsError::Signer(inner) => inner
                .downcast_ref::<EngineError>()
                .map_or(Failure::RemoteKey, Failure::of_engine),
            TlsError::Timeout(_) => Failure::RemoteTimeout,
            _ => Failure::RemoteKey,
        }
    }

    fn of_engine(e: &EngineError) -> Failure {
        match e {
            EngineError::KeyServer(ClientError::Server { code, .. }) => Failure::KeyServer(*code),
            EngineError::KeyServer(ClientError::Timeout { .. })
            | EngineError::Tls(TlsError::Timeout(_)) => Failure::RemoteTimeout,
            EngineError::KeyServer(
                ClientError::NoServer { .. }
                | ClientError::QueueFull { .. }
                | ClientError::Shutdown,
            ) => Failure::RemoteUnavailable,
            _ => Failure::RemoteKey,
        }
    }
}

impl From<Reason> for Failure {
    fn from(reason: Reason) -> Failure {
        match reason {
            Reason::UnrecognizedName => Failure::UnrecognizedName,
            Reason::TunnelName => Failure::TunnelName,
            Reason::CertificateUnusable => Failure::CertificateUnusable,
            Reason::SettingsUnusable => Failure::SettingsUnusable,
            Reason::TicketKeys => Failure::TicketKeys,
            // A reason added to the seam and not yet given its own label here.
            _ => Failure::Internal,
        }
    }
}

/// The metrics label of a key server's error code (one per code the protocol names).
fn key_server_label(code: KeyServerCode) -> &'static str {
    match code {
        KeyServerCode::CRYPTO => "key_server_crypto",
        KeyServerCode::KEY_NOT_FOUND => "key_server_key_not_found",
        KeyServerCode::READ => "key_server_read",
        KeyServerCode::VERSION_MISMATCH => "key_server_version_mismatch",
        KeyServerCode::BAD_OPCODE => "key_server_bad_opcode",
        KeyServerCode::UNEXPECTED_OPCODE => "key_server_unexpected_opcode",
        KeyServerCode::FORMAT => "key_server_format",
        KeyServerCode::INTERNAL => "key_server_internal",
        KeyServerCode::CERT_NOT_FOUND => "key_server_cert_not_found",
        KeyServerCode::EXPIRED => "key_server_expired",
        KeyServerCode::REMOTE_CONFIGURATION => "key_server_remote_configuration",
        _ => "key_server_other",
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last remote-key failure seen on this thread, taken (for handshake error messages).
pub fn take_last_error() -> Option<String> {
    edgetls_tls::remote_key::take_last_failure().map(|e| e.to_string())
}

/// Classifies a failed handshake step on `ssl`; `remote` is the remote-key failure recorded on
/// this thread, if any. Returns the reason and a description for the log.
pub(crate) fn classify(
    ssl: &SslRef,
    e: &openssl::ssl::Error,
    remote: Option<TlsError>,
) -> (Failure, String) {
    if let Some(r) = edgetls_tls::refusal(ssl) {
        return (Failure::from(r.reason), r.detail.clone());
    }
    if let Some(remote) = remote {
        return (Failure::of_remote(&remote), format!("{e} ({remote})"));
    }
    if let Some(io) = e.io_error() {
        let reason = match io.kind() {
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => Failure::Reset,
            std::io::ErrorKind::UnexpectedEof => Failure::Closed,
            _ => Failure::Io,
        };
        return (reason, io.to_string());
    }
    if e.code() == ErrorCode::ZERO_RETURN
        || (e.code() == ErrorCode::SYSCALL && e.ssl_error().is_none())
    {
        return (Failure::Closed, "the client closed the connection".into());
    }
    use edgetls_tls::library::LibraryError as L;
    let reason =
        e.ssl_error()
            .and_then(|s| s.errors().first())
            .map_or(
                Failure::Internal,
                |first| match edgetls_tls::library::classify(first) {
                    L::NoSharedCipher => Failure::NoSharedCipher,
                    L::NoApplicationProtocol => Failure::NoApplicationProtocol,
                    L::Version => Failure::Version,
                    L::ClientCertificate => Failure::ClientCertificate,
                    L::Protocol => Failure::Protocol,
                    L::PeerAlert => Failure::PeerAlert,
                    _ => Failure::Internal,
                },
            );
    (reason, e.to_string())
}
