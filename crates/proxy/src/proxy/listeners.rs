//! This process's listening sockets: those handed over by the previous process where they
//! match an address of the configuration (`127.0.0.1:0` matches any port on 127.0.0.1), bound
//! anew otherwise; at least one per worker and address (`SO_REUSEPORT`).

use crate::error::CliError;
use crate::proxy::handover::{Handed, Kind};
use crate::proxy::worker;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

/// The sockets, ready for the workers and the metrics endpoint.
#[derive(Debug)]
pub(crate) struct Listeners {
    /// Per worker, its sockets (one or more per address).
    pub(crate) per_worker: Vec<Vec<std::net::TcpListener>>,
    /// The addresses served, ports resolved.
    pub(crate) addrs: Vec<SocketAddr>,
    pub(crate) metrics: Option<std::net::TcpListener>,
    /// Every socket, for a successor: what it is, where, its descriptor.
    pub(crate) offered: Vec<(Kind, SocketAddr, RawFd)>,
    /// Sockets received from the previous process and kept.
    pub(crate) reused: usize,
}

fn matches(configured: SocketAddr, handed: SocketAddr) -> bool {
    configured.ip() == handed.ip() && (configured.port() == 0 || configured.port() == handed.port())
}

fn listen_error(addr: SocketAddr) -> impl FnOnce(std::io::Error) -> CliError {
    move |source| CliError::Listen {
        addr: addr.to_string(),
        source,
    }
}

/// The port the system picks for a `:0` address, so that every worker binds the same one.
fn resolve(addr: SocketAddr) -> Result<SocketAddr, CliError> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    let probe = std::net::TcpListener::bind(addr).map_err(listen_error(addr))?;
    probe.local_addr().map_err(listen_error(addr))
}

/// Sockets for `listen` (per worker) and `metrics`, taking from `handed` what matches.
pub(crate) fn assign(
    listen: &[SocketAddr],
    workers: usize,
    defer: bool,
    metrics: Option<SocketAddr>,
    handed: Vec<Handed>,
) -> Result<Listeners, CliError> {
    let (mut tls, mut other): (Vec<Handed>, Vec<Handed>) =
        handed.into_iter().partition(|h| h.kind == Kind::Tls);
    let mut per_worker: Vec<Vec<std::net::TcpListener>> =
        (0..workers).map(|_| Vec::new()).collect();
    let mut addrs = Vec::new();
    let mut reused = 0;
    for &configured in listen {
        let (mine, rest): (Vec<Handed>, Vec<Handed>) =
            tls.into_iter().partition(|h| matches(configured, h.addr));
        tls = rest;
        let addr = match mine.first() {
            Some(h) => h.addr,
            None => resolve(configured)?,
        };
        addrs.push(addr);
        reused += mine.len();
        let mut given = vec![false; workers];
        for (j, h) in mine.into_iter().enumerate() {
            per_worker[j % workers].push(h.socket);
            given[j % workers] = true;
        }
        for (w, got) in given.into_iter().enumerate() {
            if !got {
                per_worker[w].push(worker::bind(addr, defer).map_err(listen_error(addr))?);
            }
        }
    }
    for h in &tls {
        tracing::info!(
            "{}: no longer in the configuration; its socket is closed",
            h.addr
        );
    }
    let metrics = match metrics {
        None => None,
        Some(configured) => {
            let taken = other
                .iter()
                .position(|h| matches(configured, h.addr))
                .map(|i| other.swap_remove(i).socket);
            reused += usize::from(taken.is_some());
            Some(match taken {
                Some(s) => s,
                None => {
                    let l = std::net::TcpListener::bind(configured)
                        .map_err(listen_error(configured))?;
                    l.set_nonblocking(true).map_err(listen_error(configured))?;
                    l
                }
            })
        }
    };
    let mut offered = Vec::new();
    for sockets in &per_worker {
        for s in sockets {
            if let Ok(a) = s.local_addr() {
                offered.push((Kind::Tls, a, s.as_raw_fd()));
            }
        }
    }
    if let Some(m) = &metrics {
        if let Ok(a) = m.local_addr() {
            offered.push((Kind::Metrics, a, m.as_raw_fd()));
        }
    }
    Ok(Listeners {
        per_worker,
        addrs,
        metrics,
        offered,
        reused,
    })
}
