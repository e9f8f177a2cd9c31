//! Copying bytes both ways, with half-close passed on and an idle timeout.
//!
//! A writer is flushed when its reader has nothing more for now, not after every write: what
//! arrives together leaves together (over TLS, an answer and the `close_notify` after it are one
//! send; see `edgetls_engine::Transport`).

use std::cell::Cell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
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
    let mut unflushed = false;
    loop {
        let buf: &mut [u8] = if big.is_empty() { &mut small } else { &mut big };
        let n = loop {
            let read = read_or_flush(r, w, buf, &mut unflushed);
            match tokio::time::timeout_at(last.get() + idle, read).await {
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
        if w.write_all(&buf[..n]).await.is_err() {
            return total;
        }
        unflushed = true;
        if n == buf.len() && big.is_empty() {
            big = vec![0u8; 16 * 1024];
        }
        total += n as u64;
    }
}

/// Reads into `buf`; if that has to wait, first flushes `w` when it holds unflushed writes.
async fn read_or_flush<R, W>(
    r: &mut R,
    w: &mut W,
    buf: &mut [u8],
    unflushed: &mut bool,
) -> io::Result<usize>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut rb = ReadBuf::new(buf);
    poll_fn(|cx| {
        if let Poll::Ready(r) = Pin::new(&mut *r).poll_read(cx, &mut rb) {
            return Poll::Ready(r.map(|()| rb.filled().len()));
        }
        if *unflushed {
            match Pin::new(&mut *w).poll_flush(cx) {
                Poll::Ready(Ok(())) => *unflushed = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        Poll::Pending
    })
    .await
}
