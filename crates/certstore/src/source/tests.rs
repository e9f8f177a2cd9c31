use super::*;
use std::io::Write as _;

fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    p
}

#[test]
fn multicert_reads_every_field_with_quotes_and_comments() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = file(
        dir.path(),
        "ssl_multicert.config",
        "# comment\n\
         \n\
         ssl_cert_name=a.rsa.pem,a.ec.pem ssl_key_name=a.rsa.key,a.ec.key ssl_ca_name=ca.pem dest_ip=10.1.2.3\n\
         dest_ip=* ssl_cert_name=def.pem ssl_ticket_enabled=0 ssl_ticket_number=3  # trailing\n\
         ssl_cert_name=\"with space.pem\" ssl_key_dialog=\"exec:/bin/echo secret words\" dest_ip=[::1]:8443\n\
         dest_ip=192.0.2.7 action=tunnel\n\
         ssl_cert_name=/abs/x.pem ssl_key_dialog=builtin ssl_ocsp_name=x.ocsp\n",
    );
    let (specs, problems) = Source::Multicert(cfg.clone())
        .specs(&SourceOptions::default())
        .unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(specs.len(), 5);
    let d = dir.path();
    assert_eq!(
        specs[0].certs,
        vec![d.join("a.rsa.pem"), d.join("a.ec.pem")]
    );
    assert_eq!(
        specs[0].keys,
        vec![Some(d.join("a.rsa.key")), Some(d.join("a.ec.key"))]
    );
    assert_eq!(specs[0].ca, vec![d.join("ca.pem")]);
    assert_eq!(
        specs[0].dest_ip,
        Some(DestIp {
            addr: "10.1.2.3".parse().unwrap(),
            port: None
        })
    );
    assert_eq!(specs[0].line, Some(3));
    assert!(specs[1].default);
    assert_eq!(
        (specs[1].ticket_enabled, specs[1].ticket_number),
        (Some(false), Some(3))
    );
    assert_eq!(
        specs[1].keys,
        vec![None],
        "no ssl_key_name: key comes from the certificate file"
    );
    assert_eq!(specs[2].certs, vec![d.join("with space.pem")]);
    assert_eq!(
        specs[2].key_dialog,
        Some(KeyDialog::Exec("/bin/echo secret words".into()))
    );
    assert_eq!(
        specs[2].dest_ip,
        Some(DestIp {
            addr: "::1".parse().unwrap(),
            port: Some(8443)
        })
    );
    assert!(specs[3].tunnel && specs[3].certs.is_empty());
    assert_eq!(specs[4].certs, vec![PathBuf::from("/abs/x.pem")]);
    assert_eq!(specs[4].key_dialog, Some(KeyDialog::Builtin));
    assert_eq!(specs[4].ocsp, Some(d.join("x.ocsp")));
}

#[test]
fn multicert_bad_lines_name_their_line_and_the_rest_load() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = file(
        dir.path(),
        "ssl_multicert.config",
        "ssl_cert_name=ok.pem\n\
         ssl_cert_name=\"unterminated\n\
         dest_ip=not-an-ip ssl_cert_name=x.pem\n\
         ssl_key_name=a.key\n\
         ssl_cert_name=a.pem,b.pem ssl_key_name=a.key\n\
         ssl_cert_name=c.pem ssl_ticket_enabled=yes\n\
         ssl_cert_name=d.pem bogus_field=1\n",
    );
    let (specs, problems) = Source::Multicert(cfg)
        .specs(&SourceOptions::default())
        .unwrap();
    assert_eq!(specs.len(), 2, "line 1 and line 7 load");
    let errors: Vec<(Option<u32>, String)> = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .map(|p| (p.line, p.error.to_string()))
        .collect();
    let lines: Vec<u32> = errors.iter().filter_map(|e| e.0).collect();
    assert_eq!(lines, vec![2, 3, 4, 5, 6], "{errors:#?}");
    assert!(errors[0].1.contains("unterminated"));
    assert!(errors[1].1.contains("not an IP address"));
    assert!(errors[3].1.contains("lists 1 keys for 2 certificates"));
    let warning = problems
        .iter()
        .find(|p| p.severity == Severity::Warning)
        .unwrap();
    assert!(warning.to_string().contains(":7:") && warning.to_string().contains("bogus_field"));
}

