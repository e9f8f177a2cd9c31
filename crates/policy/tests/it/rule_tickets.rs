//! A rule with its own ticket key file (nginx's per-`server` `ssl_session_ticket_key`): its
//! names' tickets are sealed with that file's key and opened only with it; other names keep
//! the listener's keys. Checked on the tickets `openssl s_client` receives, and across two
//! servers that share only the rule's file.

use crate::common::{Pki, Server, pki, serve};
use edgetls_policy::Env;
use edgetls_testkit::s_client::SClient;
use edgetls_tickets::{
    KeySet, KeySize, RingOptions, StaticSource, TicketConfig, TicketKey, TicketKeys,
};
use std::process::Command;
use std::sync::Arc;

const POLICY: &str = r#"
[[sni]]
fqdn = "a.test"
ticket_key_file = "a.keys"
ticket_key_format = "nginx80"

[[sni]]
fqdn = "*"
"#;

/// A server with the policy above and listener keys of its own (a fresh random key).
fn server(pki: &Pki) -> (Server, [u8; 16]) {
    let key = TicketKey::generate(KeySize::Aes256).unwrap();
    let name = *key.name();
    let keys = TicketKeys::new(
        StaticSource(KeySet::new(vec![key], 0).unwrap()),
        RingOptions::default(),
    )
    .unwrap();
    let env = Env {
        tickets: Some((Arc::new(keys), TicketConfig::default())),
        ..Env::default()
    };
    (serve(pki, &pki.path("policy.toml"), env), name)
}

/// One request to `name` with `openssl s_client`, resuming `sess_in` if given and writing
/// the session to `sess_out`; returns whether the session was reused.
fn connect(srv: &Server, pki: &Pki, name: &str, v: &str, sess: &str, resume: bool) -> bool {
    let flag = if resume { "-sess_in" } else { "-sess_out" };
    let text = SClient::connect(srv.addr)
        .name(name)
        .args(["-ign_eof", v, flag])
        .args([pki.path(sess)])
        .input(format!("GET / HTTP/1.1\r\nHost: {name}\r\n\r\n"))
        .run()
        .stdout;
    assert!(text.contains("200 OK"), "{name} {v}: {text}");
    text.contains("Reused, TLS")
}

/// The name of the key a saved session's ticket was sealed with: the first 16 bytes of the
/// ticket as `openssl sess_id -text` prints it (the saved file is the system OpenSSL's, which
/// another library need not read).
fn ticket_key_name(pki: &Pki, sess: &str) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(["sess_id", "-text", "-noout", "-in"])
        .arg(pki.path(sess))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let dump = text
        .split_once("TLS session ticket:")
        .unwrap_or_else(|| panic!("a ticket in {text}"))
        .1;
    // Lines of "    0000 - 5b 1c 9f 4e 0c 47 e8 1c-20 d7 e1 4b 0b 7d 2d 3f   [..ascii..]".
    let mut name = Vec::new();
    for line in dump.lines().filter(|l| l.contains(" - ")).take(1) {
        let hex = line.split_once(" - ").unwrap().1;
        let hex = hex.get(..47).unwrap_or(hex).replace('-', " ");
        for b in hex.split_whitespace() {
            name.push(u8::from_str_radix(b, 16).unwrap());
        }
    }
    assert_eq!(name.len(), 16, "{dump}");
    name
}

#[test]
fn a_rule_with_its_own_key_file_seals_and_opens_its_tickets_with_it() {
    let pki = pki();
    std::fs::write(pki.path("policy.toml"), POLICY).unwrap();
    let mut file = vec![0u8; 80];
    openssl::rand::rand_bytes(&mut file).unwrap();
    std::fs::write(pki.path("a.keys"), &file).unwrap();
    let (one, listener_one) = server(&pki);
    let (two, listener_two) = server(&pki);
    assert_ne!(listener_one, listener_two);

    for v in ["-tls1_2", "-tls1_3"] {
        // a.test: sealed with the rule's key; opened by the other server, which has only the
        // file in common.
        assert!(!connect(&one, &pki, "a.test", v, "a.sess", false));
        assert_eq!(ticket_key_name(&pki, "a.sess"), file[..16], "{v}");
        assert!(
            connect(&two, &pki, "a.test", v, "a.sess", true),
            "{v}: across servers"
        );
        assert!(
            connect(&one, &pki, "a.test", v, "a.sess", true),
            "{v}: same server"
        );

        // h1.test: the listener's keys; the other server cannot open them.
        assert!(!connect(&one, &pki, "h1.test", v, "h1.sess", false));
        assert_eq!(ticket_key_name(&pki, "h1.sess"), listener_one, "{v}");
        assert!(connect(&one, &pki, "h1.test", v, "h1.sess", true), "{v}");
        assert!(
            !connect(&two, &pki, "h1.test", v, "h1.sess", true),
            "{v}: other keys"
        );
    }
}

#[test]
fn without_listener_keys_the_rule_keys_are_used_and_other_names_keep_tickets() {
    let pki = pki();
    std::fs::write(pki.path("policy.toml"), POLICY).unwrap();
    let mut file = vec![0u8; 80];
    openssl::rand::rand_bytes(&mut file).unwrap();
    std::fs::write(pki.path("a.keys"), &file).unwrap();
    let srv = serve(&pki, &pki.path("policy.toml"), Env::default());
    for v in ["-tls1_2", "-tls1_3"] {
        assert!(!connect(&srv, &pki, "a.test", v, "a.sess", false));
        assert_eq!(ticket_key_name(&pki, "a.sess"), file[..16], "{v}");
        assert!(connect(&srv, &pki, "a.test", v, "a.sess", true), "{v}");
        // Another name: the listener's own random keys, as OpenSSL's built-in ones would be.
        assert!(!connect(&srv, &pki, "h1.test", v, "h1.sess", false));
        assert_ne!(ticket_key_name(&pki, "h1.sess"), file[..16], "{v}");
        assert!(connect(&srv, &pki, "h1.test", v, "h1.sess", true), "{v}");
    }
}

#[test]
fn a_key_file_without_its_format_is_refused_with_the_line() {
    let pki = pki();
    let path = pki.path("policy.toml");
    std::fs::write(
        &path,
        "[[sni]]\nfqdn = \"a.test\"\nticket_key_file = \"a.keys\"\n",
    )
    .unwrap();
    let err = edgetls_policy::config::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("policy.toml") && err.contains("ticket_key_format"),
        "{err}"
    );
}
