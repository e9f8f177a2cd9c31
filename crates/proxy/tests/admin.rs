//! The runtime certificate API (`[admin] socket`) through its CLI, `edgetls certs
//! add|replace|remove|show --socket`: certificates added, replaced and removed on a running
//! proxy are served at once, survive a restart, and bad input changes nothing.

mod common;

use common::{served_cert, text};
use openssl::pkey::PKey;
use openssl::x509::X509;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A leaf for `names` signed by the test CA, valid from `from` to `until` days from now, with a
/// new P-256 key; written as `stem.pem` (leaf + CA) and `stem.key`.
fn issue(
    pki: &edgetls_testkit::Pki,
    dir: &Path,
    stem: &str,
    names: &[&str],
    from: i64,
    until: i64,
) -> (PathBuf, PathBuf, Vec<u8>) {
    use edgetls_testkit::certs::{leaf_for, unix_now};
    let ca = X509::from_pem(&std::fs::read(pki.path("ca.pem")).unwrap()).unwrap();
    let ca_key = PKey::private_key_from_pem(&std::fs::read(pki.path("ca.key")).unwrap()).unwrap();
    let now = unix_now();
    let (leaf, key) = leaf_for(
        names,
        now + from * 86_400,
        now + until * 86_400,
        Some((&ca, &ca_key)),
    );
    let (cert, keyf) = (
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}.key")),
    );
    let mut pem = leaf.to_pem().unwrap();
    pem.extend(ca.to_pem().unwrap());
    std::fs::write(&cert, pem).unwrap();
    std::fs::write(&keyf, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (cert, keyf, leaf.to_der().unwrap())
}

fn certs(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_edgetls"))
        .arg("certs")
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        text(&o.stdout),
        text(&o.stderr),
    )
}

fn setup(dir: &Path) -> PathBuf {
    let multicert = common::pki(&dir.join("demo"));
    let (origin, _) = common::origin("ok\n");
    let cfg = dir.join("proxy.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n\
             [certificates]\nsources = [\"{}\"]\n\n\
             [admin]\nsocket = \"admin.sock\"\nstorage = \"managed\"\n\n\
             [[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n",
            multicert.display()
        ),
    )
    .unwrap();
    cfg
}

/// The proxy of `cfg`, once its admin socket (beside `cfg`) answers.
fn running(cfg: &Path) -> (common::Proxy, PathBuf) {
    let proxy = common::start(cfg);
    let sock = cfg.with_file_name("admin.sock");
    assert!(common::eventually(
        std::time::Duration::from_secs(5),
        || sock.exists()
    ));
    (proxy, sock)
}

