//! Signs through a key server and checks the signature with the public key only: what a TLS
//! terminator does for every full handshake with a key it does not hold.
//!
//! ```text
//! cargo run -p edgetls-keyless-client --example sign -- \
//!     127.0.0.1:2407 keyserver.example edge.pem edge.key keyserver-ca.pem site.pem
//! ```
//!
//! `site.pem` is the certificate (or public key) whose private key the server holds; the key is
//! named by the SKI of its public key, as every keyless client names it.

use edgetls_keyless_client::{ClientConfig, KeylessClient, ServerSpec};
use edgetls_keyless_proto::{HashAlgorithm, SignScheme, Ski};
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};
use openssl::x509::X509;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    run().await.map_or_else(
        |e| {
            eprintln!("sign: {e}");
            std::process::ExitCode::FAILURE
        },
        |()| std::process::ExitCode::SUCCESS,
    )
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, name, cert, key, ca, public] = args.as_slice() else {
        return Err("usage: sign ADDR SERVER_NAME CLIENT_CERT CLIENT_KEY SERVER_CA PUBLIC".into());
    };
    let public = read_public(public)?;
    let ski = Ski::from_spki_der(&public.public_key_to_der()?)?;

    let servers = vec![ServerSpec::new(addr.as_str(), name.as_str())];
    let client = KeylessClient::new(ClientConfig::new(servers, cert, key, ca))?;

    let message = b"the handshake transcript";
    let digest = openssl::sha::sha256(message);
    let scheme = match public.id() {
        Id::RSA => SignScheme::RsaPss(HashAlgorithm::Sha256),
        Id::EC => SignScheme::Ecdsa(HashAlgorithm::Sha256),
        other => {
            return Err(format!("this example signs with RSA or ECDSA keys, not {other:?}").into());
        }
    };
    let signature = client.sign(ski, scheme, &digest).await?;

    let mut verifier = Verifier::new(MessageDigest::sha256(), &public)?;
    if public.id() == Id::RSA {
        verifier.set_rsa_padding(Padding::PKCS1_PSS)?;
        verifier.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
    }
    if !verifier.verify_oneshot(&signature, message)? {
        return Err("the key server's signature does not verify".into());
    }
    println!(
        "{scheme:?} signature of {} bytes from {addr} for key {ski}: verified",
        signature.len()
    );
    Ok(())
}

/// The public key of a PEM certificate or PEM public key.
fn read_public(path: &str) -> Result<PKey<Public>, Box<dyn std::error::Error>> {
    let pem = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    match X509::from_pem(&pem) {
        Ok(cert) => Ok(cert.public_key()?),
        Err(_) => Ok(PKey::public_key_from_pem(&pem).map_err(|e| format!("{path}: {e}"))?),
    }
}
