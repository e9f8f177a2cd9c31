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
/// passed on as a write shutdown (half-close) of the other. When no byte has moved either way
/// for `idle` (reads waiting, or a write the peer does not take), both sides are shut down
/// (waiting at most [`CLOSE_GRACE`] for that) and closed.
///
/// One timer serves the connection: it is set once per idle period and, when it fires, looks
/// at when bytes last moved, rather than a timer armed and cancelled around every read.
pub(crate) async fn pipe<A, B>(a: A, b: B, idle: Duration)
where
    A: AsyncRead + AsyncWrite,
    B: AsyncRead + AsyncWrite,
{
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let last = Cell::new(Instant::now());
    let done = {
        let both = async {
            tokio::join!(
                one_way(&mut ar, &mut bw, &last),
                one_way(&mut br, &mut aw, &last)
            )
        };
        tokio::select! {
            _ = both => true,
            () = watchdog(&last, idle) => false,
        }
    };
    if !done {
        // A polite close (close_notify, FIN) where the peer still takes it; a peer that does
        // not read gets no longer than CLOSE_GRACE before the sockets are dropped.
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            let _ = aw.shutdown().await;
            let _ = bw.shutdown().await;
        })
        .await;
    }
}

/// How long an idle connection's shutdown may wait for its peers to take the last bytes.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Returns once `idle` has passed since `last`.
async fn watchdog(last: &Cell<Instant>, idle: Duration) {
    loop {
        let deadline = last.get() + idle;
        if deadline <= Instant::now() {
            return;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

async fn one_way<R, W>(r: &mut R, w: &mut W, last: &Cell<Instant>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // A small buffer in the task until data flows, then a larger one on the heap: most
    // connections are idle most of the time, and an idle connection should cost little memory.
    let mut small = [0u8; 512];
    let mut big: Vec<u8> = Vec::new();
    let mut unflushed = false;
    loop {
        let buf: &mut [u8] = if big.is_empty() { &mut small } else { &mut big };
        let n = read_or_flush(r, w, buf, &mut unflushed).await.unwrap_or(0);
        if n == 0 {
            let _ = w.shutdown().await;
            return;
        }
        last.set(Instant::now());
        if w.write_all(&buf[..n]).await.is_err() {
            return;
        }
        unflushed = true;
        if n == buf.len() && big.is_empty() {
            big = vec![0u8; 16 * 1024];
        }
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
