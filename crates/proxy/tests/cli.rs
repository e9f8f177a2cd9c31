//! The `edgetls` binary as an operator runs it: `certs check`, `certs lookup`, `tickets`.

use std::path::PathBuf;
use std::process::{Command, Output};

fn edgetls(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgetls"))
        .args(args)
        .output()
        .expect("run edgetls")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A generated PKI: `names` sites, a wildcard, a dual RSA+ECDSA name and a dest_ip=* default.
fn pki(names: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = edgetls(&[
        "demo",
        "--generate-only",
        "--names",
        &names.to_string(),
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = dir.path().join("ssl_multicert.config");
    (dir, config)
}

#[test]
fn check_exits_0_when_all_load_1_when_some_fail_2_when_the_source_is_unusable() {
    let (dir, config) = pki(30);
    let out = edgetls(&["certs", "check", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("entries: 33 loaded, 0 failed (of 33 configured)"),
        "{stdout}"
    );
    assert!(stdout.contains("names: 62 exact, 1 wildcard"), "{stdout}");

    // Break one file: that entry fails, is named on stderr, and the 32 others still load.
    let broken = dir.path().join("certs/site000004.demo.test.pem");
    std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
    let out = edgetls(&["certs", "check", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("site000004.demo.test.pem") && stderr.contains("truncated"),
        "{stderr}"
    );
    assert!(text(&out.stdout).contains("32 loaded, 1 failed"));

    let out = edgetls(&[
        "certs",
        "check",
        dir.path().join("nope.config").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nope.config"));
}

#[test]
fn check_json_is_machine_readable() {
    let (_dir, config) = pki(5);
    let out = edgetls(&["certs", "check", "--json", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["loaded"], 8);
    assert_eq!(v["failed"], 0);
    assert!(v["elapsed"].as_f64().unwrap() > 0.0);
    assert!(v["peak_rss_kib"].as_u64().unwrap() > 0);
    assert!(
        v["default"]
            .as_str()
            .unwrap()
            .ends_with("default.demo.test.pem")
    );
}

#[test]
fn lookup_prints_name_file_and_how_for_each_name() {
    let (dir, config) = pki(10);
    let out = edgetls(&[
        "certs",
        "lookup",
        config.to_str().unwrap(),
        "SITE000003.demo.test.",
        "x.wild.demo.test",
        "a.b.wild.demo.test",
        "unknown.example",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let certs = dir.path().join("certs");
    let want = format!(
        "SITE000003.demo.test. {c}/site000003.demo.test.pem exact\n\
         x.wild.demo.test {c}/wild.demo.test.pem wildcard\n\
         a.b.wild.demo.test {c}/default.demo.test.pem default\n\
         unknown.example {c}/default.demo.test.pem default\n",
        c = certs.display()
    );
    assert_eq!(text(&out.stdout), want);

    // Without a default: a crt-list filtered to one name, no implicit default in the config.
    let list = dir.path().join("list");
    std::fs::write(
        &list,
        "certs/site000001.demo.test.pem [alpn h2] only.demo.test\n",
    )
    .unwrap();
    let out = edgetls(&[
        "certs",
        "lookup",
        "--crt-list",
        list.to_str().unwrap(),
        "only.demo.test",
        "site000001.demo.test",
    ]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!(
            "only.demo.test {}/site000001.demo.test.pem exact\n",
            certs.display()
        )),
        "{stdout}"
    );
    // The filter replaces the certificate's own names; the single entry is the implicit default.
    assert!(
        stdout.contains("site000001.demo.test") && stdout.ends_with(" default\n"),
        "{stdout}"
    );
}

#[test]
fn lookup_by_local_address() {
    let (dir, _) = pki(3);
    let cfg = dir.path().join("ip.config");
    std::fs::write(&cfg, "dest_ip=192.0.2.10:443 ssl_cert_name=certs/site000001.demo.test.pem\ndest_ip=192.0.2.10 ssl_cert_name=certs/site000002.demo.test.pem\n").unwrap();
    let lookup = |ip: &str| {
        text(
            &edgetls(&[
                "certs",
                "lookup",
                "--ip",
                ip,
                cfg.to_str().unwrap(),
                "other.example",
            ])
            .stdout,
        )
    };
    // Three fields, as documented: the name, the file, how it matched.
    let line = |ip: &str| {
        lookup(ip)
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    for (ip, file) in [
        ("192.0.2.10:443", "site000001"),
        ("192.0.2.10:8443", "site000002"),
    ] {
        let lines = line(ip);
        assert_eq!(lines.len(), 1, "{ip}: {lines:?}");
        assert_eq!(lines[0].len(), 3, "{ip}: {lines:?}");
        assert_eq!(lines[0][0], "other.example");
        assert!(
            lines[0][1].ends_with(&format!("{file}.demo.test.pem")),
            "{ip}: {lines:?}"
        );
        assert_eq!(lines[0][2], "ip");
    }
    assert_eq!(lookup("192.0.2.99"), "other.example none\n");
}

#[test]
fn check_keyless_accepts_certificates_whose_key_is_on_a_key_server() {
    let (dir, config) = pki(5);
    // Keep only the certificates of one bundle: its key now lives elsewhere.
    let bundle = dir.path().join("certs/site000002.demo.test.pem");
    let pem = std::fs::read_to_string(&bundle).unwrap();
    let certs: String = pem
        .split_inclusive("-----END CERTIFICATE-----\n")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .collect();
    assert!(!certs.contains("PRIVATE KEY"));
    std::fs::write(&bundle, certs).unwrap();

    let out = edgetls(&["certs", "check", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("site000002.demo.test.pem") && stderr.contains("no key server configured"),
        "{stderr}"
    );
    let out = edgetls(&["certs", "check", "--keyless", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("8 loaded, 0 failed"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn tickets_gen_and_inspect_in_every_format_never_print_secrets() {
    let dir = tempfile::tempdir().unwrap();
    for (format, count, size, encrypts) in [
        ("ats", 3, "aes128", 0),
        ("nginx48", 1, "aes128", 0),
        ("nginx80", 1, "aes256", 0),
        ("haproxy", 3, "aes256", 1),
    ] {
        let path = dir.path().join(format);
        let out = edgetls(&[
            "tickets",
            "gen",
            "--format",
            format,
            "--count",
            &count.to_string(),
            "--out",
            path.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{format}: {}", text(&out.stderr));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let out = edgetls(&[
            "tickets",
            "inspect",
            path.to_str().unwrap(),
            "--format",
            format,
        ]);
        assert!(out.status.success(), "{format}: {}", text(&out.stderr));
        let lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
        assert_eq!(lines.len(), count, "{format}: {lines:?}");
        for (i, line) in lines.iter().enumerate() {
            let words: Vec<&str> = line.split(' ').collect();
            assert_eq!(
                words[0].len(),
                32,
                "{format}: a 16-byte name in hex: {line}"
            );
            assert!(
                words[0]
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
            assert_eq!(words[1], size, "{format}: {line}");
            assert_eq!(
                words.get(2) == Some(&"encrypts"),
                i == encrypts,
                "{format}: {line}"
            );
            assert!(words.len() <= 3, "nothing else is printed: {line}");
        }
    }
    // Stdout works too; wrong sizes and formats are clear errors naming the file.
    let out = edgetls(&["tickets", "gen", "--format", "nginx80"]);
    assert_eq!(out.stdout.len(), 80);
    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, [0u8; 47]).unwrap(); // less than one 48-byte record
    let out = edgetls(&[
        "tickets",
        "inspect",
        bad.to_str().unwrap(),
        "--format",
        "ats",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("bad.key"),
        "{}",
        text(&out.stderr)
    );
    let out = edgetls(&[
        "tickets",
        "inspect",
        bad.to_str().unwrap(),
        "--format",
        "nginx",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("nginx48"),
        "{}",
        text(&out.stderr)
    );
    let out = edgetls(&["tickets", "gen", "--format", "nginx48", "--count", "2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("one key per file"),
        "{}",
        text(&out.stderr)
    );
}

/// `haproxy -c` on a frontend that uses `file` as its `tls-ticket-keys`: (accepted, output).
fn haproxy_accepts_ticket_keys(dir: &std::path::Path, file: &std::path::Path) -> (bool, String) {
    let crt = dir.join("crt.pem");
    if !crt.exists() {
        let out = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args([
                "-nodes",
                "-subj",
                "/CN=tickets.test",
                "-days",
                "1",
                "-keyout",
            ])
            .arg(dir.join("k.pem"))
            .arg("-out")
            .arg(dir.join("c.pem"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let pem = std::fs::read_to_string(dir.join("c.pem")).unwrap()
            + &std::fs::read_to_string(dir.join("k.pem")).unwrap();
        std::fs::write(&crt, pem).unwrap();
    }
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
             frontend edge\n  bind 127.0.0.1:1 ssl crt {} tls-ticket-keys {}\n  default_backend o\n\
             backend o\n  server o 127.0.0.1:9\n",
            crt.display(),
            file.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(&cfg)
        .output()
        .expect("haproxy (Debian package `haproxy`; .ci/run installs it)");
    (
        out.status.success(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

#[test]
fn tickets_gen_for_haproxy_writes_a_file_haproxy_accepts_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tickets.keys");
    let out = edgetls(&[
        "tickets",
        "gen",
        "--format",
        "haproxy",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (ok, said) = haproxy_accepts_ticket_keys(dir.path(), &file);
    assert!(ok, "haproxy -c refused the default file: {said}");
    let keys = std::fs::read_to_string(&file).unwrap();
    assert_eq!(keys.lines().count(), 3, "{keys}");

    // Fewer than HAProxy takes (to append to a file, when rotating) comes with a warning: on
    // its own such a file is what HAProxy refuses (a one-key file was the old default).
    let two = dir.path().join("two.keys");
    let out = edgetls(&[
        "tickets",
        "gen",
        "--format",
        "haproxy",
        "--count",
        "2",
        "--out",
        two.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("fewer than 3 keys"),
        "{}",
        text(&out.stderr)
    );
    let (ok, said) = haproxy_accepts_ticket_keys(dir.path(), &two);
    assert!(!ok && said.contains("at least 3 keys"), "{said}");
}
