//! AWS-LC behind the seam, where it differs from OpenSSL's API (the rest of `ossl` serves
//! both): the ClientHello pause through BoringSSL's certificate-selection callback, remote keys
//! through the private-key method (no providers, no ASYNC jobs), the chain a connection serves
//! when a remote key is among two, and the ticket-key callback with `HMAC_CTX`.

pub(crate) mod chains;
pub(crate) mod hello;
pub(crate) mod key_method;
pub(crate) mod remote_key;
pub(crate) mod tickets;