#[test]
fn multicert_paths_resolve_against_configured_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = file(
        dir.path(),
        "ssl_multicert.config",
        "ssl_cert_name=a.pem ssl_key_name=a.key\n",
    );
    let opts = SourceOptions {
        cert_dir: Some("/certs".into()),
        key_dir: Some("/keys".into()),
    };
    let (specs, _) = Source::Multicert(cfg).specs(&opts).unwrap();
    assert_eq!(specs[0].certs, vec![PathBuf::from("/certs/a.pem")]);
    assert_eq!(specs[0].keys, vec![Some(PathBuf::from("/keys/a.key"))]);
}

#[test]
fn crt_list_keeps_options_filters_exclusions_and_default() {
    let dir = tempfile::tempdir().unwrap();
    file(dir.path(), "site.pem", "");
    file(dir.path(), "site.pem.key", "");
    file(dir.path(), "duo.pem.rsa", "");
    file(dir.path(), "duo.pem.ecdsa", "");
    let list = file(
        dir.path(),
        "crt-list",
        "site.pem [alpn h2,http/1.1 ssl-min-ver TLSv1.2] *.example.com !secret.example.com www.other.org\n\
         # comment line\n\
         duo.pem *\n\
         other.pem [unterminated\n",
    );
    let (specs, problems) = Source::CrtList(list.clone())
        .specs(&SourceOptions::default())
        .unwrap();
    assert_eq!(specs.len(), 2);
    let d = dir.path();
    assert_eq!(
        specs[0].options,
        vec!["alpn", "h2,http/1.1", "ssl-min-ver", "TLSv1.2"]
    );
    assert_eq!(specs[0].sni_filters, vec!["*.example.com", "www.other.org"]);
    assert_eq!(specs[0].exclusions, vec!["secret.example.com"]);
    assert_eq!(specs[0].keys, vec![Some(d.join("site.pem.key"))]);
    assert_eq!(
        (specs[0].origin.clone(), specs[0].line),
        (list.clone(), Some(1))
    );
    assert!(specs[1].default);
    let mut certs = specs[1].certs.clone();
    certs.sort();
    assert_eq!(
        certs,
        vec![d.join("duo.pem.ecdsa"), d.join("duo.pem.rsa")],
        "multi-cert bundle"
    );
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].line, Some(4));
}

#[test]
fn detect_tells_the_three_apart_and_reports_missing_sources() {
    let dir = tempfile::tempdir().unwrap();
    let mc = file(
        dir.path(),
        "edge.conf",
        "# x\ndest_ip=* ssl_cert_name=a.pem\n",
    );
    let cl = file(dir.path(), "list.txt", "a.pem [alpn h2] a.com\n");
    assert_eq!(
        Source::detect(dir.path()).unwrap(),
        Source::Dir(dir.path().to_path_buf())
    );
    assert_eq!(Source::detect(&mc).unwrap(), Source::Multicert(mc.clone()));
    assert_eq!(Source::detect(&cl).unwrap(), Source::CrtList(cl.clone()));
    let err = Source::detect(dir.path().join("missing")).unwrap_err();
    assert!(matches!(err, CertStoreError::SourceUnusable { .. }));
    assert!(err.to_string().contains("missing"));
}

#[test]
fn dest_ip_forms() {
    let ip = |s| parse_dest_ip(s);
    assert_eq!(
        ip("192.0.2.1"),
        Some(DestIp {
            addr: "192.0.2.1".parse().unwrap(),
            port: None
        })
    );
    assert_eq!(
        ip("192.0.2.1:443"),
        Some(DestIp {
            addr: "192.0.2.1".parse().unwrap(),
            port: Some(443)
        })
    );
    assert_eq!(
        ip("[2001:db8::1]"),
        Some(DestIp {
            addr: "2001:db8::1".parse().unwrap(),
            port: None
        })
    );
    assert_eq!(
        ip("2001:db8::1"),
        Some(DestIp {
            addr: "2001:db8::1".parse().unwrap(),
            port: None
        })
    );
    assert_eq!(
        ip("[2001:db8::1]:443"),
        Some(DestIp {
            addr: "2001:db8::1".parse().unwrap(),
            port: Some(443)
        })
    );
    assert_eq!(
        ip("[::ffff:10.0.0.1]"),
        Some(DestIp {
            addr: "10.0.0.1".parse().unwrap(),
            port: None
        })
    );
    assert_eq!(ip("example.com"), None);
    assert_eq!(ip("1.2.3.4:99999"), None);
}

