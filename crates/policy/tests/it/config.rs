//! Policy files and crt-list options: errors name the file and line; reload keeps what works;
//! rule matching.

use crate::common::pki;
use edgetls_certstore::{CertStore, LoadOptions, Source};
use edgetls_policy::{Env, Policy, PolicyError, PolicySources, PolicyStore, config, crtlist};
use std::path::Path;

fn err(text: &str) -> String {
    match config::parse(Path::new("/etc/edge/policy.toml"), text)
        .and_then(|rules| Policy::build(rules, &Env::default()).map(|_| ()))
    {
        Err(e) => e.to_string(),
        Ok(()) => panic!("accepted:\n{text}"),
    }
}

#[test]
fn every_bad_field_is_an_error_naming_the_file_and_line() {
    let cases = [
        (
            "[[sni]]\nfqdn = \"a.test\"\n\n[[sni]]\nfqdn = \"b.test\"\nvalid_tls_version_min_in = \"TLSv1_9\"\n",
            "policy.toml:4:",
            "TLS version",
        ),
        (
            "[[sni]]\nfqdn = \"a.test\"\nalpn_modes = \"strict\"\n",
            "policy.toml",
            "alpn_modes",
        ),
        (
            "\n[[sni]]\nfqdn = \"a.test\"\nciphers = \"NOT-A-CIPHER\"\n",
            "policy.toml:2:",
            "ciphers",
        ),
        (
            "[[sni]]\nfqdn = \"a.test\"\nciphersuites = \"TLS_NOPE\"\n",
            "policy.toml:1:",
            "ciphersuites",
        ),
        (
            "[[sni]]\nfqdn = \"a.test\"\ngroups = \"P-999\"\n",
            "policy.toml:1:",
            "groups",
        ),
        (
            "[[sni]]\nfqdn = \"a.test\"\nsigalgs = \"ECDSA+MD4\"\n",
            "policy.toml:1:",
            "sigalgs",
        ),
        (
            "[[sni]]\nfqdn = \"a.test\"\nverify_client = \"STRICT\"\n",
            "policy.toml:1:",
            "CA bundle",
        ),
        (
            "[[sni]]\nfqdn = \"a.test\"\nverify_client = \"MAYBE\"\n",
            "policy.toml:1:",
            "NONE, MODERATE or STRICT",
        ),
        (
            "[[sni]]\nfqdn = \"a.test\"\nverify_client = \"STRICT\"\nverify_client_ca_certs = \"missing-ca.pem\"\n",
            "policy.toml:1:",
            "missing-ca.pem",
        ),
        ("[[sni]]\nfqdn = \"a..test\"\n", "policy.toml:1:", "fqdn"),
        ("[[sni]]\nfqdn = \"*.*.test\"\n", "policy.toml:1:", "fqdn"),
        (
            "[[sni]]\nfqdn = \"a.test\"\nalpn = [\"\"]\n",
            "policy.toml:1:",
            "1 to 255 bytes",
        ),
        (
            "[[sni]]\nfqdn = \"a.test\"\nalpn_mode = \"fallback\"\n",
            "policy.toml:1:",
            "without alpn",
        ),
        (
            "[[sni]]\nfqdn = \"a.test\"\nvalid_tls_version_min_in = \"TLSv1_3\"\nvalid_tls_version_max_in = \"TLSv1_2\"\n",
            "policy.toml:1:",
            "above the maximum",
        ),
        (
            "[[sni]]\nfqdn = \"a.test\"\nlocal = \"nowhere\"\n",
            "policy.toml:1:",
            "local",
        ),
        ("[[sni]\nfqdn = 1\n", "policy.toml", "line 1"),
    ];
    for (text, place, what) in cases {
        let e = err(text);
        assert!(
            e.contains(place) && e.contains(what),
            "want {place} {what}, got: {e}"
        );
    }
}

