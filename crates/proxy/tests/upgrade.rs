//! `edgetls upgrade` under load: the new process takes the listening sockets (TLS and metrics)
//! of the old one, which drains and exits; not one connection fails over repeated upgrades. A
//! new process that cannot start leaves the old one serving, and the command says so.

mod common;

use common::{Proxy, origin, pki, start_with_env, text};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One connection: a full handshake, a request, the origin's answer.
fn request(addr: SocketAddr) -> Result<(), String> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
    b.set_verify(SslVerifyMode::NONE);
    let tcp = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut tls = b
        .build()
        .connect("site000001.demo.test", tcp)
        .map_err(|e| format!("handshake: {e}"))?;
    tls.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    if answer.ends_with(b"ok\n") {
        Ok(())
    } else {
        Err(format!("answer: {:?}", String::from_utf8_lossy(&answer)))
    }
}

/// Runs `edgetls upgrade`; its status and what it printed (the new process writes to the same
/// file afterwards, so it is not read to its end).
fn upgrade(config: &Path, out: &Path, notify: &Path) -> (Option<i32>, String) {
    let file = std::fs::File::create(out).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_edgetls"))
        .env("NOTIFY_SOCKET", notify)
        .args(["upgrade", "--config"])
        .arg(config)
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .status()
        .unwrap();
    (status.code(), std::fs::read_to_string(out).unwrap())
}

fn alive(pid: u32) -> bool {
    // A zombie (our own child, exited and not yet waited for) is not alive.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

fn eventually_gone(pid: u32) -> bool {
    let until = Instant::now() + Duration::from_secs(40);
    while Instant::now() < until {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Stops the last process of the chain when the test ends, however it ends.
struct Last(Arc<Mutex<u32>>);

impl Drop for Last {
    fn drop(&mut self) {
        let pid = *self.0.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: kill(2) with a pid and a signal number; no memory is involved.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
    }
}

#[test]
fn upgrades_under_load_lose_no_connection() {
    let dir = tempfile::tempdir().unwrap();
    let multicert = pki(dir.path());
    let (ok_origin, _) = origin("ok\n");
    let config = dir.path().join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 2\nmetrics = \"127.0.0.1:0\"\n\n\
             [certificates]\nsources = [\"{}\"]\n\n[[routes]]\nfqdn = \"*\"\norigin = \"{ok_origin}\"\n",
            multicert.display()
        ),
    )
    .unwrap();
    // Started as systemd's `Type=notify` would: every process says who it is and when it is ready.
    let notify = dir.path().join("notify.sock");
    let systemd = std::os::unix::net::UnixDatagram::bind(&notify).unwrap();
    systemd
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let said = || {
        let mut buf = [0u8; 256];
        let n = systemd.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let first: Proxy = start_with_env(&config, &[("NOTIFY_SOCKET", notify.to_str().unwrap())]);
    assert_eq!(said(), format!("MAINPID={}\nREADY=1", first.child.id()));
    let addr = first.addr;
    let metrics_addr = first.metrics.unwrap();
    let last = Last(Arc::new(Mutex::new(first.child.id())));

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (stop, done, failures) = (stop.clone(), done.clone(), failures.clone());
            std::thread::spawn(move || {
                while !stop.load(Relaxed) {
                    match request(addr) {
                        Ok(()) => {
                            done.fetch_add(1, Relaxed);
                        }
                        Err(e) => failures.lock().unwrap().push(e),
                    }
                }
            })
        })
        .collect();

    let out = dir.path().join("upgrade.out");
    let mut old = first.child.id();
    for round in 0..8 {
        let before = done.load(Relaxed);
        let (code, printed) = upgrade(&config, &out, &notify);
        assert_eq!(code, Some(0), "round {round}: {printed}");
        let new: u32 = printed
            .lines()
            .find_map(|l| l.strip_prefix("edgetls upgrade: pid "))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("round {round}: no new pid in {printed:?}"));
        *last.0.lock().unwrap() = new;
        assert_ne!(new, old);
        // systemd follows the new process; the old one, which handed over, says nothing more.
        assert_eq!(said(), format!("MAINPID={new}\nREADY=1"), "round {round}");
        assert!(
            eventually_gone(old),
            "round {round}: pid {old} did not exit"
        );
        // Traffic went on through the new process.
        let until = Instant::now() + Duration::from_secs(10);
        while done.load(Relaxed) < before + 20 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        old = new;
    }

    // The metrics endpoint was handed over too: same address, the new process's counters.
    let m = Command::new("curl")
        .args(["-s", "--max-time", "5"])
        .arg(format!("http://{metrics_addr}/metrics"))
        .output()
        .unwrap();
    assert!(
        text(&m.stdout).contains("edgetls_connections_open"),
        "{}",
        text(&m.stdout)
    );

    // A new process that cannot start: the old one serves on, and the command says why.
    let broken = dir.path().join("broken.toml");
    let control = dir.path().join("proxy.sock");
    // Only its owner may take the sockets or stop the proxy.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&control).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    std::fs::write(
        &broken,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace(
                &multicert.display().to_string(),
                "/nonexistent/ssl_multicert.config",
            )
            .replace(
                "[server]\n",
                &format!("[server]\ncontrol = \"{}\"\n", control.display()),
            ),
    )
    .unwrap();
    let (code, printed) = upgrade(&broken, &out, &notify);
    assert_eq!(code, Some(1), "{printed}");
    assert!(
        printed.contains("/nonexistent") && printed.contains(&format!("pid {old} serves on")),
        "{printed}"
    );
    assert!(alive(old));
    systemd.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 256];
    assert!(
        systemd.recv(&mut buf).is_err(),
        "nothing else was said to systemd"
    );

    stop.store(true, Relaxed);
    for t in load {
        t.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    println!(
        "{} connections across 8 upgrades, {} failed",
        done.load(Relaxed),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} connections failed: {:?}",
        failures.len(),
        failures.len() + done.load(Relaxed),
        &failures[..failures.len().min(5)]
    );
    drop(first);
}
