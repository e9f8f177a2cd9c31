//! OCSP test material: a CA, leaves with known serials, a real responder (`openssl ocsp
//! -index … -port …`) and the responses it gave, written as HAProxy names them
//! (`CERT.ocsp`, `CERT.issuer`).

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SerialNumber};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `openssl ocsp` responder; killed when dropped.
#[derive(Debug)]
pub struct Responder(Child);

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// A CA (`ca.pem`, `ca.key`), its leaves (bundles `NAME.pem`; serials 0x10…), and its index
/// for the responder: `revoked.example` is revoked.
pub fn pki(dir: &Path) {
    pki_with_responder(dir, None)
}

/// The DER of an Authority Information Access extension naming one OCSP responder.
fn aia_ocsp(url: &str) -> rcgen::CustomExtension {
    let tlv = |tag: u8, body: &[u8]| -> Vec<u8> {
        assert!(body.len() < 128, "short form lengths only");
        let mut v = vec![tag, body.len() as u8];
        v.extend_from_slice(body);
        v
    };
    // AccessDescription { id-ad-ocsp (1.3.6.1.5.5.7.48.1), uniformResourceIdentifier [6] }
    let oid = tlv(0x06, &[0x2b, 6, 1, 5, 5, 7, 48, 1]);
    let uri = tlv(0x86, url.as_bytes());
    let access = tlv(0x30, &[oid, uri].concat());
    rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], tlv(0x30, &access))
}

/// As [`pki`]; with `url`, every leaf names it as its OCSP responder (Authority Information
/// Access), as public CAs' certificates do.
pub fn pki_with_responder(dir: &Path, url: Option<&str>) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "ocsp test CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let k = KeyPair::generate().unwrap();
    let ca_pem = p.self_signed(&k).unwrap().pem();
    write(dir, "ca.pem", &ca_pem);
    write(dir, "ca.key", &k.serialize_pem());
    let ca = Issuer::new(p, k);
    let rsa_key = openssl::rsa::Rsa::generate(2048).unwrap();
    let rsa_pem = String::from_utf8(
        openssl::pkey::PKey::from_rsa(rsa_key)
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap(),
    )
    .unwrap();
    let mut index = String::new();
    for (name, serial, rsa) in [
        ("good", 0x10u64, false),
        ("rsa", 0x11, true),
        ("revoked", 0x12, false),
        ("forged", 0x13, false),
        ("chained", 0x14, false),
    ] {
        let host = format!("{name}.example");
        let mut p = CertificateParams::new(vec![host.clone()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, &host);
        p.serial_number = Some(SerialNumber::from(serial));
        if let Some(url) = url {
            p.custom_extensions.push(aia_ocsp(url));
        }
        let k = if rsa {
            KeyPair::from_pkcs8_pem_and_sign_algo(&rsa_pem, &rcgen::PKCS_RSA_SHA256).unwrap()
        } else {
            KeyPair::generate().unwrap()
        };
        let cert = p.signed_by(&k, &ca).unwrap().pem();
        // `chained` carries its issuer in the chain; the others have CERT.issuer beside them.
        let chain = if name == "chained" {
            ca_pem.as_str()
        } else {
            ""
        };
        write(
            dir,
            &format!("{name}.pem"),
            &format!("{cert}{chain}{}", k.serialize_pem()),
        );
        write(dir, &format!("{name}.crt"), &cert);
        if name != "chained" {
            write(dir, &format!("{name}.pem.issuer"), &ca_pem);
        }
        let state = if name == "revoked" {
            "R\t491231235959Z\t250101000000Z"
        } else {
            "V\t491231235959Z\t"
        };
        index.push_str(&format!("{state}\t{serial:X}\tunknown\t/CN={host}\n"));
    }
    write(dir, "index.txt", &index);
}

pub use crate::net::free_port;

/// Starts `openssl ocsp` as a responder for the CA on a free port.
fn responder(dir: &Path) -> (Responder, u16) {
    let port = free_port();
    (start_responder(dir, port, &["-ndays", "7"]), port)
}

/// Starts `openssl ocsp` for the CA of [`pki`] in `dir` on `port`, its responses valid as
/// `validity` says (`["-ndays", "7"]`, `["-nmin", "1"]`). It reads `index.txt` again when the
/// file changes (revoke a certificate by rewriting it).
pub fn start_responder(dir: &Path, port: u16, validity: &[&str]) -> Responder {
    let child = Command::new("openssl")
        .current_dir(dir)
        .args(["ocsp", "-index", "index.txt", "-port"])
        .arg(port.to_string())
        .args(["-rsigner", "ca.pem", "-rkey", "ca.key", "-CA", "ca.pem"])
        .args(validity)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the openssl CLI is installed");
    Responder(child)
}

/// Marks the leaf with `serial` revoked in the responder's `index.txt`.
pub fn revoke(dir: &Path, serial: u64) {
    let path = dir.join("index.txt");
    let index = std::fs::read_to_string(&path).unwrap();
    let key = format!("\t{serial:X}\t");
    let revoked: String = index
        .lines()
        .map(|l| {
            if l.contains(&key) && l.starts_with('V') {
                // V, expiry, (empty) revocation time, serial, file, subject.
                let rest = l.splitn(3, '\t').nth(2).unwrap_or("");
                format!("R\t491231235959Z\t250101000000Z{rest}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&path, revoked).unwrap();
}

/// Asks the responder about `cert` and writes the response to `out` (trying again while the
/// responder starts: a bare connection to see whether it listens would upset it).
fn fetch(dir: &Path, port: u16, cert: &str, out: &str) {
    let started = Instant::now();
    loop {
        let st = Command::new("openssl")
            .current_dir(dir)
            .args(["ocsp", "-issuer", "ca.pem", "-cert", cert, "-url"])
            .arg(format!("http://127.0.0.1:{port}"))
            .args(["-respout", out, "-noverify", "-timeout", "5"])
            .output()
            .unwrap();
        if st.status.success() && dir.join(out).exists() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A directory with `good.pem`, `rsa.pem` (RSA), `revoked.pem`, `forged.pem` (given another
/// certificate's response) and `chained.pem` (issuer in its chain, no `.issuer` file), each
/// with its `.ocsp` response from a real responder, valid 7 days; and `crt-list` naming them
/// (`good.example`, `rsa.example`, … ).
pub fn fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    pki(d);
    let (_responder, port) = responder(d);
    for name in ["good", "rsa", "revoked", "chained"] {
        fetch(d, port, &format!("{name}.crt"), &format!("{name}.pem.ocsp"));
    }
    // A response for another certificate.
    std::fs::copy(d.join("good.pem.ocsp"), d.join("forged.pem.ocsp")).unwrap();
    let list = d.join("crt-list");
    std::fs::write(
        &list,
        "good.pem\nrsa.pem\nrevoked.pem\nforged.pem\nchained.pem\n",
    )
    .unwrap();
    (dir, list)
}

/// From `openssl s_client -status` output: Some(the "Cert Status" word) when a response was
/// stapled, None when none was sent.
pub fn stapled_status(s_client_output: &str) -> Option<String> {
    if s_client_output.contains("OCSP response: no response sent")
        || !s_client_output.contains("OCSP Response Status: successful")
    {
        return None;
    }
    s_client_output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Cert Status: "))
        .map(str::to_string)
}
