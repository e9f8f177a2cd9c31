//! Certificate files written in place (truncated, then written in pieces) under load, with remote
//! keys configured: a bundle caught without its key is a broken file, never a remote-key
//! certificate, and a remote-key certificate caught half-written is broken too. Either way the
//! previous version keeps serving and no handshake fails; every bad state seen is reported.

mod common;

use common::{eventually, keyless_config, metric, metrics, pki, start};
use edgetls_keyserver::{Authz, ServerOptions};
use edgetls_testkit::{setup, site_cert, start as start_keyserver};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The served leaf for `name`, or why the handshake failed.
fn handshake(addr: SocketAddr, name: &str) -> Result<Vec<u8>, String> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
    b.set_verify(SslVerifyMode::NONE);
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let tls = b.build().connect(name, tcp).map_err(|e| e.to_string())?;
    tls.ssl()
        .peer_certificate()
        .and_then(|c| c.to_der().ok())
        .ok_or_else(|| "no certificate".to_string())
}

/// Writes `body` over `path` in place, as a slow writer does: truncated first, then `first`
/// bytes, then the rest, pausing `pause` after each step (the watcher settles after 100 ms, so
/// longer pauses let a reload see the empty and the partial file).
fn write_in_place(path: &Path, body: &[u8], first: usize, pause: Duration) {
    let mut f = std::fs::File::create(path).unwrap();
    std::thread::sleep(pause);
    f.write_all(&body[..first]).unwrap();
    f.flush().unwrap();
    std::thread::sleep(pause);
    f.write_all(&body[first..]).unwrap();
}

fn der(pem: &[u8]) -> Vec<u8> {
    openssl::x509::X509::from_pem(pem)
        .unwrap()
        .to_der()
        .unwrap()
}

#[test]
fn files_rewritten_in_place_under_load_never_fail_a_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let multicert = pki(dir.path());
    let other = tempfile::tempdir().unwrap();
    pki(other.path()); // the same names with other keys: a second version of each bundle
    let (kit, keys) = setup();
    let ks = start_keyserver(&kit, Authz::open(), ServerOptions::default());
    let remote = dir.path().join("remote");
    std::fs::create_dir(&remote).unwrap();
    let remote_file = remote.join("keyless.test.pem");
    let remote_versions: Vec<Vec<u8>> = (0..2)
        .map(|_| {
            site_cert(&kit, &keys.p256, &["keyless.test"])
                .to_pem()
                .unwrap()
        })
        .collect();
    std::fs::write(&remote_file, &remote_versions[0]).unwrap();
    let bundle_name = "site000002.demo.test";
    let bundle_file = dir.path().join(format!("certs/{bundle_name}.pem"));
    let bundle_versions = [
        std::fs::read(&bundle_file).unwrap(),
        std::fs::read(other.path().join(format!("certs/{bundle_name}.pem"))).unwrap(),
    ];
    let config = keyless_config(dir.path(), &multicert, &remote, &kit, ks.addr, 1);
    let p = start(&config);
    let addr = p.addr;
    let log = || p.stderr.lock().unwrap().clone();
    for name in [bundle_name, "keyless.test"] {
        handshake(addr, name).unwrap_or_else(|e| panic!("{name}: {e}\n{}", log()));
    }

    // Handshakes for both names, back to back, the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let load: Vec<_> = [bundle_name, "keyless.test"]
        .into_iter()
        .map(|name| {
            let (stop, done, failures) = (stop.clone(), done.clone(), failures.clone());
            std::thread::spawn(move || {
                while !stop.load(Relaxed) {
                    match handshake(addr, name) {
                        Ok(_) => {
                            done.fetch_add(1, Relaxed);
                        }
                        Err(e) => failures.lock().unwrap().push(format!("{name}: {e}")),
                    }
                }
            })
        })
        .collect();

    // 100 rewrites in place, the two files in turn, each switching version; pauses of 0 to
    // 180 ms between the steps, so that some reloads read the file empty or half-written.
    for i in 0..100 {
        let pause = Duration::from_millis(60 * (i % 4) as u64);
        let v = (i / 2 + 1) % 2;
        if i % 2 == 0 {
            let body = &bundle_versions[v];
            // The certificate first, then the key: the state the writer was caught in.
            let cert_end = String::from_utf8_lossy(body)
                .find("-----END CERTIFICATE-----")
                .unwrap()
                + 26;
            write_in_place(&bundle_file, body, cert_end, pause);
        } else {
            let body = &remote_versions[v];
            write_in_place(&remote_file, body, body.len() / 2, pause);
        }
    }
    // The last versions written, once reloaded, are served.
    let last = |versions: &[Vec<u8>], name: &str| {
        let want = der(&versions[(99 / 2 + 1) % 2]);
        eventually(Duration::from_secs(5), || {
            handshake(addr, name).is_ok_and(|d| d == want)
        })
    };
    assert!(last(&bundle_versions, bundle_name), "{}", log());
    assert!(last(&remote_versions, "keyless.test"), "{}", log());
    stop.store(true, Relaxed);
    for t in load {
        t.join().unwrap();
    }

    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} handshakes failed: {:?}\n{}",
        failures.len(),
        failures.len() + done.load(Relaxed),
        &failures[..failures.len().min(5)],
        log()
    );
    let text = metrics(&p);
    let failed_reloads = metric(&text, "edgetls_reloads_total{result=\"failed\"}").unwrap_or(0.0);
    println!(
        "{} handshakes, 0 failed; {failed_reloads} reloads read a broken file",
        done.load(Relaxed)
    );
    // The pauses let the watcher see broken states: they were reported, not taken.
    assert!(
        failed_reloads >= 10.0,
        "{failed_reloads} failed reloads\n{}",
        log()
    );
    assert!(
        log().contains("no private key in the certificate file"),
        "the keyless bundle was not reported: {}",
        log()
    );
    assert_eq!(
        metric(&text, "edgetls_certificate_problems"),
        Some(0.0),
        "{}",
        log()
    );
    // Nor did the proxy count a failure of its own (a remote key it does not have, say).
    let failed: f64 = text
        .lines()
        .filter(|l| l.starts_with("edgetls_handshakes_total{result=\"failed\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(failed, 0.0, "{text}");
}
