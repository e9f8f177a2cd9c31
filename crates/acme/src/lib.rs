#![doc = include_str!("../README.md")]
#![warn(missing_docs, unreachable_pub)]

mod account;
mod ari;
mod challenges;
mod config;
mod error;
mod manager;
mod metrics;
mod order;
mod storage;

pub use account::account_path;
pub use challenges::{ACME_TLS_ALPN, AlpnAnswer, Challenges};
pub use config::{AcmeConfig, Challenge, KeyType, parse_names};
pub use error::AcmeError;
pub use manager::{Acme, SetStatus};
pub use metrics::AcmeMetrics;
pub use storage::{Validity, bundle_path, prepare as prepare_storage, validity, write_atomically};
