//! A streaming decoder: feed it whatever a read returned, take out whole packets.

use crate::error::ProtoError;
use crate::packet::{HEADER_LEN, Header, Packet};

/// Buffers bytes from a stream and yields packets as they complete.
///
/// A frame whose body is malformed, or whose version is not 1, is consumed whole and returned as
/// an error carrying its request id, so a server can answer it and the stream stays in sync.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes before this offset were already returned.
    start: usize,
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Appends bytes read from the stream.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole packet, `None` if more bytes are needed.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<Packet, ProtoError>> {
        let pending = &self.buf[self.start..];
        let header = Header::parse(pending)?;
        let total = HEADER_LEN + usize::from(header.length);
        if pending.len() < total {
            return None;
        }
        let result = Packet::decode(&pending[..total]);
        self.start += total;
        // Keep the buffer from growing without bound on a long stream.
        if self.start > 64 * 1024 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Some(result)
    }

    /// Bytes received but not yet returned as packets.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}
