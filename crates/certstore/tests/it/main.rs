//! Integration tests: real files, real OpenSSL handshakes, the `openssl s_client` CLI.

mod bad_input;
mod common;
mod examples;
mod fuzz_seeds;
mod handshake;
mod haproxy_crtlist;
mod key_types;
mod ocsp;
mod reload;
mod remote_keys;
mod servable;