#[test]
fn multicert_yaml_reads_what_the_config_line_form_reads() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = file(
        dir.path(),
        "ssl_multicert.config",
        "ssl_cert_name=a.rsa.pem,a.ec.pem ssl_key_name=a.rsa.key,a.ec.key ssl_ca_name=ca.pem dest_ip=10.1.2.3\n\
         dest_ip=* ssl_cert_name=def.pem ssl_ticket_enabled=0 ssl_ticket_number=3\n\
         ssl_cert_name=\"with space.pem\" ssl_key_dialog=\"exec:/bin/sh -c 'echo -n pass'\" dest_ip=[::1]:8443\n\
         dest_ip=192.0.2.7 action=tunnel\n\
         ssl_cert_name=/abs/x.pem ssl_key_dialog=builtin ssl_ocsp_name=x.ocsp\n",
    );
    let yaml = file(
        dir.path(),
        "ssl_multicert.yaml",
        "# Traffic Server 10\n\
         ssl_multicert:\n\
         \x20 - ssl_cert_name: a.rsa.pem,a.ec.pem\n\
         \x20   ssl_key_name: a.rsa.key,a.ec.key\n\
         \x20   ssl_ca_name: ca.pem\n\
         \x20   dest_ip: 10.1.2.3\n\
         \x20 - dest_ip: \"*\"\n\
         \x20   ssl_cert_name: def.pem\n\
         \x20   ssl_ticket_enabled: false\n\
         \x20   ssl_ticket_number: 3\n\
         \x20 - ssl_cert_name: with space.pem\n\
         \x20   ssl_key_dialog: \"exec:/bin/sh -c 'echo -n pass'\"\n\
         \x20   dest_ip: \"[::1]:8443\"\n\
         \x20 - dest_ip: 192.0.2.7\n\
         \x20   action: tunnel\n\
         \x20 - {ssl_cert_name: /abs/x.pem, ssl_key_dialog: builtin, ssl_ocsp_name: x.ocsp}\n",
    );
    assert_eq!(
        Source::detect(&yaml).unwrap(),
        Source::Multicert(yaml.clone())
    );
    let read = |p: &PathBuf| {
        Source::Multicert(p.clone())
            .specs(&SourceOptions::default())
            .unwrap()
    };
    let (from_config, problems) = read(&cfg);
    assert!(problems.is_empty(), "{problems:?}");
    let (from_yaml, problems) = read(&yaml);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(from_yaml.len(), 5);
    let lines: Vec<Option<u32>> = from_yaml.iter().map(|s| s.line).collect();
    assert_eq!(lines, [Some(3), Some(7), Some(11), Some(14), Some(16)]);
    for (y, c) in from_yaml.into_iter().zip(from_config) {
        let same = EntrySpec {
            origin: c.origin.clone(),
            line: c.line,
            ..y
        };
        assert_eq!(same, c);
    }
}

#[test]
fn multicert_yaml_problems_name_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = file(
        dir.path(),
        "edge.yml",
        "ssl_multicert:\n\
         \x20 - ssl_cert_name: ok.pem\n\
         \x20 - ssl_cert_name: [a.pem, b.pem]\n\
         \x20 - dest_ip: not-an-ip\n\
         \x20   ssl_cert_name: x.pem\n\
         \x20 - just text\n\
         \x20 - ssl_cert_name: y.pem\n\
         \x20   bogus_field: 1\n\
         other_key: 1\n",
    );
    let (specs, problems) = Source::detect(&yaml)
        .unwrap()
        .specs(&SourceOptions::default())
        .unwrap();
    assert_eq!(specs.len(), 2);
    let said: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    for (line, text) in [
        (3, "one value"),
        (4, "not an IP address"),
        (6, "must be a mapping"),
        (7, "bogus_field"),
        (9, "other_key"),
    ] {
        assert!(
            said.iter()
                .any(|s| s.contains(&format!("edge.yml:{line}:")) && s.contains(text)),
            "line {line} {text:?}: {said:#?}"
        );
    }
    // Not YAML at all: one error with its line, nothing loaded.
    let bad = file(dir.path(), "bad.yaml", "ssl_multicert:\n  - a: [unclosed\n");
    let (specs, problems) = Source::Multicert(bad)
        .specs(&SourceOptions::default())
        .unwrap();
    assert!(specs.is_empty());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].to_string().contains("bad.yaml:"),
        "{}",
        problems[0]
    );
}
