//! `cargo xtask bench --suite restarts`: restarts and upgrades under load, side by side.
//! Clients make ~500 connections a second (32 paced tasks), each a full TLS 1.3 handshake,
//! `GET /` and the origin's answer; meanwhile each server is restarted [`EVENTS`] times, one a
//! second, by its own zero-downtime mechanism:
//!
//! * `edgetls upgrade` (the listening sockets, TLS and metrics, handed to the new process over
//!   the control socket; the old one drains);
//! * the restart edgetls's docs described before it (a second process joins the
//!   `SO_REUSEPORT` group, then SIGTERM to the first), for scale;
//! * nginx's binary upgrade (USR2 to the master, then QUIT to the old master), `http`;
//! * HAProxy's reload with its sockets handed over (`-x stats-socket -sf OLD`, `expose-fd
//!   listeners`), `mode tcp`.
//!
//! Every server has metrics or its stats socket on; `net.ipv4.tcp_migrate_req` is reported as
//! found (0 unless set). Failed connections are counted over the whole run.
//!
//! Then a start-up race: with [`RACE_NAMES`] certificates, one file is renamed over by a new
//! version at moments spread from the process's start to 2 s after it listens ([`TRIALS`]
//! trials); each trial reports how long after both the listening and the rename the new
//! certificate is served.

use crate::bench_names::free_port;
use crate::bench_proxy::{demo_files, origin};
use crate::loadgen::{self, Load, Target};
use anyhow::{Context, Result, bail};
use openssl::ssl::SslVersion;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Restarts per server.
const EVENTS: usize = 20;
/// Connections per second offered.
const RATE: f64 = 500.0;
const NAME: &str = "site000001.demo.test";
/// Certificates loaded in the start-up race.
const RACE_NAMES: usize = 100_000;
/// Start-up race trials.
const TRIALS: usize = 20;

/// One server's run: how it restarts, and what the clients saw.
struct Outcome {
    server: String,
    how: &'static str,
    events: usize,
    load: Load,
}

/// Runs the load against `addr` while `restart(i)` is called [`EVENTS`] times, a second apart.
fn under_load(addr: SocketAddr, mut restart: impl FnMut(usize) -> Result<()>) -> Result<Load> {
    let target = Target {
        addr,
        sni: NAME.into(),
        pid: None,
        concurrency: 32,
        seconds: EVENTS as f64 + 2.0,
        resume: false,
        pace: Some(RATE),
        expect: Some(b"ok\n"),
        version: SslVersion::TLS1_3,
        names: None,
        status: false,
        proxy_v2: false,
    };
    let load = std::thread::spawn(move || loadgen::run(&target));
    std::thread::sleep(Duration::from_millis(1500));
    for i in 0..EVENTS {
        let t = Instant::now();
        restart(i)?;
        std::thread::sleep(Duration::from_secs(1).saturating_sub(t.elapsed()));
    }
    load.join()
        .map_err(|_| anyhow::anyhow!("the load generator panicked"))?
}

/// The pid answering on an edgetls control socket.
pub(crate) fn control_pid(path: &Path) -> Option<u32> {
    let mut s = std::os::unix::net::UnixStream::connect(path).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"status\n").ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    line.strip_prefix("edgetls ")?.trim().parse().ok()
}

