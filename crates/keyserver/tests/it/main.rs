//! The key server over TCP with mutual TLS: every opcode checked against the public key,
//! errors, authorization, bad frames, pipelining, shutdown, and the binary itself.

mod binary;
mod common;
mod errors;
mod examples;
mod ops;
mod pkcs11;
mod stream;
