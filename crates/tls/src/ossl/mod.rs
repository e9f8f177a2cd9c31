//! OpenSSL (3.0, 3.5 LTS, 4.0) behind the seam: its ClientHello callback, its ex_data slots,
//! the ClientHello retry, the remote-key provider and ASYNC jobs, the ticket-key and status
//! callbacks, and setting chains.

mod chain;
pub(crate) mod ffi;
pub(crate) mod groups;
mod hello;
mod job;
pub mod job_stack;
pub(crate) mod remote_key;
pub mod retry;
mod slots;
pub(crate) mod staple;
#[cfg(not(awslc))]
pub(crate) mod tickets;
#[cfg(awslc)]
pub(crate) use crate::awslc::tickets;

pub use chain::{use_chain, use_chain_on_context};
pub use hello::{ClientHello, on_client_hello};
pub use job::in_async_job;
pub use slots::{local_addr, refusal, refuse, set_local_addr};