pub(crate) fn kill(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with a pid and a signal number; no memory is involved.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

/// Runs `edgetls upgrade --config CONFIG` (the new process's output discarded): whether it
/// took over.
pub(crate) fn upgrade(bin: &Path, config: &Path) -> Result<bool> {
    Ok(Command::new(bin)
        .args(["upgrade", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?
        .success())
}

/// Starts `edgetls proxy` and reads its first line: its address.
pub(crate) fn spawn_edgetls(
    bin: &Path,
    config: &Path,
) -> Result<(std::process::Child, SocketAddr)> {
    let mut child = Command::new(bin)
        .args(["proxy", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut out = BufReader::new(child.stdout.take().context("stdout")?);
    let mut line = String::new();
    out.read_line(&mut line)?;
    let addr = line
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .with_context(|| format!("edgetls proxy did not start: {line:?}"))?;
    // It prints more (the metrics address): keep reading, or its next line meets a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    Ok((child, addr))
}

fn edgetls_config(
    d: &Path,
    name: &str,
    port: u16,
    origin: SocketAddr,
) -> Result<std::path::PathBuf> {
    let config = d.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\nworkers = 2\nmetrics = \"127.0.0.1:0\"\n\n\
             [certificates]\nsources = [\"{}\"]\n\n[[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n",
            d.join("ssl_multicert.config").display()
        ),
    )?;
    Ok(config)
}

fn edgetls_upgrade(bin: &Path, d: &Path, origin: SocketAddr) -> Result<Outcome> {
    let config = edgetls_config(d, "upgrade", free_port()?, origin)?;
    let control = d.join("upgrade.sock");
    let (mut first, addr) = spawn_edgetls(bin, &config)?;
    let load = under_load(addr, |i| {
        if !upgrade(bin, &config)? {
            bail!("edgetls upgrade {} failed", i + 1);
        }
        Ok(())
    });
    let _ = first.wait(); // handed over at the first upgrade, and drained
    if let Some(pid) = control_pid(&control) {
        kill(pid, libc::SIGTERM);
    }
    Ok(Outcome {
        server: format!("edgetls {}", env!("CARGO_PKG_VERSION")),
        how: "`edgetls upgrade` (sockets handed over)",
        events: EVENTS,
        load: load?,
    })
}

fn edgetls_restart(bin: &Path, d: &Path, origin: SocketAddr) -> Result<Outcome> {
    let port = free_port()?;
    let config = edgetls_config(d, "restart", port, origin)?;
    let (child, addr) = spawn_edgetls(bin, &config)?;
    let mut current = child;
    let load = under_load(addr, |_| {
        let (next, _) = spawn_edgetls(bin, &config)?;
        kill(current.id(), libc::SIGTERM);
        let _ = current.wait();
        current = next;
        Ok(())
    });
    kill(current.id(), libc::SIGTERM);
    let _ = current.wait();
    Ok(Outcome {
        server: format!("edgetls {}", env!("CARGO_PKG_VERSION")),
        how: "new process, then SIGTERM to the old (`SO_REUSEPORT`)",
        events: EVENTS,
        load: load?,
    })
}

fn read_pid(file: &Path) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// Waits until `file` holds a pid other than `old` (and returns it).
fn new_pid(file: &Path, old: u32) -> Result<u32> {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        match read_pid(file) {
            Some(p) if p != old && alive(p) => return Ok(p),
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    bail!("{}: no new pid after the upgrade", file.display())
}

/// Waits until `port` accepts connections.
fn accepting(port: u16) -> Result<()> {
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > until {
            bail!("nothing accepts on port {port}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// `name`'s full path, from PATH.
fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn nginx(d: &Path, origin: SocketAddr) -> Result<Option<Outcome>> {
    if Command::new("nginx").arg("-v").output().is_err() {
        return Ok(None);
    }
    let port = free_port()?;
    let dd = d.display();
    let pid_file = d.join("nginx.pid");
    let conf = format!(
        "worker_processes 2;\npid {dd}/nginx.pid;\nerror_log {dd}/nginx.err;\n\
         events {{ worker_connections 4096; }}\nhttp {{\n  access_log off;\n  \
         upstream origin {{ server {origin}; }}\n  server {{\n    listen 127.0.0.1:{port} ssl;\n    \
         ssl_certificate {dd}/certs/{NAME}.pem;\n    ssl_certificate_key {dd}/certs/{NAME}.pem;\n    \
         ssl_protocols TLSv1.3;\n    location / {{ proxy_pass http://origin; }}\n  }}\n}}\n"
    );
    let file = d.join("nginx-restarts.conf");
    std::fs::write(&file, conf)?;
    // Daemonized, as nginx runs in production: each new master outlives the old one. By its
    // full path: the binary upgrade executes argv[0] again.
    let bin = which("nginx").context("nginx is not on PATH")?;
    let ok = Command::new(bin)
        .arg("-p")
        .arg(d)
        .arg("-c")
        .arg(&file)
        .status()?
        .success();
    if !ok {
        bail!("nginx did not start (see {dd}/nginx.err)");
    }
    accepting(port)?;
    let mut master = new_pid(&pid_file, 0)?;
    let load = under_load(format!("127.0.0.1:{port}").parse()?, |_| {
        kill(master, libc::SIGUSR2);
        let next = new_pid(&pid_file, master)?;
        // The new master's workers accept: the old master may stop gracefully.
        std::thread::sleep(Duration::from_millis(100));
        kill(master, libc::SIGQUIT);
        master = next;
        Ok(())
    });
    kill(master, libc::SIGQUIT);
    let v = crate::bench::tool_version("nginx", &["-v"]);
    Ok(Some(Outcome {
        server: format!("nginx {v}"),
        how: "binary upgrade (USR2, then QUIT to the old master)",
        events: EVENTS,
        load: load?,
    }))
}

fn haproxy(d: &Path, origin: SocketAddr) -> Result<Option<Outcome>> {
    if Command::new("haproxy").arg("-v").output().is_err() {
        return Ok(None);
    }
    let port = free_port()?;
    let dd = d.display();
    let pid_file = d.join("haproxy.pid");
    let sock = d.join("haproxy.sock");
    let conf = format!(
        "global\n    nbthread 2\n    maxconn 4096\n    stats socket {} mode 600 level admin expose-fd listeners\n\
         defaults\n    mode tcp\n    timeout client 30s\n    timeout server 30s\n    timeout connect 5s\n\
         frontend edge\n    bind 127.0.0.1:{port} ssl crt {dd}/certs/{NAME}.pem ssl-min-ver TLSv1.3\n    \
         default_backend origin\nbackend origin\n    server o {origin}\n",
        sock.display()
    );
    let file = d.join("haproxy-restarts.cfg");
    std::fs::write(&file, conf)?;
    let start = |extra: &[String]| -> Result<()> {
        let ok = Command::new("haproxy")
            .arg("-f")
            .arg(&file)
            .arg("-D")
            .arg("-p")
            .arg(&pid_file)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?
            .success();
        if !ok {
            bail!("haproxy did not start");
        }
        Ok(())
    };
    start(&[])?;
    accepting(port)?;
    let mut pid = new_pid(&pid_file, 0)?;
    let load = under_load(format!("127.0.0.1:{port}").parse()?, |_| {
        start(&[
            "-x".into(),
            sock.display().to_string(),
            "-sf".into(),
            pid.to_string(),
        ])?;
        pid = new_pid(&pid_file, pid)?;
        Ok(())
    });
    kill(pid, libc::SIGUSR1);
    let v = crate::bench::tool_version("haproxy", &["-v"]);
    Ok(Some(Outcome {
        server: format!("HAProxy {v}"),
        how: "reload with the sockets handed over (`-x` stats socket, `-sf`)",
        events: EVENTS,
        load: load?,
    }))
}

/// The leaf certificate (DER) served for `name`, if a handshake succeeds.
fn served(addr: SocketAddr, name: &str) -> Option<Vec<u8>> {
    let mut b = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).ok()?;
    b.set_verify(openssl::ssl::SslVerifyMode::NONE);
    let tcp = std::net::TcpStream::connect(addr).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let tls = b.build().connect(name, tcp).ok()?;
    tls.ssl().peer_certificate()?.to_der().ok()
}

/// One start-up race trial: the rename's delay after spawn, and how long after both the
/// listening and the rename the new certificate was served (`None`: not within 10 s).
struct Race {
    delay: Duration,
    served_after: Option<Duration>,
}

fn startup_race(bin: &Path, d: &Path, origin: SocketAddr) -> Result<(Duration, Vec<Race>)> {
    let names = d.join("race");
    let other = d.join("race-other");
    crate::bench_names::prepare(&names, RACE_NAMES)?;
    crate::bench_names::prepare(&other, 1)?;
    let name = "site000000.example.com";
    let file = names.join(format!("certs/{name}.pem"));
    let versions = [
        std::fs::read(&file)?,
        std::fs::read(other.join(format!("certs/{name}.pem")))?,
    ];
    let leaf =
        |pem: &[u8]| -> Result<Vec<u8>> { Ok(openssl::x509::X509::from_pem(pem)?.to_der()?) };
    let config = d.join("race.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 2\n\n[certificates]\nsources = [\"{}\"]\n\n\
             [[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n",
            names.join("certs").display()
        ),
    )?;
    let t = Instant::now();
    let (mut p, _) = spawn_edgetls(bin, &config)?;
    let startup = t.elapsed();
    kill(p.id(), libc::SIGTERM);
    let _ = p.wait();
    let mut races = Vec::new();
    for trial in 0..TRIALS {
        let (now, next) = (trial % 2, (trial + 1) % 2);
        std::fs::write(&file, &versions[now])?;
        // Staged as a dotfile: not a certificate of the directory until renamed.
        let staged = names.join("certs/.staged");
        std::fs::write(&staged, &versions[next])?;
        let delay = (startup + Duration::from_secs(2)).mul_f64(trial as f64 / (TRIALS - 1) as f64);
        let spawned = Instant::now();
        let (f, s) = (file.clone(), staged.clone());
        let renamer = std::thread::spawn(move || {
            std::thread::sleep(delay.saturating_sub(spawned.elapsed()));
            let _ = std::fs::rename(s, f);
            Instant::now()
        });
        let (mut p, addr) = spawn_edgetls(bin, &config)?;
        let listening = Instant::now();
        let renamed = renamer
            .join()
            .map_err(|_| anyhow::anyhow!("renamer panicked"))?;
        let want = leaf(&versions[next])?;
        let from = listening.max(renamed);
        let mut served_after = None;
        while from.elapsed() < Duration::from_secs(10) {
            if served(addr, name).as_deref() == Some(&want[..]) {
                served_after = Some(from.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        kill(p.id(), libc::SIGTERM);
        let _ = p.wait();
        eprintln!(
            "start-up race {}: renamed {delay:.2?} after spawn: {served_after:.2?}",
            trial + 1
        );
        races.push(Race {
            delay,
            served_after,
        });
    }
    Ok((startup, races))
}

pub(crate) fn run(root: &Path, report: &mut String) -> Result<()> {
    crate::bench::release_build(root, &["edgetls-proxy"])?;
    let bin = root.join("target/release/edgetls");
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    demo_files(&bin, d, 5)?;
    let origin = origin("127.0.0.1:0".parse()?)?;
    let migrate = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_migrate_req")
        .map_or("absent".into(), |s| s.trim().to_string());
    let mut outcomes = vec![edgetls_upgrade(&bin, d, origin)?];
    outcomes.extend(nginx(d, origin)?);
    outcomes.extend(haproxy(d, origin)?);
    outcomes.push(edgetls_restart(&bin, d, origin)?);
    writeln!(
        report,
        "## Restarts under load (`cargo xtask bench --suite restarts`)\n\n\
         {EVENTS} restarts per server, one a second, while 32 clients offer {RATE:.0} connections a \
         second (full TLS 1.3 handshake, `GET /`, the origin's answer); 2 workers or threads each, \
         metrics or stats socket on; `net.ipv4.tcp_migrate_req` = {migrate}.\n\n\
         | server | restarted by | restarts | connections completed | failed |\n|---|---|---:|---:|---:|"
    )?;
    for o in &outcomes {
        writeln!(
            report,
            "| {} | {} | {} | {} | **{}** |",
            o.server, o.how, o.events, o.load.handshakes, o.load.failed
        )?;
        eprintln!("{}: {}: {} failed", o.server, o.how, o.load.failed);
    }
    let (startup, races) = startup_race(&bin, d, origin)?;
    let worst = races
        .iter()
        .map(|r| r.served_after)
        .max_by(|a, b| match (a, b) {
            (None, _) => std::cmp::Ordering::Greater,
            (_, None) => std::cmp::Ordering::Less,
            (Some(a), Some(b)) => a.cmp(b),
        });
    writeln!(
        report,
        "\n{RACE_NAMES} certificates (start-up {startup:.1?}); one file renamed over at {TRIALS} \
         moments from spawn to 2 s after listening; served after max(listening, rename):\n\n\
         | renamed after spawn | new certificate served after |\n|---:|---:|"
    )?;
    for r in &races {
        let after = r
            .served_after
            .map_or("**not within 10 s**".to_string(), |a| {
                format!("{:.0} ms", a.as_secs_f64() * 1e3)
            });
        writeln!(report, "| {:.2} s | {after} |", r.delay.as_secs_f64())?;
    }
    if let Some(w) = worst {
        let w = w.map_or("not served within 10 s".into(), |w| {
            format!("{:.0} ms", w.as_secs_f64() * 1e3)
        });
        writeln!(report, "\nWorst of {TRIALS}: **{w}**.")?;
    }
    Ok(())
}
