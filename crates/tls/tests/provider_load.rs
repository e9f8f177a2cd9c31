//! The remote-key provider never loads another provider behind the process's back: run in child
//! processes of this test binary, each with an OpenSSL configuration of its own (`OPENSSL_CONF`
//! is read once, at OpenSSL's first use).
//!
//! - Only `base` configured (no provider with RSA or EC at all): making a remote key fails with
//!   a clear error, and the `default` provider is still not loaded afterwards. (Before step 15
//!   the provider loaded `default` itself, which is what breaks a FIPS-only process.)
//! - `default` configured explicitly, as an operator's file does: remote keys sign, and what
//!   they sign verifies with the certificate.
//!
//! OpenSSL only (AWS-LC has no providers).

#![cfg(not(awslc))]

use edgetls_tls::remote_key::{self, Done, SignRequest, SignScheme, Signer};
use openssl::pkey::{PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use std::process::Command;
use std::sync::Arc;

const CHILD: &str = "EDGETLS_PROVIDER_CHILD";
const CERT: &str = "EDGETLS_PROVIDER_CERT";
const KEY: &str = "EDGETLS_PROVIDER_KEY";

unsafe extern "C" {
    /// Whether the named provider is loaded in the library context (NULL: the default one).
    fn OSSL_PROVIDER_available(
        libctx: *mut openssl_sys::OSSL_LIB_CTX,
        name: *const std::ffi::c_char,
    ) -> std::ffi::c_int;
}

fn default_loaded() -> bool {
    // SAFETY: a query on the default library context with a static name.
    unsafe { OSSL_PROVIDER_available(std::ptr::null_mut(), c"default".as_ptr()) == 1 }
}

/// Signs as a key server would, with the key in this process.
#[derive(Debug)]
struct Local(PKey<Private>);

impl Signer for Local {
    fn start(&self, request: SignRequest, done: Done) {
        let SignScheme::Ecdsa(hash) = request.scheme else {
            return done(Err(edgetls_tls::TlsError::UnsupportedScheme(format!(
                "{:?}",
                request.scheme
            ))));
        };
        let sign = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
            let mut ctx = PkeyCtx::new(&self.0)?;
            ctx.sign_init()?;
            ctx.set_signature_md(hash.md().expect("a digest"))?;
            let mut sig = Vec::new();
            ctx.sign_to_vec(&request.digest, &mut sig)?;
            Ok(sig)
        };
        done(sign().map_err(edgetls_tls::TlsError::from));
    }
}

/// A signer for a key that cannot be made.
#[derive(Debug)]
struct Never;

impl Signer for Never {
    fn start(&self, _request: SignRequest, done: Done) {
        done(Err(edgetls_tls::TlsError::Call(
            "a signer that is never asked",
        )));
    }
}

/// The child's scenario: prints one line the parent checks.
fn child(scenario: &str) {
    let read = |var| std::fs::read(std::env::var(var).unwrap()).unwrap();
    let cert = openssl::x509::X509::from_pem(&read(CERT)).unwrap();
    match scenario {
        "only-base" => {
            // No provider here can decode the key, so the signer never holds one: it is never
            // asked, making the key must fail first.
            let made = remote_key::private_key(&cert, Arc::new(Never)).map_err(|e| e.to_string());
            println!(
                "made={} default_loaded={} error={}",
                made.is_ok(),
                default_loaded(),
                made.err().unwrap_or_default().replace('\n', " ")
            );
        }
        "explicit-default" => {
            let key = PKey::private_key_from_pem(&read(KEY)).unwrap();
            let remote = remote_key::private_key(&cert, Arc::new(Local(key))).unwrap();
            let md = openssl::hash::MessageDigest::sha256();
            let mut signer = openssl::sign::Signer::new(md, &remote).unwrap();
            let sig = signer.sign_oneshot_to_vec(b"transcript").unwrap();
            let public = cert.public_key().unwrap();
            let mut verifier = openssl::sign::Verifier::new(md, &public).unwrap();
            println!(
                "verified={} default_loaded={}",
                verifier.verify_oneshot(&sig, b"transcript").unwrap(),
                default_loaded()
            );
        }
        other => panic!("unknown scenario {other}"),
    }
}

/// Runs `scenario` in a child whose OpenSSL configuration activates `providers`.
fn run(scenario: &str, providers: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = edgetls_testkit::certs::self_signed("provider.test");
    std::fs::write(dir.path().join("c.pem"), cert.to_pem().unwrap()).unwrap();
    std::fs::write(
        dir.path().join("k.pem"),
        key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    let mut conf =
        String::from("openssl_conf = init\n[init]\nproviders = providers\n[providers]\n");
    for p in providers {
        conf.push_str(&format!("{p} = {p}_section\n"));
    }
    for p in providers {
        conf.push_str(&format!("[{p}_section]\nactivate = 1\n"));
    }
    std::fs::write(dir.path().join("openssl.cnf"), conf).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD, scenario)
        .env(CERT, dir.path().join("c.pem"))
        .env(KEY, dir.path().join("k.pem"))
        .env("OPENSSL_CONF", dir.path().join("openssl.cnf"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{scenario}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| {
            l.find("made=")
                .or_else(|| l.find("verified="))
                .map(|at| l[at..].to_string())
        })
        .unwrap_or_else(|| panic!("{scenario}: no result in {stdout}"))
}

#[test]
fn child_entry() {
    if let Ok(scenario) = std::env::var(CHILD) {
        child(&scenario);
    }
}

#[test]
fn the_provider_never_loads_default_itself() {
    let line = run("only-base", &["base"]);
    assert!(
        line.starts_with("made=false default_loaded=false error="),
        "{line}"
    );
    assert!(
        line.contains("no provider loaded in this process"),
        "{line}"
    );
}

#[test]
fn remote_keys_sign_with_the_providers_an_operator_configured() {
    let line = run("explicit-default", &["default", "base"]);
    assert_eq!(line, "verified=true default_loaded=true");
}
