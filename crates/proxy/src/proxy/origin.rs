//! Connections to origins: plain TCP, or TLS with the route's verification, client
//! certificate and SNI, resuming sessions per origin.

use crate::error::CliError;
use crate::proxy::config::{Route, Verify};
use edgetls_tickets::{OriginKey, OriginSessions};
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A byte stream to an origin.
pub(crate) trait OriginStream: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> OriginStream for T {}

/// TLS settings per route, built once per configuration.
pub(crate) struct Origins {
    connectors: HashMap<usize, (SslConnector, Arc<OriginSessions>)>,
}

impl Origins {
    /// Connectors for every TLS route of `routes` (keyed by the route's line).
    pub(crate) fn build(routes: &[Route]) -> Result<Origins, CliError> {
        let mut connectors = HashMap::new();
        for r in routes {
            let Some(tls) = &r.tls else { continue };
            let fail = |m: String| CliError::Setup(format!("route at line {}: {m}", r.line));
            let mut b =
                SslConnector::builder(SslMethod::tls_client()).map_err(|e| fail(e.to_string()))?;
            match tls.verify {
                Verify::Off => b.set_verify(SslVerifyMode::NONE),
                _ => {
                    if let Some(ca) = &tls.ca {
                        b.set_ca_file(ca)
                            .map_err(|e| fail(format!("{}: {e}", ca.display())))?;
                    }
                    b.set_verify(SslVerifyMode::PEER);
                }
            }
            if let Some((cert, key)) = &tls.client_cert {
                b.set_certificate_chain_file(cert)
                    .map_err(|e| fail(format!("{}: {e}", cert.display())))?;
                b.set_private_key_file(key, SslFiletype::PEM)
                    .map_err(|e| fail(format!("{}: {e}", key.display())))?;
                b.check_private_key()
                    .map_err(|e| fail(format!("{}: {e}", key.display())))?;
            }
            let sessions = OriginSessions::new(
                NonZeroUsize::new(1024).unwrap_or(NonZeroUsize::MIN),
                Duration::from_secs(3600),
            );
            sessions.install(&mut b).map_err(|e| fail(e.to_string()))?;
            connectors.insert(r.line, (b.build(), sessions));
        }
        Ok(Origins { connectors })
    }

    /// Connects to the route's origin and sends it `first` (the client's first bytes), after
    /// `preamble` (a PROXY header), which goes first and in the clear: in one write with them
    /// to a plain origin, before the handshake to a TLS one. `None`: the origin closed before
    /// it took them.
    pub(crate) async fn connect(
        &self,
        route: &Route,
        preamble: Option<Vec<u8>>,
        first: &[u8],
    ) -> Result<Option<Box<dyn OriginStream>>, String> {
        let mut tcp = TcpStream::connect(&route.origin)
            .await
            .map_err(|e| format!("origin {}: {e}", route.origin))?;
        let _ = tcp.set_nodelay(true);
        let (Some(tls), Some((connector, sessions))) =
            (&route.tls, self.connectors.get(&route.line))
        else {
            let sent = match preamble {
                Some(mut p) => {
                    p.extend_from_slice(first);
                    tcp.write_all(&p).await
                }
                None => tcp.write_all(first).await,
            };
            return Ok(sent.is_ok().then(|| Box::new(tcp) as Box<dyn OriginStream>));
        };
        if let Some(p) = preamble {
            tcp.write_all(&p)
                .await
                .map_err(|e| format!("origin {}: {e}", route.origin))?;
        }
        let host = route.origin.rsplit_once(':').map_or("", |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let sni = tls
            .sni
            .as_deref()
            .or((host.parse::<std::net::IpAddr>().is_err()).then_some(host));
        let mut cfg = connector.configure().map_err(|e| e.to_string())?;
        if tls.verify != Verify::Full {
            cfg.set_verify_hostname(false);
        }
        cfg.set_use_server_name_indication(sni.is_some());
        let mut ssl = cfg
            .into_ssl(sni.unwrap_or(host))
            .map_err(|e| e.to_string())?;
        let port = route
            .origin
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(0);
        sessions
            .prepare(&mut ssl, OriginKey::new(host, port, sni))
            .map_err(|e| e.to_string())?;
        let mut stream = tokio_openssl::SslStream::new(ssl, tcp).map_err(|e| e.to_string())?;
        Pin::new(&mut stream)
            .connect()
            .await
            .map_err(|e| format!("origin {} TLS: {e}", route.origin))?;
        Ok(stream
            .write_all(first)
            .await
            .is_ok()
            .then(|| Box::new(stream) as Box<dyn OriginStream>))
    }
}
