//! Keys in a SoftHSM2 token (`--pkcs11 URI`): generated in the token and imported, every
//! opcode verified with the public half read back from the token, found by SKI, digest and
//! certificate name; bad URIs and PINs; a token pulled out under load and put back.

use crate::common::{Pki, connect, setup, site_cert, ski};
use crate::ops::every_sign_opcode_verifies;
use edgetls_keyless_proto::{Digest, ErrorCode, Opcode, Operation};
use edgetls_testkit::softhsm::SoftHsm;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Padding;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A key server on the token, its address, and what it has written to stderr so far.
struct Served {
    child: Child,
    addr: SocketAddr,
    first_line: String,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Operations on the key server's workers (SoftHSM's default), and on threads of the token's
/// own (what a hardware slot gets).
const MODES: [&[&str]; 2] = [&[], &["--pkcs11-threads", "2"]];

/// The key server on loopback, serving the token `uri` names.
fn keyserver(pki: &Pki, hsm: &SoftHsm, uri: &str) -> Command {
    let mut cmd = hsm.command(env!("CARGO_BIN_EXE_edgetls-keyserver"));
    cmd.args(["--listen", "127.0.0.1:0", "--pkcs11", uri])
        .args(pki.keyserver_tls_args());
    cmd
}

fn serve(pki: &Pki, hsm: &SoftHsm, uri: &str, extra: &[&str]) -> Served {
    let mut cmd = keyserver(pki, hsm, uri);
    cmd.args(extra);
    spawn(cmd)
}

/// Starts `cmd` (the key server) and waits for its first line.
fn spawn(mut cmd: Command) -> Served {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let (e, err) = (Arc::clone(&stderr), child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            e.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let addr = first_line
        .rsplit(' ')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{first_line:?}; stderr: {}", stderr.lock().unwrap()));
    Served {
        child,
        addr,
        first_line,
        stderr,
    }
}

#[test]
fn every_opcode_with_keys_generated_in_the_token_verifies_with_the_public_half() {
    let (pki, _) = setup();
    let hsm = SoftHsm::new("edge");
    let rsa = hsm.generate("rsa:2048", "rsa", 1);
    let p256 = hsm.generate("EC:prime256v1", "p256", 2);
    // P-384 imported (opensc 0.23's pkcs11-tool cannot read a P-384 public key back).
    let p384 = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::SECP384R1).unwrap()).unwrap(),
    )
    .unwrap();
    hsm.import(&p384, "p384", 3);
    let p384 = PKey::public_key_from_der(&p384.public_key_to_der().unwrap()).unwrap();
    // Imported, then only its certificate object left beside it: found by the certificate's
    // public key, and by its name.
    let named = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    hsm.import(&named, "named", 4);
    hsm.write_cert(&site_cert(&pki, &named, &["hsm.example"]), "named", 4);
    hsm.delete("pubkey", 4);
    // Neither public key nor certificate: skipped, and said so.
    let orphan = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    hsm.import(&orphan, "orphan", 5);
    hsm.delete("pubkey", 5);

    for extra in MODES {
        let s = serve(&pki, &hsm, &hsm.uri(), extra);
        assert!(
            s.first_line
                .starts_with("edgetls-keyserver: 4 keys from pkcs11:token=edge?")
                && s.first_line.contains("pin-value=***"),
            "{}",
            s.first_line
        );
        let mut c = connect(&pki, s.addr, Some("edge-1")).unwrap();
        let mut id = 1;
        let mut call = |op: Operation| {
            id += 1;
            c.call(id, op)
        };
        every_sign_opcode_verifies(&mut call, &rsa, &p256, &p384);

        // RSA decryption in the token: raw (0x08, and gokeyless's 0x01) gives c^d mod n.
        let mut block = vec![0u8; 256];
        block[1..]
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = i as u8);
        let mut ct = vec![0; 256];
        rsa.rsa()
            .unwrap()
            .public_encrypt(&block, &mut ct, Padding::NONE)
            .unwrap();
        for op in [Opcode::RSA_DECRYPT_RAW, Opcode::RSA_DECRYPT] {
            let r = call(Operation::request(op, ski(&rsa), ct.clone()));
            assert_eq!(r.payload, block, "{op:?}: {:?}", r.error_code());
        }
        // By the legacy digest of the modulus.
        let by_digest = call(Operation {
            digest: Some(Digest::of_rsa_modulus(&rsa.rsa().unwrap().n().to_vec())),
            ..Operation::request(Opcode::RSA_DECRYPT_RAW, ski(&rsa), ct)
        });
        assert_eq!(by_digest.payload, block);

        // The key with only a certificate object: by SKI, and by SNI alone.
        let digest = openssl::sha::sha256(b"transcript").to_vec();
        let by_sni = Operation {
            ski: None,
            sni: Some("hsm.example".into()),
            ..Operation::request(Opcode::ECDSA_SIGN_SHA256, ski(&named), digest.clone())
        };
        for op in [
            Operation::request(Opcode::ECDSA_SIGN_SHA256, ski(&named), digest.clone()),
            by_sni,
        ] {
            let r = call(op);
            let sig = EcdsaSig::from_der(&r.payload).expect("a DER ECDSA signature");
            assert!(sig.verify(&digest, &named.ec_key().unwrap()).unwrap());
        }
        // A key the token does not serve, and an operation the key cannot do.
        let r = call(Operation::request(
            Opcode::ECDSA_SIGN_SHA256,
            ski(&orphan),
            digest.clone(),
        ));
        assert_eq!(r.error_code(), Some(ErrorCode::KEY_NOT_FOUND));
        let r = call(Operation::request(
            Opcode::RSA_SIGN_SHA256,
            ski(&p256),
            digest,
        ));
        assert_eq!(r.error_code(), Some(ErrorCode::CRYPTO));
        let err = s.stderr.lock().unwrap().clone();
        assert!(
            err.contains("skipped pkcs11:token=edge") && err.contains("object=orphan;id=%05"),
            "{err}"
        );
    }
}

