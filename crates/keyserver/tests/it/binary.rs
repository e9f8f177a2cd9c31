//! The `edgetls-keyserver` binary: flags, config file, metrics endpoint, errors.

use crate::common::{connect, setup};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

fn keyserver() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edgetls-keyserver"))
}

#[test]
fn serves_with_flags_and_config_file_and_exposes_metrics() {
    let (pki, _) = setup();
    let config = pki.path("keyserver.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nkeys = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nmetrics = \"127.0.0.1:{}\"\ndelay = \"1ms\"\n",
            pki.path("keys").display(),
            pki.path("server.pem").display(),
            pki.path("server.key").display(),
            edgetls_testkit::net::free_port()
        ),
    )
    .unwrap();
    // client-ca from a flag, the rest from the file.
    let mut child = keyserver()
        .args([
            "--config",
            config.to_str().unwrap(),
            "--client-ca",
            pki.path("ca.pem").to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("edgetls-keyserver: 4 keys from"), "{line}");
    let addr: std::net::SocketAddr = line.rsplit(' ').next().unwrap().trim().parse().unwrap();
    assert!(connect(&pki, addr, Some("edge-1")).is_ok());
    let metrics_addr = std::fs::read_to_string(&config)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("metrics"))
        .unwrap()
        .split('"')
        .nth(1)
        .unwrap()
        .to_string();
    let mut http = std::net::TcpStream::connect(metrics_addr).unwrap();
    http.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    http.read_to_string(&mut body).unwrap();
    assert!(
        body.starts_with("HTTP/1.1 200 OK")
            && body.contains("keyless_requests_total{opcode=\"ping\"} 1"),
        "{body}"
    );
    // SIGTERM: graceful shutdown, exit 0.
    let (status, err) = stop(child, "-TERM");
    assert!(status.success());
    assert!(
        err.contains("skipped") && err.contains("weak.key") && err.contains("garbage.key"),
        "{err}"
    );
    assert!(err.contains("shutting down"), "{err}");
}

#[test]
fn missing_settings_and_bad_files_are_clear_errors() {
    let (pki, _) = setup();
    let out = keyserver()
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--keys DIR or --pkcs11 URI is required")
    );
    let out = keyserver()
        .args([
            "--keys",
            pki.path("keys").to_str().unwrap(),
            "--cert",
            "/nonexistent.pem",
            "--key",
            "x",
            "--client-ca",
            "y",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.pem"));
    let bad = pki.path("bad.toml");
    std::fs::write(&bad, "listen = \"127.0.0.1:0\"\nunknown_setting = 1\n").unwrap();
    let out = keyserver()
        .args(["--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:2") && err.contains("unknown_setting"),
        "{err}"
    );
}

#[test]
fn running_out_of_file_descriptors_does_not_spin() {
    let (pki, _) = setup();
    let bin = env!("CARGO_BIN_EXE_edgetls-keyserver");
    let script = format!(
        "ulimit -n 40; exec {bin} --listen 127.0.0.1:0 --keys {} --cert {} --key {} --client-ca {}",
        pki.path("keys").display(),
        pki.path("server.pem").display(),
        pki.path("server.key").display(),
        pki.path("ca.pem").display()
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.rsplit(' ').next().unwrap().trim().to_string();
    // Hold more connections open than the server has descriptors for.
    let held: Vec<_> = (0..60)
        .filter_map(|_| std::net::TcpStream::connect(&addr).ok())
        .collect();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (_, err) = stop(child, "-KILL");
    drop(held);
    let failures = err.lines().filter(|l| l.contains("accept failed")).count();
    assert!(failures > 0, "the descriptor limit was never hit: {err}");
    // Pausing 50 ms after each failure: about 20 a second. A tight retry loop logs thousands.
    assert!(
        failures < 200,
        "{failures} accept failures in about a second: the accept loop spins"
    );
}

/// Sends `signal` to the child, waits for it, and returns its exit status and stderr.
fn stop(mut child: std::process::Child, signal: &str) -> (std::process::ExitStatus, String) {
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status, err)
}
