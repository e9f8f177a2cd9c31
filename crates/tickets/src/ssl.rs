//! The ring on a server context, through the seam's ticket-key hook ([`edgetls_tls::tickets`]):
//! global enable/disable, a per-name override, the TLS 1.3 ticket count and the counters.

use crate::error::TicketError;
use crate::key::TicketKey;
use crate::ring::TicketKeys;
use edgetls_tls::retry::{self, Pending};
use edgetls_tls::tickets::{self as hook, SealingKey, TicketEvent, TicketKeyLookup};
use edgetls_tls::{Next, Reason};
use openssl::ssl::{SslAlert, SslContextBuilder, SslRef};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// Decides per server name: `Some(false)` turns tickets off for that name (no ticket issued, none
/// accepted), `Some(true)` or `None` leaves them on. It is asked once per connection from a
/// ClientHello callback that `install` sets only when an override is given — on an OpenSSL
/// ASYNC job (async mode, driven by `edgetls_engine::accept`) it is left to the driver and runs
/// on the worker's own stack; code with its own ClientHello callback (the policy crate) calls
/// [`disable_for`] there instead.
pub type NameOverride = Arc<dyn Fn(Option<&str>) -> Option<bool> + Send + Sync>;

/// Ticket settings for a server context.
#[derive(Clone)]
#[non_exhaustive]
pub struct TicketConfig {
    /// Tickets at all (TLS 1.2 tickets and TLS 1.3 resumption).
    pub enabled: bool,
    /// Tickets sent after a TLS 1.3 handshake (OpenSSL's default is 2).
    pub tls13_tickets: usize,
    /// A per-connection choice of key ring (the policy's per-rule ticket keys).
    pub name_override: Option<NameOverride>,
}

impl std::fmt::Debug for TicketConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketConfig")
            .field("enabled", &self.enabled)
            .field("tls13_tickets", &self.tls13_tickets)
            .field("name_override", &self.name_override.is_some())
            .finish()
    }
}

impl Default for TicketConfig {
    fn default() -> Self {
        TicketConfig {
            enabled: true,
            tls13_tickets: 2,
            name_override: None,
        }
    }
}

/// Turns session tickets on for contexts built from `ctx`, with keys from `keys`, or off.
///
/// Off means no ticket extension and no TLS 1.3 tickets at all. On, tickets are sealed with the
/// ring's encrypting key; tickets under an older key still in the ring resume and are renewed;
/// unknown or expired keys give a full handshake, never an error. If a server name callback
/// switches connections to other contexts, install on those too (OpenSSL asks the context the
/// connection has at that moment for its state). OpenSSL's session-ID cache is left as it is:
/// clients that do not use tickets resume from it (`edgetls_policy::SessionCache` sets it).
pub fn install(
    ctx: &mut SslContextBuilder,
    keys: Arc<TicketKeys>,
    config: &TicketConfig,
) -> Result<(), TicketError> {
    if !config.enabled {
        hook::configure(ctx, None)?;
        return Ok(());
    }
    hook::configure(ctx, Some(config.tls13_tickets))?;
    if let Some(o) = config.name_override.clone() {
        // Tickets are looked at before the server name is processed: decide per name from the
        // ClientHello itself, before OpenSSL looks for a ticket.
        edgetls_tls::on_client_hello(ctx, move |ssl| {
            let off = match retry::take_output::<OverrideSaid>(ssl) {
                Some(OverrideSaid(off)) => off,
                None => {
                    let name = edgetls_tls::ClientHello::of(ssl).server_name();
                    // The override is the caller's code: on an OpenSSL ASYNC job's stack (remote
                    // keys) it is left to the driver, which runs it on its own stack.
                    if edgetls_tls::in_async_job() && retry::can_defer(ssl) {
                        let o = Arc::clone(&o);
                        let ask = Pending::new(move || OverrideSaid(ask_override(&o, name)));
                        return retry::defer(ssl, ask).map_err(|_| {
                            edgetls_tls::refuse(
                                ssl,
                                SslAlert::INTERNAL_ERROR,
                                Reason::Internal,
                                "the ticket name override must run off the job but cannot",
                            )
                        });
                    }
                    ask_override(&o, name)
                }
            };
            if off {
                disable_for(ssl).map_err(|_| {
                    edgetls_tls::refuse(
                        ssl,
                        SslAlert::INTERNAL_ERROR,
                        Reason::TicketKeys,
                        "tickets could not be turned off for this connection",
                    )
                })?;
            }
            Ok(Next::Continue)
        });
    }
    keys.start_refresher();
    hook::install(ctx, keys)?;
    Ok(())
}

/// What a name override said for a connection: true when tickets are off.
struct OverrideSaid(bool);

/// Asks the override about `name`. It is the caller's code: a panic in it must not unwind into
/// OpenSSL; it counts as "off" for this connection (no ticket), and the handshake goes on.
fn ask_override(o: &NameOverride, name: Option<String>) -> bool {
    catch_unwind(AssertUnwindSafe(|| o(name.as_deref()) == Some(false))).unwrap_or(true)
}

/// Turns tickets off for one connection (e.g. from a server name callback, for a name whose
/// policy says so).
pub fn disable_for(ssl: &mut SslRef) -> Result<(), TicketError> {
    Ok(hook::disable_for(ssl)?)
}

impl SealingKey for TicketKey {
    fn name(&self) -> &[u8; 16] {
        TicketKey::name(self)
    }

    fn aes_key(&self) -> &[u8] {
        TicketKey::aes_key(self)
    }

    fn hmac_secret(&self) -> &[u8] {
        TicketKey::hmac_secret(self)
    }
}

/// The hook reads the ring as it is: its source is refreshed by the ring's refresher thread,
/// never from the hook (which may run on an OpenSSL ASYNC job's stack).
impl TicketKeyLookup for TicketKeys {
    fn sealing_key(&self) -> Arc<dyn SealingKey> {
        self.encrypting_in_force()
    }

    fn find(&self, name: &[u8; 16]) -> Option<(Arc<dyn SealingKey>, bool)> {
        self.find_in_force(name)
            .map(|f| (f.key as Arc<dyn SealingKey>, f.current))
    }

    fn count(&self, event: TicketEvent) {
        let c = self.counters();
        let counter = match event {
            TicketEvent::Issued => &c.issued,
            TicketEvent::Resumed => &c.resumed,
            TicketEvent::Renewed => &c.renewed,
            TicketEvent::UnknownKey => &c.unknown_key,
            TicketEvent::NotDecrypted => &c.not_decrypted,
            TicketEvent::Failed => &c.failed,
            _ => return,
        };
        counter.fetch_add(1, Relaxed);
    }
}