#[test]
fn bad_uris_pins_and_tokens_are_clear_errors_naming_the_uri() {
    let (pki, _) = setup();
    let hsm = SoftHsm::new("edge");
    hsm.generate("EC:prime256v1", "p256", 1);
    let module = edgetls_testkit::softhsm::MODULE;
    let pin_file = pki.path("pin");
    std::fs::write(&pin_file, "1234\n").unwrap();
    // A PIN from a file works.
    let good = format!(
        "pkcs11:token=edge;object=p256?module-path={module}&pin-source={}",
        pin_file.display()
    );
    // Given in the config file (a list, as `--pkcs11` is repeatable).
    let config = pki.path("keyserver.toml");
    let toml_str = |p: &str| format!("{p:?}");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\npkcs11 = [{}]\ncert = {}\nkey = {}\nclient_ca = {}\n",
            toml_str(&good),
            toml_str(pki.path("server.pem").to_str().unwrap()),
            toml_str(pki.path("server.key").to_str().unwrap()),
            toml_str(pki.path("ca.pem").to_str().unwrap()),
        ),
    )
    .unwrap();
    let mut cmd = hsm.command(env!("CARGO_BIN_EXE_edgetls-keyserver"));
    cmd.arg("--config").arg(&config);
    let s = spawn(cmd);
    assert!(s.first_line.contains("1 keys"), "{}", s.first_line);
    drop(s);
    for (uri, says) in [
        (
            format!("pkcs11:token=edge?module-path={module}&pin-value=9999"),
            "C_Login",
        ),
        (
            format!("pkcs11:token=elsewhere?module-path={module}&pin-value=1234"),
            "no token matches pkcs11:token=elsewhere",
        ),
        (
            "pkcs11:token=edge?module-path=/nonexistent/libp11.so&pin-value=1234".into(),
            "/nonexistent/libp11.so",
        ),
        (
            format!("pkcs11:token=edge;objekt=x?module-path={module}"),
            "unknown path attribute \"objekt\"",
        ),
        (
            format!("pkcs11:token=edge;object=none?module-path={module}&pin-value=1234"),
            "no usable key in pkcs11:token=edge;object=none",
        ),
    ] {
        let out = keyserver(&pki, &hsm, &uri).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{uri}: {err}");
        assert!(err.contains(says), "{uri}: {err}");
        assert!(!err.contains("9999"), "the PIN is not shown: {err}");
    }
}

