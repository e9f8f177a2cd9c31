//! Restarts and upgrades without a lost connection. A running proxy serves a Unix control
//! socket; its successor (`edgetls upgrade`, which starts `edgetls proxy --takeover`) asks it
//! for its listening sockets — TLS and metrics — and receives them over that socket
//! (`SCM_RIGHTS`, as HAProxy's `-x`), accepts on the very same sockets, and only then tells the
//! old process to drain. A socket is never closed on the way, so nothing queued in it is lost
//! (whatever `net.ipv4.tcp_migrate_req` says).
//!
//! The protocol, one line a request: `status` → `edgetls PID`; `listeners` → a text payload
//! (`edgetls-listeners 1`, then `tls ADDR` or `metrics ADDR` per socket, then an empty line)
//! carrying the sockets in the same order as `SCM_RIGHTS`; `drain` → `ok PID`, and the process
//! stops accepting, finishes its connections and exits.

use crate::error::CliError;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use std::io::{BufRead, BufReader, IoSlice, IoSliceMut, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The most sockets handed over (the kernel takes up to 253 descriptors in one message).
const MOST: usize = 250;

/// Which listener a socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Tls,
    Metrics,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Tls => "tls",
            Kind::Metrics => "metrics",
        }
    }
}

/// A listening socket received from the previous process.
#[derive(Debug)]
pub(crate) struct Handed {
    pub(crate) kind: Kind,
    pub(crate) addr: SocketAddr,
    pub(crate) socket: std::net::TcpListener,
}

/// The control socket of a process that serves it, removed when the process ends unless a
/// successor has put its own in its place.
#[derive(Debug)]
pub(crate) struct Control {
    path: PathBuf,
    inode: u64,
}

impl Drop for Control {
    fn drop(&mut self) {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn setup(what: &str, path: &Path, e: impl std::fmt::Display) -> CliError {
    CliError::Setup(format!("{what} {}: {e}", path.display()))
}

/// Asks the process serving `path` for its pid (`None`: nobody answers there within 2 s — a
/// process busy handing over answers its successor first).
pub(crate) fn status(path: &Path) -> Option<u32> {
    let (mut reader, mut writer) = connect(path, Duration::from_secs(2)).ok()?;
    writer.write_all(b"status\n").ok()?;
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    line.strip_prefix("edgetls ")?.trim().parse().ok()
}

/// A connection to the control socket; answers are awaited `patience` at most.
fn connect(
    path: &Path,
    patience: Duration,
) -> std::io::Result<(BufReader<UnixStream>, UnixStream)> {
    let s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(patience))?;
    Ok((BufReader::new(s.try_clone()?), s))
}

/// Binds the control socket at `path` and answers it on a thread of its own. The sockets
/// `offered` are handed to whoever asks; `drain` is notified on `drain`. A path held by another
/// live process is refused (it is that process's); a stale one (nobody answers) is replaced.
/// The new socket is bound beside the path and renamed over it, so that a successor takes the
/// path from its predecessor in one step.
pub(crate) fn serve(
    path: &Path,
    offered: Vec<(Kind, SocketAddr, RawFd)>,
    drain: Arc<tokio::sync::Notify>,
) -> Result<Control, CliError> {
    if offered.len() > MOST {
        return Err(CliError::Setup(format!(
            "{} listening sockets: at most {MOST} can be handed over (fewer workers or addresses)",
            offered.len()
        )));
    }
    let staged = path.with_extension(format!("sock.{}", std::process::id()));
    let _ = std::fs::remove_file(&staged);
    let listener = UnixListener::bind(&staged).map_err(|e| setup("control socket", &staged, e))?;
    // Whoever can connect can take the listening sockets or stop the proxy: its owner alone.
    std::fs::set_permissions(&staged, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| setup("control socket", &staged, e))?;
    let inode = std::fs::metadata(&staged)
        .map_err(|e| setup("control socket", &staged, e))?
        .ino();
    std::fs::rename(&staged, path).map_err(|e| setup("control socket", path, e))?;
    let control = Control {
        path: path.to_path_buf(),
        inode,
    };
    let shown = path.to_path_buf();
    std::thread::Builder::new()
        .name("edgetls-control".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                match answer(conn, &offered) {
                    Ok(true) => {
                        drain.notify_one();
                        return; // the successor has the path now
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!("control socket {}: {e}", shown.display()),
                }
            }
        })
        .map_err(|e| setup("control socket", path, e))?;
    Ok(control)
}

/// Answers one connection's requests; true once asked to drain.
fn answer(conn: UnixStream, offered: &[(Kind, SocketAddr, RawFd)]) -> std::io::Result<bool> {
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(false);
        }
        match line.trim() {
            "status" => writeln!(conn, "edgetls {}", std::process::id())?,
            "listeners" => send(&conn, offered)?,
            "drain" => {
                writeln!(conn, "ok {}", std::process::id())?;
                tracing::info!("handed over to a new process: draining");
                return Ok(true);
            }
            other => writeln!(conn, "error: unknown request {other:?}")?,
        }
    }
}

