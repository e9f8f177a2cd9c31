//! Copying bytes both ways, with half-close passed on and an idle timeout.

use std::cell::Cell;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Copies `a` → `b` and `b` → `a` until both directions ended. End of input on one side is
/// passed on as a write shutdown (half-close) of the other; no byte in either direction for
/// `idle` ends both. Returns the bytes copied each way.
pub(crate) async fn pipe<A, B>(a: A, b: B, idle: Duration) -> (u64, u64)
where
    A: AsyncRead + AsyncWrite,
    B: AsyncRead + AsyncWrite,
{
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let last = Cell::new(Instant::now());
    tokio::join!(
        one_way(&mut ar, &mut bw, &last, idle),
        one_way(&mut br, &mut aw, &last, idle)
    )
}

async fn one_way<R, W>(r: &mut R, w: &mut W, last: &Cell<Instant>, idle: Duration) -> u64
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // A small buffer in the task until data flows, then a larger one on the heap: most
    // connections are idle most of the time, and an idle connection should cost little memory.
    let mut small = [0u8; 512];
    let mut big: Vec<u8> = Vec::new();
    let mut total = 0u64;
    loop {
        let buf: &mut [u8] = if big.is_empty() { &mut small } else { &mut big };
        let n = loop {
            match tokio::time::timeout_at(last.get() + idle, r.read(buf)).await {
                Ok(Ok(n)) => break n,
                Ok(Err(_)) => break 0,
                // The other direction may have moved bytes meanwhile: wait on.
                Err(_) if last.get() + idle > Instant::now() => continue,
                Err(_) => {
                    let _ = w.shutdown().await;
                    return total;
                }
            }
        };
        if n == 0 {
            let _ = w.shutdown().await;
            return total;
        }
        last.set(Instant::now());
        if w.write_all(&buf[..n]).await.is_err() || w.flush().await.is_err() {
            return total;
        }
        if n == buf.len() && big.is_empty() {
            big = vec![0u8; 16 * 1024];
        }
        total += n as u64;
    }
}
