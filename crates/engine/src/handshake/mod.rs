//! Driving server handshakes on a thread: the future that runs a handshake, resuming its async
//! job when the key server answers and never freeing an SSL under a paused job (`driver.rs`);
//! context and connection settings remote keys need (`context.rs`); and why a handshake
//! failed, in a fixed set of reasons (`failure.rs`).

pub(crate) mod context;
pub(crate) mod driver;
pub(crate) mod failure;
