//! The key server's faults as the proxy says them: connected, down (killed), back — each said
//! once at the default level, whatever the number of workers and connections, and counted in
//! `keyless_client_connections_up`.

mod common;

use common::{eventually, keyless_config, metric, metrics, pki, start};
use edgetls_keyserver::{Authz, ServerOptions};
use edgetls_testkit::{setup, start as start_keyserver, start_on};
use std::time::Duration;

#[test]
fn a_key_server_going_down_and_coming_back_is_said_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let multicert = pki(dir.path());
    let (kit, _keys) = setup();
    let ks = start_keyserver(&kit, Authz::open(), ServerOptions::default());
    let addr = ks.addr.to_string();
    let remote = dir.path().join("remote");
    std::fs::create_dir(&remote).unwrap();
    let config = keyless_config(dir.path(), &multicert, &remote, &kit, ks.addr, 2);
    let p = start(&config);
    let log = || p.stderr.lock().unwrap().clone();
    let said = |what: &str| log().matches(&format!("key server {addr}: {what}")).count();
    let up = || {
        metric(
            &metrics(&p),
            &format!("keyless_client_connections_up{{server=\"{addr}\"}}"),
        )
        .unwrap_or(-1.0)
    };
    // Two workers, two connections each.
    assert!(
        eventually(Duration::from_secs(5), || up() == 4.0),
        "{}",
        log()
    );
    assert_eq!(said("connected"), 1, "{}", log());

    ks.kill();
    assert!(
        eventually(Duration::from_secs(5), || up() == 0.0),
        "{}",
        log()
    );
    assert!(
        eventually(Duration::from_secs(2), || said("down") == 1),
        "{}",
        log()
    );
    // The reconnect attempts that fail while it is down are not said again.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(said("down") + said("cannot connect"), 1, "{}", log());

    let _back = start_on(&kit, &addr, Authz::open(), ServerOptions::default());
    assert!(
        eventually(Duration::from_secs(15), || up() == 4.0),
        "{}",
        log()
    );
    assert_eq!(said("back after"), 1, "{}", log());
    assert_eq!(said("down"), 1, "{}", log());
}
