//! Remote keys: what a remote key is and the ones this crate has (`remote.rs`), the private key
//! OpenSSL holds for one — made through the seam's remote-key hook, bound to the certificate's
//! SKI (`key.rs`) — and the certificate store's remote keys (`store.rs`).

pub(crate) mod key;
pub(crate) mod remote;
pub(crate) mod store;