fn send(conn: &UnixStream, offered: &[(Kind, SocketAddr, RawFd)]) -> std::io::Result<()> {
    let mut text = String::from("edgetls-listeners 1\n");
    for (kind, addr, _) in offered {
        text.push_str(&format!("{} {addr}\n", kind.word()));
    }
    text.push('\n');
    let fds: Vec<RawFd> = offered.iter().map(|(_, _, fd)| *fd).collect();
    let bytes = text.as_bytes();
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let mut sent = sendmsg::<()>(
        conn.as_raw_fd(),
        &[IoSlice::new(bytes)],
        &cmsg,
        MsgFlags::empty(),
        None,
    )
    .map_err(std::io::Error::from)?;
    // The rest of a long text, without descriptors.
    while sent < bytes.len() {
        sent += sendmsg::<()>(
            conn.as_raw_fd(),
            &[IoSlice::new(&bytes[sent..])],
            &[],
            MsgFlags::empty(),
            None,
        )
        .map_err(std::io::Error::from)?;
    }
    Ok(())
}

/// The previous process, as its successor sees it: its sockets, and the connection on which
/// it is told to drain.
#[derive(Debug)]
pub(crate) struct Predecessor {
    pub(crate) pid: u32,
    pub(crate) sockets: Vec<Handed>,
    conn: (BufReader<UnixStream>, UnixStream),
}

/// Takes the listening sockets of the process serving the control socket at `path`.
pub(crate) fn take(path: &Path) -> Result<Predecessor, CliError> {
    let fail = |e: &dyn std::fmt::Display| {
        CliError::Setup(format!(
            "taking over from the process on {}: {e}",
            path.display()
        ))
    };
    let pid = status(path).ok_or_else(|| fail(&"no edgetls proxy answers there"))?;
    let (reader, mut writer) = connect(path, Duration::from_secs(30)).map_err(|e| fail(&e))?;
    writer.write_all(b"listeners\n").map_err(|e| fail(&e))?;
    let (text, fds) = receive(&writer).map_err(|e| fail(&e))?;
    let mut lines = text.lines();
    if lines.next() != Some("edgetls-listeners 1") {
        return Err(fail(&format!("unexpected answer {text:?}")));
    }
    let described: Vec<&str> = lines.take_while(|l| !l.is_empty()).collect();
    if described.len() != fds.len() {
        return Err(fail(&format!(
            "{} sockets described, {} received",
            described.len(),
            fds.len()
        )));
    }
    let mut sockets = Vec::new();
    for (line, fd) in described.into_iter().zip(fds) {
        let (kind, addr) = line
            .split_once(' ')
            .ok_or_else(|| fail(&format!("bad line {line:?}")))?;
        let kind = match kind {
            "tls" => Kind::Tls,
            "metrics" => Kind::Metrics,
            other => return Err(fail(&format!("unknown socket kind {other:?}"))),
        };
        let addr = addr.parse().map_err(|e| fail(&e))?;
        let socket = std::net::TcpListener::from(fd);
        socket.set_nonblocking(true).map_err(|e| fail(&e))?;
        sockets.push(Handed { kind, addr, socket });
    }
    Ok(Predecessor {
        pid,
        sockets,
        conn: (reader, writer),
    })
}

/// Reads the `listeners` answer: its text up to the empty line, and the descriptors with it.
fn receive(conn: &UnixStream) -> std::io::Result<(String, Vec<OwnedFd>)> {
    let mut text = Vec::new();
    let mut fds = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while !text.ends_with(b"\n\n") {
        let mut space = nix::cmsg_space!([RawFd; MOST]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(std::io::Error::from)?;
        for c in msg.cmsgs().map_err(std::io::Error::from)? {
            if let ControlMessageOwned::ScmRights(received) = c {
                for fd in received {
                    // SAFETY: the kernel just installed this descriptor in this process for
                    // us (SCM_RIGHTS); nothing else knows or owns it.
                    fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        let n = msg.bytes;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the old process closed the control connection",
            ));
        }
        text.extend_from_slice(&buf[..n]);
    }
    Ok((String::from_utf8_lossy(&text).into_owned(), fds))
}

impl Predecessor {
    /// Tells the previous process to stop accepting and drain; returns once it said it will.
    pub(crate) fn drain(self) -> Result<(), CliError> {
        let (mut reader, mut writer) = self.conn;
        let fail = |e: &dyn std::fmt::Display| {
            CliError::Setup(format!("telling pid {} to drain: {e}", self.pid))
        };
        writer.write_all(b"drain\n").map_err(|e| fail(&e))?;
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| fail(&e))?;
        if !line.starts_with("ok ") {
            return Err(fail(&format!("unexpected answer {line:?}")));
        }
        Ok(())
    }
}
