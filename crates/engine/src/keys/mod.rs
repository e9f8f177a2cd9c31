//! Remote keys and how they sign: the key object OpenSSL holds (`key.rs`; made by the
//! `edgetls-keyless` provider in `provider/`, or by the ENGINE shim in `engine.rs` with the
//! `engine` feature), what a remote key is and the ones this crate has (`remote.rs`), the
//! connection a signature is for (`connection.rs`), how the sign step waits for the answer —
//! blocking, or pausing the async job (`wait.rs`) — and the certificate store's remote keys
//! (`store.rs`).

pub(crate) mod connection;
#[cfg(feature = "engine")]
pub(crate) mod engine;
pub(crate) mod key;
pub mod provider;
pub(crate) mod remote;
pub(crate) mod store;
pub(crate) mod wait;
