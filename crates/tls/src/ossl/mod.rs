//! OpenSSL (3.0, 3.5 LTS, 4.0) behind the seam: its ClientHello callback, its ex_data slots and
//! the ClientHello retry.

mod ffi;
mod hello;
mod job;
pub mod job_stack;
pub mod retry;
mod slots;

pub use hello::ClientHello;
pub use job::in_async_job;
pub use slots::{local_addr, refusal, refuse, set_local_addr};
