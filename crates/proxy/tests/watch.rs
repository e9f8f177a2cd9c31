//! The proxy's file watcher: it reloads for the files the proxy reads and only for those; a
//! replaced certificate is read alone; files added to and removed from a certificate directory
//! are taken into account.

mod common;

use common::{eventually, pki, served_cert, start};
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
    // changes.
    for i in 0..5 {
        std::fs::write(dir.path().join("edgetls.log"), format!("line {i}\n")).unwrap();
        std::fs::write(certs.join(".editor-swap"), "x").unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(reloads(), 0, "{}", log());

    // A certificate replaced by a rename: that entry alone is read again, and served.
    let name = "site000002.demo.test";
    let file = format!("certs/{name}.pem");
    let before = served_cert(p.addr, name);
    let staged = dir.path().join("staged.pem");
    std::fs::copy(other.path().join(&file), &staged).unwrap();
    std::fs::rename(&staged, dir.path().join(&file)).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || reloads() == 1),
        "{}",
        log()
    );
    assert!(log().contains("(0 failed, 1 read again)"), "{}", log());
    let replaced = served_cert(p.addr, name);
    assert_ne!(before, replaced, "the new certificate is served");

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
