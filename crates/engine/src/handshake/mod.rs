//! Driving server handshakes on a thread: the future that runs a handshake, resuming it when
//! the key server answers and never freeing an SSL under a paused job (`driver.rs`); and why a
//! handshake failed, in a fixed set of reasons (`failure.rs`).

pub(crate) mod driver;
pub(crate) mod failure;