#[test]
fn added_replaced_and_removed_certificates_are_served_at_once_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (pki, _) = edgetls_testkit::setup();
    let cfg = setup(d);
    let (proxy, sock) = running(&cfg);
    let sock_s = sock.to_str().unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let default_leaf = served_cert(proxy.addr, "new.test");

    let (c1, k1, leaf1) = issue(&pki, d, "one", &["new.test"], -1, 30);
    let (code, out, err) = certs(&[
        "add",
        "--socket",
        sock_s,
        "new.test",
        "--cert",
        c1.to_str().unwrap(),
        "--key",
        k1.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("in effect in"), "{out}");
    assert_eq!(served_cert(proxy.addr, "new.test"), leaf1, "served at once");
    let (code, out, _) = certs(&["show", "--socket", sock_s, "new.test"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("managed/new.test.pem") && out.contains("managed"),
        "{out}"
    );

    let (c2, k2, leaf2) = issue(&pki, d, "two", &["new.test", "www.new.test"], -1, 30);
    let (code, out, err) = certs(&[
        "replace",
        "--socket",
        sock_s,
        "new.test",
        "--cert",
        c2.to_str().unwrap(),
        "--key",
        k2.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(served_cert(proxy.addr, "new.test"), leaf2);
    assert_eq!(served_cert(proxy.addr, "www.new.test"), leaf2);

    // Written through: a new process serves it from the file.
    drop(proxy);
    let proxy = common::start(&cfg);
    assert_eq!(served_cert(proxy.addr, "new.test"), leaf2);
    assert!(common::eventually(
        std::time::Duration::from_secs(5),
        || { certs(&["show", "--socket", sock_s, "new.test"]).0 == 0 }
    ));

    let (code, out, err) = certs(&["remove", "--socket", sock_s, "new.test"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(served_cert(proxy.addr, "new.test"), default_leaf);
    assert!(!d.join("managed/new.test.pem").exists());
}

#[test]
fn bad_input_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (pki, _) = edgetls_testkit::setup();
    let cfg = setup(d);
    let (proxy, sock) = running(&cfg);
    let sock_s = sock.to_str().unwrap();
    let (c, k, leaf) = issue(&pki, d, "good", &["keep.test"], -1, 30);
    let (code, _, err) = certs(&[
        "add",
        "--socket",
        sock_s,
        "keep.test",
        "--cert",
        c.to_str().unwrap(),
        "--key",
        k.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let stored = std::fs::read(d.join("managed/keep.test.pem")).unwrap();

    let (_, wrong_key, _) = issue(&pki, d, "other", &["keep.test"], -1, 30);
    let (expired, expired_key, _) = issue(&pki, d, "expired", &["keep.test"], -60, -1);
    let (future, future_key, _) = issue(&pki, d, "future", &["keep.test"], 2, 30);
    let (elsewhere, elsewhere_key, _) = issue(&pki, d, "elsewhere", &["other.test"], -1, 30);
    let garbage = d.join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n").unwrap();
    // A chain whose second certificate did not issue the first.
    let (_, rogue_ca) = edgetls_testkit::certs::self_signed("rogue CA");
    let _ = rogue_ca;
    let broken = d.join("broken.pem");
    let mut body = std::fs::read(&c).unwrap();
    let cut = String::from_utf8_lossy(&body)
        .find("-----END CERTIFICATE-----")
        .unwrap()
        + 26;
    body.truncate(cut);
    body.extend(
        edgetls_testkit::certs::self_signed("rogue CA")
            .0
            .to_pem()
            .unwrap(),
    );
    std::fs::write(&broken, body).unwrap();
    let s = |p: &PathBuf| p.to_str().unwrap().to_owned();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![s(&c), s(&wrong_key)], "does not match"),
        (vec![s(&expired), s(&expired_key)], "expired"),
        (vec![s(&future), s(&future_key)], "not valid yet"),
        (
            vec![s(&elsewhere), s(&elsewhere_key)],
            "does not name keep.test",
        ),
        (vec![s(&garbage), s(&k)], "not PEM"),
        (vec![s(&broken), s(&k)], "chain is broken"),
        (vec![s(&c), s(&garbage)], "not a PEM private key"),
    ];
    for (files, says) in &cases {
        let (code, out, err) = certs(&[
            "replace",
            "--socket",
            sock_s,
            "keep.test",
            "--cert",
            &files[0],
            "--key",
            &files[1],
        ]);
        assert_eq!(code, 1, "{says}: {out}{err}");
        assert!(err.contains(says), "{says}: {err}");
        assert_eq!(
            std::fs::read(d.join("managed/keep.test.pem")).unwrap(),
            stored,
            "{says}: the file is untouched"
        );
        assert_eq!(
            served_cert(proxy.addr, "keep.test"),
            leaf,
            "{says}: the certificate in force serves"
        );
    }
    // Add over a managed name, replace or remove a name not managed, bad names, no ACME.
    let (code, _, err) = certs(&[
        "add",
        "--socket",
        sock_s,
        "keep.test",
        "--cert",
        &s(&c),
        "--key",
        &s(&k),
    ]);
    assert!(code == 1 && err.contains("replace it"), "{err}");
    let (code, _, err) = certs(&[
        "replace",
        "--socket",
        sock_s,
        "absent.test",
        "--cert",
        &s(&c),
        "--key",
        &s(&k),
    ]);
    assert!(code == 1 && err.contains("add it"), "{err}");
    let (code, _, err) = certs(&["remove", "--socket", sock_s, "../../etc/passwd"]);
    assert!(code == 1 && err.contains("not a host name"), "{err}");
    let (code, _, err) = certs(&["renew", "--socket", sock_s, "keep.test"]);
    assert!(code == 1 && err.contains("no [acme]"), "{err}");
    // Garbage on the socket is answered with an error, and the proxy serves on.
    let mut raw = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    use std::io::{Read, Write};
    raw.write_all(b"\x00\xffnot json\n").unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert!(answer.contains("\"ok\":false"), "{answer}");
    assert_eq!(served_cert(proxy.addr, "keep.test"), leaf);
}

#[test]
fn the_http_endpoint_answers_bearers_of_the_token_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = setup(d);
    let port = edgetls_testkit::net::free_port();
    let token = "t0ken-t0ken-t0ken-t0ken-t0ken-t0ken";
    std::fs::write(d.join("admin.token"), format!("{token}\n")).unwrap();
    std::fs::set_permissions(
        d.join("admin.token"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let body = std::fs::read_to_string(&cfg).unwrap().replace(
        "storage = \"managed\"",
        &format!(
            "storage = \"managed\"\nhttp = \"127.0.0.1:{port}\"\ntoken_file = \"admin.token\""
        ),
    );
    std::fs::write(&cfg, &body).unwrap();
    // A token file others can read is refused at start.
    let o = Command::new(env!("CARGO_BIN_EXE_edgetls"))
        .args(["proxy", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("chmod 600"), "{}", text(&o.stderr));
    std::fs::set_permissions(
        d.join("admin.token"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    // Plain HTTP with a token is refused off loopback.
    let open = d.join("open.toml");
    std::fs::write(&open, body.replace("127.0.0.1:", "0.0.0.0:")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_edgetls"))
        .args(["proxy", "--check", "--config"])
        .arg(&open)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("loopback"), "{}", text(&o.stderr));
    let _proxy = common::start(&cfg);
    edgetls_testkit::wait::listening(port, "the admin HTTP endpoint");
    let curl = |args: &[&str]| -> String {
        let o = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
            ])
            .args(args)
            .arg(format!("http://127.0.0.1:{port}/"))
            .output()
            .unwrap();
        text(&o.stdout)
    };
    let bearer = format!("Authorization: Bearer {token}");
    let show = r#"{"op":"show","name":"default.demo.test"}"#;
    assert_eq!(curl(&["-H", &bearer, "-d", show]), "200");
    assert_eq!(curl(&["-d", show]), "401", "no token");
    assert_eq!(
        curl(&["-H", "Authorization: Bearer wrong", "-d", show]),
        "401"
    );
    assert_eq!(curl(&["-H", &bearer]), "405", "GET");
    assert_eq!(curl(&["-H", &bearer, "-d", "garbage"]), "400");
    assert_eq!(
        curl(&[
            "-H",
            &bearer,
            "-d",
            r#"{"op":"remove","name":"absent.test"}"#
        ]),
        "422"
    );
    // The answer itself, through the token.
    let o = Command::new("curl")
        .args(["-s", "--max-time", "5", "-H", &bearer, "-d", show])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .unwrap();
    assert!(
        text(&o.stdout).contains("default.demo.test"),
        "{}",
        text(&o.stdout)
    );
}

/// An admin socket at the control socket's path (`admin.toml` beside `admin.sock`) would take
/// over the socket upgrades use: refused at load, naming both.
#[test]
fn an_admin_socket_on_the_control_sockets_path_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let cfg = setup(d.path());
    let clash = d.path().join("admin.toml");
    std::fs::rename(&cfg, &clash).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_edgetls"))
        .args(["proxy", "--check", "--config"])
        .arg(&clash)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("admin.socket") && err.contains("control socket"),
        "{err}"
    );
    // The same file under another name loads.
    std::fs::rename(&clash, &cfg).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_edgetls"))
        .args(["proxy", "--check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
