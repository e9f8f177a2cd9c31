//! Waiting for something to become true, with a limit (never a fixed sleep before an
//! assertion).

use std::time::{Duration, Instant};

/// Polls `f` every 10 ms until it holds or `limit` passes; whether it held.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

/// Polls `f` every 10 ms until it gives a value or `limit` passes.
pub fn until<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port` (at most 5 s); panics
/// naming `what` otherwise.
pub fn listening(port: u16, what: &str) {
    let up = eventually(Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "{what} did not listen on port {port} within 5 s");
}
