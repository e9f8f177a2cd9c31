//! Each name gets its own negotiation.

use crate::common::{Pki, Server, curl, pki, s_client, serve};
use edgetls_policy::Env;
use edgetls_tickets::{
    KeySet, KeySize, RingOptions, StaticSource, TicketConfig, TicketKey, TicketKeys,
};
use std::sync::Arc;

const POLICY: &str = r#"
[[sni]]
fqdn = "h2.test"
alpn = ["h2", "http/1.1"]

[[sni]]
fqdn = "h1.test"
alpn = ["http/1.1"]

[[sni]]
fqdn = "strict.test"
alpn = ["h2", "http/1.1"]
alpn_mode = "strict"

[[sni]]
fqdn = "fallback.test"
alpn = ["h2", "http/1.1"]
alpn_mode = "fallback"

[[sni]]
fqdn = "npn.test"
npn = ["http/1.1"]
valid_tls_version_max_in = "TLSv1_2"

[[sni]]
fqdn = "mtls.test"
verify_client = "STRICT"
verify_client_ca_certs = "client-ca.pem"
verify_depth = 2

[[sni]]
fqdn = "v13.test"
valid_tls_version_min_in = "TLSv1_3"

[[sni]]
fqdn = "notickets.test"
tickets = false

[[sni]]
fqdn = "legacy.test"
valid_tls_version_max_in = "TLSv1_2"
ciphers = "ECDHE-ECDSA-AES128-SHA"

[[sni]]
fqdn = "*.elsewhere.test"
certificate = "a.test"
alpn = ["http/1.1"]

[[sni]]
fqdn = "*"
alpn = ["http/1.1"]
"#;

fn setup() -> (Pki, Server) {
    let pki = pki();
    let path = pki.path("policy.toml");
    std::fs::write(&path, POLICY).unwrap();
    let keys = TicketKeys::new(
        StaticSource(KeySet::new(vec![TicketKey::generate(KeySize::Aes256).unwrap()], 0).unwrap()),
        RingOptions::default(),
    )
    .unwrap();
    let env = Env {
        tickets: Some((Arc::new(keys), TicketConfig::default())),
        ..Env::default()
    };
    let srv = serve(&pki, &path, env);
    (pki, srv)
}

#[test]
fn alpn_per_name_strict_and_fallback_with_s_client() {
    let (pki, srv) = setup();
    let (ok, out) = s_client(&srv, &pki, "h2.test", &["-alpn", "http/1.1,h2"]);
    assert!(
        ok && out.contains("ALPN protocol: h2"),
        "server preference wins:\n{out}"
    );
    let (ok, out) = s_client(&srv, &pki, "h1.test", &["-alpn", "h2,http/1.1"]);
    assert!(ok && out.contains("ALPN protocol: http/1.1"), "{out}");
    let (ok, out) = s_client(&srv, &pki, "strict.test", &["-alpn", "banana"]);
    assert!(
        !ok && out.contains("no application protocol"),
        "strict: alert 120:\n{out}"
    );
    let (ok, out) = s_client(&srv, &pki, "fallback.test", &["-alpn", "banana"]);
    assert!(
        ok && out.contains("No ALPN negotiated"),
        "fallback continues:\n{out}"
    );
    let (ok, out) = s_client(&srv, &pki, "strict.test", &["-alpn", "h2"]);
    assert!(ok && out.contains("ALPN protocol: h2"), "{out}");
    // No alpn_mode: strict is the default (RFC 7301 §3.2, as Traffic Server, HAProxy, nginx).
    let (ok, out) = s_client(&srv, &pki, "h2.test", &["-alpn", "banana"]);
    assert!(
        !ok && out.contains("no application protocol"),
        "default: alert 120:\n{out}"
    );
    // A client that offers no ALPN at all is not refused.
    let (ok, out) = s_client(&srv, &pki, "h2.test", &[]);
    assert!(ok && out.contains("No ALPN negotiated"), "{out}");
}

#[test]
fn curl_gets_each_names_protocols() {
    let (pki, srv) = setup();
    let (_, _, err) = curl(&srv, &pki, "h2.test", &["--http2"]);
    assert!(err.contains("ALPN: server accepted h2"), "{err}");
    let (code, body, err) = curl(&srv, &pki, "h2.test", &["--http1.1"]);
    assert!(err.contains("ALPN: server accepted http/1.1"), "{err}");
    assert_eq!((code, body.as_str()), (0, "ok\n"), "{err}");
    // A name that speaks only http/1.1 answers curl --http2 with http/1.1.
    let (code, body, err) = curl(&srv, &pki, "h1.test", &["--http2"]);
    assert!(err.contains("ALPN: server accepted http/1.1"), "{err}");
    assert_eq!((code, body.as_str()), (0, "ok\n"), "{err}");
}

