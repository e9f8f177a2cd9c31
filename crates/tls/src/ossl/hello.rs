//! The ClientHello as OpenSSL's ClientHello callback sees it (`SSL_client_hello_get0_ext`).

use crate::hello::Next;
use crate::{Reason, refuse};
use foreign_types::ForeignTypeRef;
#[cfg(not(awslc))]
use openssl::ssl::ClientHelloResponse;
use openssl::ssl::{SslAlert, SslContextBuilder, SslRef};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// TLS extension numbers the view reads.
const EXT_SERVER_NAME: u32 = 0;
const EXT_ALPN: u32 = 16;

/// A view of the ClientHello being processed. Valid only inside a ClientHello callback, before
/// OpenSSL has processed the extensions (so `SSL_get_servername` is not yet set).
#[derive(Debug, Clone, Copy)]
pub struct ClientHello<'a> {
    ssl: &'a SslRef,
}

impl<'a> ClientHello<'a> {
    /// The ClientHello of `ssl`, from inside a ClientHello callback.
    pub fn of(ssl: &'a SslRef) -> Self {
        ClientHello { ssl }
    }

    /// The body of extension `ext_type`, if the client sent it.
    pub fn extension(&self, ext_type: u32) -> Option<&'a [u8]> {
        let mut p: *const u8 = std::ptr::null();
        let mut len: usize = 0;
        // SAFETY: called on a live SSL inside its ClientHello callback (the only place this view
        // is made); OpenSSL points `p` into its copy of the ClientHello, which lives as long as
        // the SSL's handshake state and so at least as long as `'a`.
        unsafe {
            if openssl_sys::SSL_client_hello_get0_ext(self.ssl.as_ptr(), ext_type, &mut p, &mut len)
                != 1
                || p.is_null()
            {
                return None;
            }
            Some(std::slice::from_raw_parts(p, len))
        }
    }

    /// The cipher suites offered, in the client's order.
    pub fn cipher_suites(&self) -> impl Iterator<Item = u16> + 'a {
        let mut p: *const u8 = std::ptr::null();
        // SAFETY: as in `extension`: OpenSSL points `p` into its copy of the ClientHello.
        let list: &'a [u8] = unsafe {
            let n = openssl_sys::SSL_client_hello_get0_ciphers(self.ssl.as_ptr(), &mut p);
            if p.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(p, n)
            }
        };
        list.chunks_exact(2)
            .map(|s| u16::from_be_bytes([s[0], s[1]]))
    }

    /// The server name asked for, lowercased.
    pub fn server_name(&self) -> Option<String> {
        crate::hello::server_name_extension(self.extension(EXT_SERVER_NAME)?)
    }

    /// The ALPN protocols offered, in the client's order.
    pub fn alpn_protocols(&self) -> impl Iterator<Item = &'a [u8]> {
        crate::hello::alpn_protocols(self.extension(EXT_ALPN).unwrap_or(&[]))
    }
}

/// Runs `hook` at every ClientHello on connections of `ctx` (one hook per context: a second
/// call replaces the first). It sees the ClientHello through [`ClientHello::of`], may switch
/// the connection's context and settings, and answers: go on, pause for work left with
/// [`retry::defer`](crate::retry::defer), or end the handshake with an alert (after
/// [`refuse`](crate::refuse), so the reason is recorded). A panic in the hook ends that
/// handshake only (`internal`); it never reaches the library.
///
/// On OpenSSL this is the ClientHello callback (`SSL_CTX_set_client_hello_cb`): it runs before
/// the library reads the extensions (server name, tickets, ALPN), so what the hook decides
/// applies to all of them. On AWS-LC it is the same callback, with BoringSSL's
/// certificate-selection callback for the pause.
pub fn on_client_hello<F>(ctx: &mut SslContextBuilder, hook: F)
where
    F: Fn(&mut SslRef) -> Result<Next, SslAlert> + Send + Sync + 'static,
{
    let guarded = move |ssl: &mut SslRef| {
        catch_unwind(AssertUnwindSafe(|| hook(ssl))).unwrap_or_else(|_| {
            Err(refuse(
                ssl,
                SslAlert::INTERNAL_ERROR,
                Reason::Internal,
                "panic in a ClientHello hook (caught)",
            ))
        })
    };
    #[cfg(awslc)]
    crate::awslc::hello::install(ctx, Box::new(guarded));
    #[cfg(not(awslc))]
    ctx.set_client_hello_callback(move |ssl, alert| match guarded(ssl) {
        Ok(Next::Continue) => Ok(ClientHelloResponse::SUCCESS),
        Ok(Next::Retry) => Ok(ClientHelloResponse::RETRY),
        Err(a) => {
            *alert = a;
            Err(openssl::error::ErrorStack::get())
        }
    });
}
