//! A listener with several rules against `openssl s_client` and `curl`.

mod common;
mod config;
mod crtlist_options;
mod examples;
mod fuzz_seeds;
mod handshakes;
mod rule_tickets;