#[test]
fn npn_is_advertised_to_tls12_clients_that_use_it() {
    let (pki, srv) = setup();
    let (ok, out) = s_client(
        &srv,
        &pki,
        "npn.test",
        &["-tls1_2", "-nextprotoneg", "http/1.1"],
    );
    assert!(ok && out.contains("Next protocol: (1) http/1.1"), "{out}");
    let (ok, out) = s_client(
        &srv,
        &pki,
        "h1.test",
        &["-tls1_2", "-nextprotoneg", "http/1.1"],
    );
    assert!(
        ok && !out.contains("Next protocol: (1)"),
        "no NPN for other names:\n{out}"
    );
}

#[test]
fn client_certificates_are_required_by_one_name_only() {
    let (pki, srv) = setup();
    let cert = pki.path("client.pem");
    let key = pki.path("client.key");
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    for v in ["-tls1_2", "-tls1_3"] {
        let (_, out) = s_client(&srv, &pki, "mtls.test", &[v, "-ign_eof"]);
        assert!(
            out.contains("alert certificate required") || out.contains("alert handshake failure"),
            "{v}: no client certificate is refused:\n{out}"
        );
        let (ok, out) = s_client(&srv, &pki, "mtls.test", &[v, "-cert", cert, "-key", key]);
        assert!(
            ok && out.contains("Acceptable client certificate CA names"),
            "{v}:\n{out}"
        );
        assert!(
            out.contains("policy test client CA"),
            "the CA names are the rule's:\n{out}"
        );
        assert!(!out.contains("alert"), "{v}: accepted:\n{out}");
        let rogue = (pki.path("rogue.pem"), pki.path("rogue.key"));
        let (_, out) = s_client(
            &srv,
            &pki,
            "mtls.test",
            &[
                v,
                "-ign_eof",
                "-cert",
                rogue.0.to_str().unwrap(),
                "-key",
                rogue.1.to_str().unwrap(),
            ],
        );
        assert!(
            out.contains("alert unknown ca"),
            "{v}: a certificate from another CA is refused:\n{out}"
        );
        // Another name on the same listener does not ask.
        let (ok, out) = s_client(&srv, &pki, "h1.test", &[v]);
        assert!(
            ok && !out.contains("Acceptable client certificate CA names"),
            "{v}:\n{out}"
        );
    }
}

#[test]
fn versions_ciphers_tickets_and_defaults_per_name() {
    let (pki, srv) = setup();
    let (ok, out) = s_client(&srv, &pki, "v13.test", &["-tls1_2"]);
    assert!(
        !ok && out.contains("protocol version"),
        "TLS 1.3 only:\n{out}"
    );
    let (ok, out) = s_client(&srv, &pki, "v13.test", &["-tls1_3"]);
    assert!(ok && out.contains("TLSv1.3"), "{out}");
    // legacy.test: one TLS 1.2 cipher only.
    let (ok, out) = s_client(
        &srv,
        &pki,
        "legacy.test",
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"],
    );
    assert!(!ok, "a cipher outside the name's list is refused:\n{out}");
    let (ok, out) = s_client(
        &srv,
        &pki,
        "legacy.test",
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"],
    );
    assert!(ok && out.contains("ECDHE-ECDSA-AES128-SHA"), "{out}");
    let (ok, out) = s_client(
        &srv,
        &pki,
        "h1.test",
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"],
    );
    assert!(ok, "other names keep the default list:\n{out}");
    // Tickets: off for one name only.
    let (ok, out) = s_client(&srv, &pki, "notickets.test", &["-tls1_3", "-ign_eof"]);
    assert!(ok && !out.contains("New Session Ticket"), "{out}");
    let (ok, out) = s_client(&srv, &pki, "h1.test", &["-tls1_3", "-ign_eof"]);
    assert!(ok && out.contains("New Session Ticket"), "{out}");
    let (ok, out) = s_client(&srv, &pki, "notickets.test", &["-tls1_2", "-tlsextdebug"]);
    assert!(ok && !out.contains("session ticket"), "{out}");
    // No server name: the default rule; a name by wildcard serves the certificate it names.
    let (ok, out) = s_client(&srv, &pki, "", &["-alpn", "h2,http/1.1"]);
    assert!(ok && out.contains("ALPN protocol: http/1.1"), "{out}");
    let (ok, out) = s_client(&srv, &pki, "x.elsewhere.test", &["-alpn", "http/1.1"]);
    assert!(
        ok && out.contains("ALPN protocol: http/1.1") && out.contains("subject="),
        "{out}"
    );
    assert_eq!(srv.policy.current().rules().len(), 11);
    // h1.test, *.elsewhere.test and * share their settings, as do h2.test and fallback.test.
    assert_eq!(srv.policy.current().profiles(), 8);
}

