//! The shared test kit (PKI, key directory, in-process server, blocking client).
pub use edgetls_testkit::*;