#[test]
fn an_invalid_policy_never_replaces_a_valid_one_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, "[[sni]]\nfqdn = \"a.test\"\nalpn = [\"h2\"]\n").unwrap();
    let store = PolicyStore::load(
        PolicySources {
            file: Some(path.clone()),
            crt_list: None,
            default_rule: false,
        },
        Env::default(),
    )
    .unwrap();
    assert!(store.current().find(Some("a.test"), None).is_some());
    std::fs::write(&path, "[[sni]]\nfqdn = \"b.test\"\nciphers = \"BROKEN\"\n").unwrap();
    let e = store.reload().unwrap_err();
    assert!(matches!(e, PolicyError::Rule { line: 1, .. }), "{e}");
    assert!(
        store.current().find(Some("a.test"), None).is_some(),
        "the old policy stays"
    );
    assert!(store.current().find(Some("b.test"), None).is_none());
    std::fs::write(&path, "[[sni]]\nfqdn = \"b.test\"\n").unwrap();
    store.reload().unwrap();
    assert!(store.current().find(Some("b.test"), None).is_some());
    assert!(store.current().find(Some("a.test"), None).is_none());
}

#[test]
fn first_match_in_order_one_label_wildcards_defaults_and_local_addresses() {
    let text = r#"
[[sni]]
fqdn = "*.example.com"
alpn = ["h2"]

[[sni]]
fqdn = "www.example.com"
alpn = ["http/1.1"]

[[sni]]
fqdn = "*"
local = ":8443"
alpn = ["spdy/3"]

[[sni]]
fqdn = "*"
"#;
    let policy = Policy::build(
        config::parse(Path::new("p.toml"), text).unwrap(),
        &Env::default(),
    )
    .unwrap();
    let line = |sni: Option<&str>, local: Option<&str>| {
        policy
            .find(sni, local.map(|l| l.parse().unwrap()))
            .map(|r| r.origin.1)
    };
    assert_eq!(
        line(Some("www.example.com"), None),
        Some(2),
        "the earlier wildcard wins"
    );
    assert_eq!(
        line(Some("WWW.Example.COM"), None),
        Some(2),
        "names match in any case"
    );
    assert_eq!(
        line(Some("a.b.example.com"), None),
        Some(15),
        "one label only"
    );
    assert_eq!(line(Some("example.com"), None), Some(15));
    assert_eq!(
        line(None, None),
        Some(15),
        "no server name: the default rule"
    );
    assert_eq!(
        line(None, Some("192.0.2.1:8443")),
        Some(10),
        "a default for one port"
    );
    assert_eq!(line(Some("other.test"), Some("192.0.2.1:443")), Some(15));
}

