//! The proxy's file watcher: it reloads for the files the proxy reads and only for those; a
//! replaced certificate is read alone; files added to and removed from a certificate directory
//! are taken into account.

mod common;

use common::{eventually, metric, metrics, pki, s_client, served_cert, start};
use std::time::Duration;

#[test]
fn the_watcher_reloads_for_the_files_the_proxy_reads_and_only_for_those() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let other = tempfile::tempdir().unwrap();
    pki(other.path()); // same names, another CA and other keys
    let certs = dir.path().join("certs");
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n[certificates]\nsources = [\"{}\"]\n\n\
         [[routes]]\nfqdn = \"*\"\norigin = \"127.0.0.1:9\"\n",
        certs.display()
    );
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, config).unwrap();
    let p = start(&path);
    let log = || p.stderr.lock().unwrap().clone();
    let reloads = || log().matches("reloaded (file change)").count();

    // A log written next to the configuration, and a dotfile among the certificates, are not
    // changes; then a certificate is replaced by a rename. The watcher sees events in order, so
    // once the replaced certificate is served every earlier write has been looked at: exactly
    // one reload, reading that entry alone, means the others were ignored.
    let name = "site000002.demo.test";
    let file = format!("certs/{name}.pem");
    let before = served_cert(p.addr, name);
    for i in 0..5 {
        std::fs::write(dir.path().join("edgetls.log"), format!("line {i}\n")).unwrap();
        std::fs::write(certs.join(".editor-swap"), "x").unwrap();
    }
    let staged = dir.path().join("staged.pem");
    std::fs::copy(other.path().join(&file), &staged).unwrap();
    std::fs::rename(&staged, dir.path().join(&file)).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || served_cert(p.addr, name)
            != before),
        "{}",
        log()
    );
    let replaced = served_cert(p.addr, name);
    assert_eq!(reloads(), 1, "{}", log());
    assert!(
        log().contains("(0 failed, 0 kept their previous version, 1 read again)"),
        "{}",
        log()
    );

    // Removed from the directory: the name is no longer its own (the default answers).
    let default = served_cert(p.addr, "default.demo.test");
    std::fs::remove_file(dir.path().join(&file)).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || reloads() == 2),
        "{}",
        log()
    );
    assert_eq!(served_cert(p.addr, name), default);

    // Added back: a full reload lists the directory and serves it again.
    std::fs::copy(other.path().join(&file), dir.path().join(&file)).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || served_cert(p.addr, name)
            == replaced),
        "{}",
        log()
    );
}

/// A crt-list line's options apply to the names of its certificate: when the file is replaced
/// by one for another name, the options follow (the policy is rebuilt with the entry).
#[test]
fn crt_list_options_follow_a_replaced_certificate_to_its_new_names() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let other = tempfile::tempdir().unwrap();
    pki(other.path());
    let cert = dir.path().join("certs/site000002.demo.test.pem");
    let list = dir.path().join("edge.crt-list");
    std::fs::write(&list, format!("{} [alpn h2]\n", cert.display())).unwrap();
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n[certificates]\nsources = [\"{}\"]\n\n\
         [[routes]]\nfqdn = \"*\"\norigin = \"127.0.0.1:9\"\n",
        list.display()
    );
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, config).unwrap();
    let p = start(&path);
    let ca = dir.path().join("ca.pem");
    let alpn = |name: &str| {
        let (_, out) = s_client(&p, &ca, name, &["-alpn", "h2,http/1.1"]);
        out.lines()
            .find_map(|l| l.strip_prefix("ALPN protocol: "))
            .map(str::to_string)
    };
    assert_eq!(alpn("site000002.demo.test").as_deref(), Some("h2"));

    // The file now holds the certificate of another name (from another CA: trust both).
    let both = dir.path().join("both.pem");
    let cas = std::fs::read_to_string(&ca).unwrap()
        + &std::fs::read_to_string(other.path().join("ca.pem")).unwrap();
    std::fs::write(&both, cas).unwrap();
    let staged = dir.path().join("staged.pem");
    std::fs::copy(other.path().join("certs/site000003.demo.test.pem"), &staged).unwrap();
    std::fs::rename(&staged, &cert).unwrap();
    let log = || p.stderr.lock().unwrap().clone();
    assert!(
        eventually(Duration::from_secs(5), || log().contains("1 read again")),
        "{}",
        log()
    );
    let (_, out) = s_client(&p, &both, "site000003.demo.test", &["-alpn", "h2,http/1.1"]);
    assert!(out.contains("ALPN protocol: h2"), "{out}");
}

