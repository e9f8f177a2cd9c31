//! The demo's throwaway PKI: many names for the certificate store, a wildcard, a name with an
//! RSA and an ECDSA chain, a default, a name whose key lives only on the key server, the key
//! server's and the proxy's mutual-TLS certificates, a client certificate, ticket keys and the
//! per-name policy.

use crate::error::CliError;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

type Res<T> = Result<T, CliError>;

/// The name whose private key is only on the demo key server.
pub(crate) const KEYLESS_NAME: &str = "keyless.demo.test";
/// The key server's certificate name (the proxy checks it).
pub(crate) const KEYSERVER_NAME: &str = "keyserver.demo.test";

fn write(path: PathBuf, text: impl AsRef<[u8]>) -> Res<()> {
    std::fs::write(&path, text).map_err(CliError::io(path))
}

fn mkdir(path: &Path) -> Res<()> {
    std::fs::create_dir_all(path).map_err(CliError::io(path))
}

/// Writes every file of the demo under `dir`; returns the `ssl_multicert.config` path.
///
/// - `ca.pem`: the root every certificate here chains to (give it to curl / s_client);
/// - `ssl_multicert.config`, `certs/`: `names` ECDSA names `siteNNNNNN.demo.test` (and
///   `www.` of each), `*.wild.demo.test`, `dual.demo.test` (RSA and ECDSA) and the default;
/// - `keyless/keyless.demo.test.pem`: a certificate alone; its key is in `keyserver/keys/`;
/// - `keyserver/server.pem|key`, `edge.pem|key`: the key server's and the proxy's mTLS pair;
/// - `client.pem|key`: a client certificate for the name that requires one;
/// - `tickets.keys` (HAProxy format, 3 keys) and `policy.toml`.
pub(crate) fn generate(dir: &Path, names: usize) -> Res<PathBuf> {
    let certs = dir.join("certs");
    mkdir(&certs)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "edgetls demo root");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate()?;
    write(dir.join("ca.pem"), params.self_signed(&ca_key)?.pem())?;
    let ca = Issuer::new(params, ca_key);
    let rsa_der = PKey::from_rsa(Rsa::generate(2048)?)?.private_key_to_pem_pkcs8()?;
    let rsa_pem = String::from_utf8_lossy(&rsa_der).into_owned();
    let rsa = KeyPair::from_pkcs8_pem_and_sign_algo(&rsa_pem, &rcgen::PKCS_RSA_SHA256)?;
    // A certificate for `names` (the first is the common name) and its key's PEM.
    let issue = |names: &[String], key: Option<&KeyPair>| -> Res<(String, String)> {
        let mut p = CertificateParams::new(names.to_vec())?;
        p.distinguished_name
            .push(DnType::CommonName, names[0].clone());
        Ok(match key {
            Some(k) => (p.signed_by(k, &ca)?.pem(), rsa_pem.clone()),
            None => {
                let k = KeyPair::generate()?;
                (p.signed_by(&k, &ca)?.pem(), k.serialize_pem())
            }
        })
    };
    let bundle = |file: &str, names: &[String], key: Option<&KeyPair>| -> Res<()> {
        let (cert, key) = issue(names, key)?;
        write(certs.join(file), format!("{cert}{key}"))
    };
    let mut config = String::from("# edgetls demo: generated\n");
    for i in 0..names {
        let name = format!("site{i:06}.demo.test");
        bundle(
            &format!("{name}.pem"),
            &[name.clone(), format!("www.{name}")],
            None,
        )?;
        let _ = writeln!(config, "ssl_cert_name=certs/{name}.pem");
    }
    bundle("wild.demo.test.pem", &["*.wild.demo.test".into()], None)?;
    bundle(
        "dual.demo.test.rsa.pem",
        &["dual.demo.test".into()],
        Some(&rsa),
    )?;
    bundle("dual.demo.test.ecdsa.pem", &["dual.demo.test".into()], None)?;
    bundle("default.demo.test.pem", &["default.demo.test".into()], None)?;
    config.push_str("ssl_cert_name=certs/wild.demo.test.pem\n");
    config.push_str("ssl_cert_name=certs/dual.demo.test.rsa.pem,certs/dual.demo.test.ecdsa.pem\n");
    config.push_str("dest_ip=* ssl_cert_name=certs/default.demo.test.pem\n");
    let multicert = dir.join("ssl_multicert.config");
    write(multicert.clone(), config)?;

    // Keyless: the proxy gets the certificate, the key server the key.
    mkdir(&dir.join("keyless"))?;
    mkdir(&dir.join("keyserver/keys"))?;
    let (cert, key) = issue(&[KEYLESS_NAME.into()], None)?;
    write(dir.join(format!("keyless/{KEYLESS_NAME}.pem")), cert)?;
    write(dir.join(format!("keyserver/keys/{KEYLESS_NAME}.key")), key)?;
    // Mutual TLS between the proxy and the key server, and a client for the STRICT name.
    for (stem, name) in [
        ("keyserver/server", KEYSERVER_NAME),
        ("edge", "edge.demo.test"),
        ("client", "client.demo.test"),
    ] {
        let (cert, key) = issue(&[name.into()], None)?;
        write(dir.join(format!("{stem}.pem")), cert)?;
        write(dir.join(format!("{stem}.key")), key)?;
    }
    crate::tickets::generate(
        edgetls_tickets::format::Format::Haproxy,
        None,
        Some(dir.join("tickets.keys")),
    )?;
    write(dir.join("policy.toml"), POLICY)?;
    Ok(multicert)
}

/// Per-name negotiation: h2 offered on one name, a client certificate required on another.
const POLICY: &str = r#"# edgetls demo policy (see docs/policy.md)
[[sni]]
fqdn = "site000001.demo.test"
alpn = ["h2", "http/1.1"]

[[sni]]
fqdn = "site000002.demo.test"
verify_client = "STRICT"
verify_client_ca_certs = "ca.pem"
alpn = ["http/1.1"]

[[sni]]
fqdn = "*"
alpn = ["http/1.1"]
"#;

/// The proxy's configuration for the demo's services.
pub(crate) fn proxy_config(
    dir: &Path,
    listen: &str,
    metrics: &str,
    keyserver: std::net::SocketAddr,
    origin: std::net::SocketAddr,
    origin_h2: std::net::SocketAddr,
) -> Res<PathBuf> {
    let text = format!(
        r#"# edgetls demo: generated (see docs/proxy.md)
[server]
listen = ["{listen}"]
workers = 1
metrics = "{metrics}"

[certificates]
sources = ["ssl_multicert.config", "keyless"]

[policy]
file = "policy.toml"

[tickets]
file = "tickets.keys"
format = "haproxy"

[keyless]
sources = ["keyless"]
servers = ["{keyserver}"]
server_name = "{KEYSERVER_NAME}"
cert = "edge.pem"
key = "edge.key"
ca = "ca.pem"

[[routes]]
fqdn = "site000001.demo.test"
alpn = "h2"
origin = "{origin_h2}"

[[routes]]
fqdn = "*"
origin = "{origin}"
"#
    );
    let path = dir.join("proxy.toml");
    write(path.clone(), text)?;
    Ok(path)
}
