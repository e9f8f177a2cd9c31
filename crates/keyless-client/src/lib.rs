//! edgetls-keyless-client: sends private-key operations to keyless key servers.
//!
//! A few persistent mutual-TLS connections per key server carry every request pipelined with
//! its own id. Each request goes to the healthy connection with the fewest requests in flight,
//! has a deadline, and is sent again on another connection (or server) if its connection dies.
//! Connections are pinged; a dead one is dropped and reconnected with randomized exponential
//! backoff. The client runs on its own runtime thread(s): async callers on any runtime, plain
//! threads ([`KeylessClient::call_blocking`], [`KeylessClient::submit`]) and poll loops
//! ([`KeylessClient::submit_fd`]) all use it. A server with a current-thread runtime per worker
//! gives each worker a client of its own instead ([`PerThreadClient`]), so that a request and
//! its answer stay on the worker's thread.
//!
//! ```no_run
//! use edgetls_keyless_client::{ClientConfig, KeylessClient, ServerSpec, SignScheme};
//! use edgetls_keyless_proto::{HashAlgorithm, Ski};
//!
//! let servers = vec![ServerSpec::new("10.0.0.5:2407", "keys.example.net")];
//! let client = KeylessClient::new(ClientConfig::new(servers, "edge.pem", "edge.key", "keyserver-ca.pem"))?;
//! let ski = Ski([0; 20]); // Ski::from_spki_der(certificate's SubjectPublicKeyInfo)
//! let signature = client.call_blocking(edgetls_keyless_proto::Operation::request(
//!     SignScheme::Ecdsa(HashAlgorithm::Sha256).opcode().expect("a keyless opcode"),
//!     ski,
//!     vec![0; 32],
//! ))?;
//! # Ok::<(), edgetls_keyless_client::ClientError>(())
//! ```

#![warn(missing_docs, unreachable_pub)]

mod client;
mod config;
mod conn;
mod error;
mod health;
mod metrics;
mod per_thread;

pub use client::{KeylessClient, SignScheme, Submitted, is_caller_error};
pub use config::{ClientConfig, ServerSpec};
pub use error::ClientError;
pub use metrics::ClientMetrics;
pub use per_thread::PerThreadClient;

// The README is the crate's front page on crates.io: its examples are tested too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
