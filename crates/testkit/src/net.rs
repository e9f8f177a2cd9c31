//! Ports for servers that must be named before they start.

use std::net::TcpListener;

/// A port on 127.0.0.1 that was free a moment ago (for a server whose address goes into a
/// certificate or a configuration file before it starts; bind to port 0 where you can).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}