#[test]
fn a_certificate_not_yet_built_pauses_the_client_hello_once_then_is_cached() {
    use std::sync::atomic::Ordering::Relaxed;
    let (pki, srv) = setup();
    let pauses = || srv.server.seen.pauses.load(Relaxed);
    assert_eq!(pauses(), 0);
    // One certificate (site.pem) serves every name here: only the very first handshake waits.
    for (name, expected) in [
        ("h1.test", 1),
        ("h1.test", 1),
        ("v13.test", 1),
        ("a.test", 1),
    ] {
        // The certificate verifies for the name asked (its SAN), so it is that name's own.
        let (ok, out) = s_client(&srv, &pki, name, &["-verify_hostname", name]);
        assert!(
            ok && out.contains("Verify return code: 0 (ok)"),
            "{name}:\n{out}"
        );
        assert_eq!(
            pauses(),
            expected,
            "{name}: the first handshake waits for the entry to be built, later ones find it cached"
        );
    }
    // The same over TLS 1.2, on a fresh server whose first handshake is a TLS 1.2 one.
    let (pki, srv) = setup();
    let args = ["-tls1_2", "-verify_hostname", "h2.test"];
    let (ok, out) = s_client(&srv, &pki, "h2.test", &args);
    assert!(ok && out.contains("Verify return code: 0 (ok)"), "{out}");
    assert_eq!(srv.server.seen.pauses.load(Relaxed), 1);
}

/// Traffic Server's documented mapping form: `verify_client_ca_certs: {file: …, dir: …}`.
#[test]
fn traffic_servers_sni_yaml_with_a_ca_file_and_a_hashed_ca_directory() {
    let pki = pki();
    crate::common::hashed_ca_dir(&pki, "client-cas");
    let yaml = pki.path("sni.yaml");
    std::fs::write(
        &yaml,
        "# sni.yaml, as Traffic Server's documentation writes it\n\
         sni:\n\
         - fqdn: mtls.test\n\
         \x20 verify_client: STRICT\n\
         \x20 verify_client_ca_certs:\n\
         \x20   file: client-ca.pem\n\
         \x20   dir: client-cas\n\
         - fqdn: '*'\n\
         \x20 http2: off\n",
    )
    .unwrap();
    let srv = serve(&pki, &yaml, Env::default());
    let pair = |name: &str| {
        let (c, k) = (
            pki.path(&format!("{name}.pem")),
            pki.path(&format!("{name}.key")),
        );
        (c.display().to_string(), k.display().to_string())
    };
    for v in ["-tls1_2", "-tls1_3"] {
        // From the file's CA and from the directory's: both verify; only the file's CA is
        // named in the request (as Traffic Server loads names from the file only).
        for who in ["client", "dir-client"] {
            let (c, k) = pair(who);
            let (ok, out) = s_client(
                &srv,
                &pki,
                "mtls.test",
                &[v, "-ign_eof", "-cert", &c, "-key", &k],
            );
            assert!(ok && !out.contains("alert"), "{v} {who}: accepted:\n{out}");
            assert!(out.contains("policy test client CA"), "{out}");
            assert!(!out.contains("policy test dir CA"), "{out}");
        }
        let (c, k) = pair("rogue");
        let (_, out) = s_client(
            &srv,
            &pki,
            "mtls.test",
            &[v, "-ign_eof", "-cert", &c, "-key", &k],
        );
        assert!(
            out.contains("alert unknown ca"),
            "{v}: a CA in neither is refused:\n{out}"
        );
    }
    // A mapping with another key, or an empty one, is refused with its line.
    for (body, why) in [
        ("    files: client-ca.pem\n", "unknown key (file or dir)"),
        ("    dir: [a, b]\n", "one path"),
    ] {
        std::fs::write(
            &yaml,
            format!(
                "sni:\n- fqdn: a.test\n  verify_client: STRICT\n  verify_client_ca_certs:\n{body}"
            ),
        )
        .unwrap();
        let e = edgetls_policy::config::load(&yaml).unwrap_err().to_string();
        assert!(e.contains("sni.yaml:5:") && e.contains(why), "{e}");
    }
}
