//! Ticket keys against real OpenSSL peers: `openssl s_client -sess_out/-sess_in` and Rust
//! OpenSSL clients, servers sharing key files or only a derivation secret, rotation, origins.

mod async_override;
mod common;
mod examples;
mod formats;
mod fuzz_seeds;
mod origin;
mod remote;
mod resumption;
mod rotation;