#[test]
fn crt_list_options_become_rules_and_bad_ones_name_the_line() {
    let pki = pki();
    let list = pki.path("crt-list");
    std::fs::write(
        &list,
        "certs/site.pem [alpn h2,http/1.1 ssl-min-ver TLSv1.3 verify required ca-file client-ca.pem curves X25519 sigalgs ECDSA+SHA256] h2.test\n",
    )
    .unwrap();
    let (store, report) =
        CertStore::load(vec![Source::CrtList(list.clone())], LoadOptions::default()).unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    let rules = crtlist::rules(&store.snapshot()).unwrap();
    assert_eq!(rules.len(), 1);
    let s = &rules[0].settings;
    assert_eq!(s.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    assert_eq!(s.min_version, Some(0x0304));
    assert_eq!(s.client_cert, edgetls_policy::ClientCert::Require);
    assert_eq!(s.groups.as_deref(), Some("X25519"));
    let policy = Policy::build(rules, &Env::default()).unwrap();
    assert!(policy.find(Some("h2.test"), None).is_some());

    std::fs::write(
        &list,
        "certs/site.pem h1.test\ncerts/site.pem [no-such-option 1] h2.test\n",
    )
    .unwrap();
    let (store, _) = CertStore::load(vec![Source::CrtList(list)], LoadOptions::default()).unwrap();
    let e = crtlist::rules(&store.snapshot()).unwrap_err().to_string();
    assert!(
        e.contains("crt-list:2:") && e.contains("no-such-option"),
        "{e}"
    );
}

#[test]
fn traffic_servers_sni_yaml_reads_into_the_same_rules_and_refuses_what_it_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("sni.yaml");
    std::fs::write(
        &yaml,
        "# Traffic Server sni.yaml\n\
         sni:\n\
         - fqdn: mtls.example.com\n\
         \x20 verify_client: STRICT\n\
         \x20 verify_client_ca_certs: clients-ca.pem\n\
         \x20 valid_tls_version_min_in: TLSv1_2\n\
         \x20 valid_tls_version_max_in: TLSv1_3\n\
         \x20 server_cipher_suite: ECDHE+AESGCM\n\
         \x20 server_TLSv1_3_cipher_suites: TLS_AES_128_GCM_SHA256\n\
         \x20 server_groups_list: X25519:P-256\n\
         \x20 http2: on\n\
         \x20 ssl_ticket_enabled: 0\n\
         \x20 ssl_ticket_number: 2\n\
         - fqdn: '*.legacy.example.com'\n\
         \x20 http2: off\n\
         - fqdn: passthrough.example.com\n\
         \x20 tunnel_route: 10.0.0.5:443\n",
    )
    .unwrap();
    let toml = dir.path().join("policy.toml");
    std::fs::write(
        &toml,
        "[[sni]]\nfqdn = \"mtls.example.com\"\nverify_client = \"STRICT\"\n\
         verify_client_ca_certs = \"clients-ca.pem\"\nvalid_tls_version_min_in = \"TLSv1_2\"\n\
         valid_tls_version_max_in = \"TLSv1_3\"\nciphers = \"ECDHE+AESGCM\"\n\
         ciphersuites = \"TLS_AES_128_GCM_SHA256\"\ngroups = \"X25519:P-256\"\n\
         alpn = [\"h2\", \"http/1.1\"]\ntickets = false\ntls13_tickets = 2\n\n\
         [[sni]]\nfqdn = \"*.legacy.example.com\"\nalpn = [\"http/1.1\"]\n\n\
         [[sni]]\nfqdn = \"passthrough.example.com\"\ntunnel_route = \"10.0.0.5:443\"\n",
    )
    .unwrap();
    let from_yaml = edgetls_policy::config::load(&yaml).unwrap();
    let from_toml = edgetls_policy::config::load(&toml).unwrap();
    assert_eq!(from_yaml.len(), 3);
    for (y, t) in from_yaml.iter().zip(&from_toml) {
        assert_eq!(
            (&y.sni, &y.settings, &y.tunnel),
            (&t.sni, &t.settings, &t.tunnel)
        );
    }
    let lines: Vec<usize> = from_yaml.iter().map(|r| r.origin.1).collect();
    assert_eq!(lines, [3, 14, 16]);

    // Every key it cannot honour is refused with its line and why.
    for (key, why) in [
        ("client_cert: origin.pem", "per route"),
        ("verify_server_policy: ENFORCED", "per route"),
        ("host_sni_policy: ENFORCED", "Host header"),
        ("ip_allow: 10.0.0.0/8", "firewall"),
        ("no_such_key: 1", "unknown sni.yaml key"),
        ("http2: maybe", "on or off"),
    ] {
        std::fs::write(&yaml, format!("sni:\n- fqdn: a.example.com\n  {key}\n")).unwrap();
        let e = edgetls_policy::config::load(&yaml).unwrap_err().to_string();
        assert!(e.contains("sni.yaml:3:") && e.contains(why), "{key}: {e}");
    }
    std::fs::write(&yaml, "sni:\n- fqdn: [a, b]\n").unwrap();
    let e = edgetls_policy::config::load(&yaml).unwrap_err().to_string();
    assert!(e.contains("sni.yaml:2:") && e.contains("one value"), "{e}");
    std::fs::write(&yaml, "sni:\n  - fqdn: a\n   bad indent: [\n").unwrap();
    let e = edgetls_policy::config::load(&yaml).unwrap_err().to_string();
    assert!(e.contains("sni.yaml:") && e.contains("YAML"), "{e}");
}
