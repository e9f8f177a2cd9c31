//! Ticket keys derived from a secret the fleet shares (`[tickets] secret_file`, written by
//! `edgetls tickets gen-secret`): a ticket one edge issues resumes on another with the same
//! secret and not on one with another; a secret others can read, or too short, is refused.

mod common;

use common::{Proxy, origin, pki, s_client, start, text};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn edgetls(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_edgetls"))
        .args(args)
        .output()
        .unwrap()
}

fn config(dir: &Path, multicert: &Path, secret: &Path, name: &str) -> PathBuf {
    let (origin, _) = origin("ok\n");
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n\
             [certificates]\nsources = [\"{}\"]\n\n\
             [tickets]\nsecret_file = \"{}\"\nperiod = \"1h\"\n\n\
             [[routes]]\nfqdn = \"*\"\norigin = \"{origin}\"\n",
            multicert.display(),
            secret.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn edges_with_one_secret_resume_each_others_tickets() {
    let dir = tempfile::tempdir().unwrap();
    let multicert = pki(dir.path());
    let ca = dir.path().join("ca.pem");
    let (shared, other) = (
        dir.path().join("fleet.secret"),
        dir.path().join("other.secret"),
    );
    for s in [&shared, &other] {
        let out = edgetls(&["tickets", "gen-secret", "--out", s.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let meta = std::fs::metadata(s).unwrap();
        assert_eq!((meta.len(), meta.permissions().mode() & 0o777), (64, 0o600));
    }
    // A secret in use is not overwritten by mistake.
    let again = edgetls(&["tickets", "gen-secret", "--out", shared.to_str().unwrap()]);
    assert!(!again.status.success() && text(&again.stderr).contains("fleet.secret"));

    let a = start(&config(dir.path(), &multicert, &shared, "a"));
    let b = start(&config(dir.path(), &multicert, &shared, "b"));
    let c = start(&config(dir.path(), &multicert, &other, "c"));
    let name = "site000001.demo.test";
    let sess = dir.path().join("a.sess");
    let resume = |p: &Proxy| {
        s_client(
            p,
            &ca,
            name,
            &["-tls1_2", "-sess_in", sess.to_str().unwrap()],
        )
        .1
    };
    let (ok, out) = s_client(
        &a,
        &ca,
        name,
        &["-tls1_2", "-sess_out", sess.to_str().unwrap()],
    );
    assert!(ok && out.contains("\nNew, TLSv1.2"), "{out}");
    // The ticket (not a session ID: B has no session of A's) resumes on B; not on C.
    let on_b = resume(&b);
    assert!(on_b.contains("\nReused, TLSv1.2"), "{on_b}");
    let on_c = resume(&c);
    assert!(on_c.contains("\nNew, TLSv1.2"), "{on_c}");
}

#[test]
fn a_secret_others_can_read_or_a_short_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let multicert = pki(dir.path());
    let secret = dir.path().join("fleet.secret");
    std::fs::write(&secret, [7u8; 64]).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = config(dir.path(), &multicert, &secret, "a");
    let run = || edgetls(&["proxy", "--config", cfg.to_str().unwrap()]);
    let out = run();
    let err = text(&out.stderr);
    assert!(
        !out.status.success() && err.contains("fleet.secret") && err.contains("chmod 600"),
        "{err}"
    );
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&secret, [7u8; 16]).unwrap();
    let out = run();
    let err = text(&out.stderr);
    assert!(
        !out.status.success() && err.contains("at least 32"),
        "{err}"
    );
    // Both kinds of source at once is a configuration error with its line.
    let mixed = dir.path().join("mixed.toml");
    let text_cfg = std::fs::read_to_string(&cfg).unwrap().replace(
        "period = \"1h\"",
        "period = \"1h\"\nfile = \"x\"\nformat = \"haproxy\"",
    );
    std::fs::write(&mixed, text_cfg).unwrap();
    let out = edgetls(&["proxy", "--config", mixed.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert!(
        err.contains("mixed.toml:") && err.contains("secret_file"),
        "{err}"
    );
    // A period so short that the grace window would hold tens of thousands of keys.
    let short = dir.path().join("short.toml");
    let text_cfg = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("period = \"1h\"", "period = \"1s\"");
    std::fs::write(&short, text_cfg).unwrap();
    let out = edgetls(&["proxy", "--config", short.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert!(
        out.status.code() == Some(2)
            && err.contains("short.toml:")
            && err.contains("tickets.period: 1s: at least 1m"),
        "{err}"
    );
}
