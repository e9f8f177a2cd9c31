//! Whether code is running on an OpenSSL ASYNC job's stack (32 KiB, no guard page): the place
//! where nothing heavy may run.

/// True while the calling thread runs inside an OpenSSL ASYNC job (a handshake step in async
/// mode). Work that decodes, reads files or runs user code must not happen then: hooks defer it
/// ([`crate::retry`]), and code that could be reached from a hook can check here.
#[cfg(not(awslc))]
pub fn in_async_job() -> bool {
    // SAFETY: ASYNC_get_current_job only reads this thread's async context; it takes no
    // arguments and returns NULL outside a job.
    !unsafe { super::ffi::ASYNC_get_current_job() }.is_null()
}

/// Always false on AWS-LC: it has no ASYNC jobs, nothing ever runs on a job's stack.
#[cfg(awslc)]
pub fn in_async_job() -> bool {
    false
}