/// Paths relative to the configuration file, and the configuration given by a relative path
/// (`--config proxy.toml` from its directory): a certificate renamed into the source directory
/// and an edited policy file are picked up, as with absolute paths.
#[test]
fn relative_paths_are_watched_too() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let other = tempfile::tempdir().unwrap();
    pki(other.path());
    std::fs::write(
        dir.path().join("policy.toml"),
        "[[sni]]\nfqdn = \"*\"\nalpn = [\"http/1.1\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("proxy.toml"),
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n[certificates]\nsources = [\"certs\"]\n\n\
         [policy]\nfile = \"policy.toml\"\n\n[[routes]]\nfqdn = \"*\"\norigin = \"127.0.0.1:9\"\n",
    )
    .unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_edgetls"));
    cmd.current_dir(dir.path());
    let p = common::start_command(cmd, std::path::Path::new("proxy.toml"));
    let log = || p.stderr.lock().unwrap().clone();
    let reloads = || log().matches("reloaded (file change)").count();

    let name = "site000002.demo.test";
    let file = format!("certs/{name}.pem");
    let before = served_cert(p.addr, name);
    let staged = dir.path().join("staged.pem");
    std::fs::copy(other.path().join(&file), &staged).unwrap();
    std::fs::rename(&staged, dir.path().join(&file)).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || served_cert(p.addr, name)
            != before),
        "the renamed certificate was not picked up: {}",
        log()
    );
    let after_cert = reloads();
    assert_eq!(after_cert, 1, "{}", log());
    assert!(
        log().contains("(0 failed, 0 kept their previous version, 1 read again)"),
        "the renamed file alone was read again: {}",
        log()
    );

    std::fs::write(
        dir.path().join("policy.toml"),
        "[[sni]]\nfqdn = \"*\"\nalpn = [\"h2\", \"http/1.1\"]\n",
    )
    .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || reloads() > after_cert),
        "the edited policy was not picked up: {}",
        log()
    );
}

/// A certificate written in place, badly, at every stage a writer can be caught in: each bad
/// write is a problem line naming the file, a `failed` reload and a certificate problem, and the
/// previous certificate keeps serving; the good write clears the problem.
#[test]
fn every_bad_write_is_reported_and_the_previous_certificate_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let certs = dir.path().join("certs");
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\nmetrics = \"127.0.0.1:0\"\n\n\
         [certificates]\nsources = [\"{}\"]\n\n[[routes]]\nfqdn = \"*\"\norigin = \"127.0.0.1:9\"\n",
        certs.display()
    );
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, config).unwrap();
    let p = start(&path);
    let log = || p.stderr.lock().unwrap().clone();
    let series = |s: &str| metric(&metrics(&p), s).unwrap_or(0.0);
    let name = "site000003.demo.test";
    let file = certs.join(format!("{name}.pem"));
    let good = std::fs::read_to_string(&file).unwrap();
    let served = served_cert(p.addr, name);
    assert_eq!(series("edgetls_certificate_problems"), 0.0);

    let cert_end = good.find("-----END CERTIFICATE-----").unwrap() + 26;
    let bad_writes: [(&str, String); 4] = [
        (
            "cut inside the certificate",
            good[..cert_end / 2].to_string(),
        ),
        ("the certificate, no key yet", good[..cert_end].to_string()),
        ("garbage", "not a certificate at all\n".repeat(10)),
        ("empty", String::new()),
    ];
    for (i, (what, body)) in bad_writes.iter().enumerate() {
        std::fs::write(&file, body).unwrap();
        let failed = (i + 1) as f64;
        assert!(
            eventually(Duration::from_secs(5), || series(
                "edgetls_reloads_total{result=\"failed\"}"
            ) == failed),
            "{what}: no failed reload counted\n{}",
            log()
        );
        assert_eq!(series("edgetls_certificate_problems"), 1.0, "{what}");
        let problem_lines = log()
            .lines()
            .filter(|l| l.contains("WARN") && l.contains(&*file.to_string_lossy()))
            .count();
        assert!(
            problem_lines > i,
            "{what}: no problem line naming the file\n{}",
            log()
        );
        assert_eq!(
            served_cert(p.addr, name),
            served,
            "{what}: the old certificate went"
        );
    }
    assert_eq!(
        series("edgetls_reloads_total{result=\"ok\"}"),
        0.0,
        "{}",
        log()
    );

    // Written whole again: served, and nothing is wrong any more.
    std::fs::write(&file, &good).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || series(
            "edgetls_reloads_total{result=\"ok\"}"
        ) == 1.0),
        "{}",
        log()
    );
    assert_eq!(series("edgetls_certificate_problems"), 0.0, "{}", log());
    assert_eq!(served_cert(p.addr, name), served);
}