/// Outcome of one request under load: answered (ok or with which error), or not at all.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Signed,
    Failed(ErrorCode),
    NoAnswer,
}

#[test]
fn a_token_pulled_out_under_load_fails_fast_and_comes_back_without_a_restart() {
    for extra in MODES {
        pull_out(extra);
    }
}

fn pull_out(extra: &[&str]) {
    let (pki, _) = setup();
    let hsm = SoftHsm::new("edge");
    let p256 = hsm.generate("EC:prime256v1", "p256", 1);
    let s = serve(&pki, &hsm, &hsm.uri(), extra);
    let deadline = Duration::from_secs(2);
    let log: Arc<Mutex<Vec<(Instant, Duration, Outcome)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (log, stop, key) = (Arc::clone(&log), Arc::clone(&stop), ski(&p256));
            let mut c = connect(&pki, s.addr, Some("edge-1")).unwrap();
            c.tls.get_ref().set_read_timeout(Some(deadline)).unwrap();
            std::thread::spawn(move || {
                let mut id = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    id += 1;
                    let t = Instant::now();
                    c.send(&edgetls_keyless_proto::Packet::new(
                        id,
                        Operation::request(Opcode::ECDSA_SIGN_SHA256, key, vec![9; 32]),
                    ));
                    let outcome = match c.recv() {
                        Some(p) if p.op.opcode == Opcode::RESPONSE => Outcome::Signed,
                        Some(p) => Outcome::Failed(p.op.error_code().unwrap_or(ErrorCode(0))),
                        None => Outcome::NoAnswer,
                    };
                    log.lock().unwrap().push((t, t.elapsed(), outcome));
                    if outcome == Outcome::NoAnswer {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let token = hsm.token_dir();
    let away = hsm.dir.path().join("away");
    let pulled = Instant::now();
    std::fs::rename(&token, &away).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    std::fs::rename(&away, &token).unwrap();
    let back = Instant::now();
    // Recovered: a signature again, without a restart (bounded wait; the figure itself is
    // measured by `cargo xtask bench --suite keyless`).
    let recovered = loop {
        let signed_since = log
            .lock()
            .unwrap()
            .iter()
            .find(|(t, _, o)| *t > back && *o == Outcome::Signed)
            .map(|(t, d, _)| *t + *d);
        if let Some(at) = signed_since {
            break at.duration_since(back);
        }
        assert!(back.elapsed() < Duration::from_secs(20), "no recovery");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    let log = log.lock().unwrap();
    let err = s.stderr.lock().unwrap().clone();
    // Answered before the token was pulled (requests in flight then may fail).
    let before = log.iter().filter(|(t, d, _)| *t + *d < pulled);
    let unsigned: Vec<_> = before.clone().filter(|e| e.2 != Outcome::Signed).collect();
    assert!(
        before.clone().count() > 10 && unsigned.is_empty(),
        "{unsigned:?}\n{}",
        s.stderr.lock().unwrap()
    );
    let failed: Vec<_> = log
        .iter()
        .filter(|(t, _, o)| *t > pulled && *t < back && *o != Outcome::Signed)
        .collect();
    assert!(!failed.is_empty(), "requests while the token was out");
    assert!(
        failed
            .iter()
            .all(|e| e.2 == Outcome::Failed(ErrorCode::INTERNAL)),
        "answered with the internal error: {failed:?}"
    );
    let slowest = log.iter().map(|e| e.1).max().unwrap();
    assert!(
        slowest < deadline,
        "every request answered within its deadline: {slowest:?}"
    );
    let after = log
        .iter()
        .filter(|(t, _, _)| *t > back + recovered + Duration::from_millis(10));
    assert!(after.clone().count() > 10 && after.clone().all(|e| e.2 == Outcome::Signed));
    assert!(
        err.contains("token down") && err.contains("token back"),
        "{err}"
    );
    eprintln!(
        "{extra:?}: pulled out for 2 s: {} requests failed with error 8, slowest answer {slowest:?}, signing again {recovered:?} after the token was back",
        failed.len()
    );
}
