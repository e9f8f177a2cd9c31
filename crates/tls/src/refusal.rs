//! Why a hook ended a handshake: a typed reason (a metrics label) and the whole story (for the
//! log), kept on the connection so that whoever drives the handshake reports the real cause and
//! not only the alert the client saw.

use std::fmt;

/// Why a hook refused a connection. The set is closed so that every reason has a metrics label
/// fixed at compile time; a new reason is a new variant, never a string parsed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// No certificate or rule serves the requested name (or, with strict SNI, the name is not
    /// one the certificates list).
    UnrecognizedName,
    /// The requested name is tunnelled, not terminated here.
    TunnelName,
    /// A certificate entry could not be used: its objects could not be built, or the TLS
    /// library refused them.
    CertificateUnusable,
    /// A rule's settings could not be applied to the connection.
    SettingsUnusable,
    /// The session-ticket keys could not be used (no key, or the library failed to seal or
    /// open a ticket with one).
    TicketKeys,
    /// Anything else: an internal error, a caught panic.
    Internal,
}

impl Reason {
    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::UnrecognizedName => "unrecognized_name",
            Reason::TunnelName => "tunnel_name",
            Reason::CertificateUnusable => "certificate_unusable",
            Reason::SettingsUnusable => "settings_unusable",
            Reason::TicketKeys => "ticket_keys",
            Reason::Internal => "internal",
        }
    }

    /// Every reason, for metrics that list them all.
    pub const ALL: [Reason; 6] = [
        Reason::UnrecognizedName,
        Reason::TunnelName,
        Reason::CertificateUnusable,
        Reason::SettingsUnusable,
        Reason::TicketKeys,
        Reason::Internal,
    ];
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a hook refused a connection, kept on the connection (see [`crate::refuse`] and
/// [`crate::refusal`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The reason, from a fixed set.
    pub reason: Reason,
    /// What exactly happened: names the server name, the file or the library's message.
    pub detail: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::Reason;
    use std::collections::HashSet;

    #[test]
    fn every_reason_has_its_own_label() {
        let labels: HashSet<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), Reason::ALL.len());
        assert!(
            labels
                .iter()
                .all(|l| l.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
    }
}
