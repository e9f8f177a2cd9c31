//! Resumption with a remote key makes no key-server request.
