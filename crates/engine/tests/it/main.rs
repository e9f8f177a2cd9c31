//! Handshakes against servers whose private keys live in a real key server (over TCP with mutual
//! TLS), from Rust OpenSSL clients and `openssl s_client`, in blocking and async mode.

mod async_mode;
mod common;
mod examples;
mod handshakes;
mod items;
#[cfg(not(awslc))]
mod provider;
mod s_client;
mod store;
mod stream;

/// Tests that read the process-wide engine counters take this, so others do not move them.
pub static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}
