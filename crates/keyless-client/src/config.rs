//! How to reach the key servers.

use crate::error::ClientError;
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode, SslVersion};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One key server.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// `host:port` to connect to.
    pub addr: String,
    /// The name its certificate must carry (and the SNI sent).
    pub name: String,
}

impl ServerSpec {
    /// A key server at `addr` (`host:port`), whose certificate must be valid for `name`.
    pub fn new(addr: impl Into<String>, name: impl Into<String>) -> ServerSpec {
        ServerSpec {
            addr: addr.into(),
            name: name.into(),
        }
    }
}

/// Client settings; `ClientConfig::new` fills sane defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The key servers, tried in this order of preference when healthy.
    pub servers: Vec<ServerSpec>,
    /// This client's certificate and key (PEM), and the CA that issued the servers' certificates.
    pub cert: PathBuf,
    /// This client's private key (PEM).
    pub key: PathBuf,
    /// The CA that issued the key servers' certificates (PEM).
    pub ca: PathBuf,
    /// Persistent connections per key server.
    pub connections_per_server: usize,
    /// How long a request may take, retries included.
    pub request_timeout: Duration,
    /// Requests in flight before new ones fail with [`ClientError::QueueFull`].
    pub max_in_flight: usize,
    /// How often each connection is pinged, and how long a ping may take.
    pub health_interval: Duration,
    /// How long a ping may take before its connection is dropped.
    pub health_timeout: Duration,
    /// How long a TCP connect and TLS handshake to a key server may take.
    pub connect_timeout: Duration,
    /// Reconnect backoff: doubles from `min` to `max`, each wait randomized down to half.
    pub backoff_min: Duration,
    /// The longest wait between reconnects.
    pub backoff_max: Duration,
    /// Times a request whose connection failed is sent again, on another connection.
    pub retries: u32,
    /// Threads of the client's own runtime.
    pub threads: usize,
}

impl ClientConfig {
    /// Settings for these servers and this client identity, with the defaults for the rest.
    pub fn new(
        servers: Vec<ServerSpec>,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
        ca: impl Into<PathBuf>,
    ) -> ClientConfig {
        ClientConfig {
            servers,
            cert: cert.into(),
            key: key.into(),
            ca: ca.into(),
            connections_per_server: 2,
            request_timeout: Duration::from_secs(2),
            max_in_flight: 65_536,
            health_interval: Duration::from_secs(1),
            health_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(2),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            retries: 2,
            threads: 1,
        }
    }

    /// The TLS client: TLS 1.2+, the server verified against `ca` and `name`, our certificate.
    pub(crate) fn connector(&self) -> Result<SslConnector, ClientError> {
        let bad = |path: &Path, e: openssl::error::ErrorStack| ClientError::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        for p in [&self.cert, &self.key, &self.ca] {
            std::fs::metadata(p).map_err(|e| ClientError::Config {
                path: p.clone(),
                message: e.to_string(),
            })?;
        }
        let mut b = SslConnector::builder(SslMethod::tls_client())
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        b.set_min_proto_version(Some(SslVersion::TLS1_2))
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        b.set_ca_file(&self.ca).map_err(|e| bad(&self.ca, e))?;
        b.set_certificate_chain_file(&self.cert)
            .map_err(|e| bad(&self.cert, e))?;
        b.set_private_key_file(&self.key, SslFiletype::PEM)
            .map_err(|e| bad(&self.key, e))?;
        b.check_private_key().map_err(|e| bad(&self.key, e))?;
        b.set_verify(SslVerifyMode::PEER);
        // Answers arrive as many small records back to back: read ahead so that one read
        // system call takes all that is waiting, not a record header and then its body.
        b.set_read_ahead(true);
        Ok(b.build())
    }

    pub(crate) fn validate(&self) -> Result<(), ClientError> {
        if self.servers.is_empty() {
            return Err(ClientError::Invalid("no key servers configured".into()));
        }
        if self.connections_per_server == 0 || self.max_in_flight == 0 || self.threads == 0 {
            return Err(ClientError::Invalid(
                "connections_per_server, max_in_flight and threads must be at least 1".into(),
            ));
        }
        Ok(())
    }
}
