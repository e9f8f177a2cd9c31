//! Changes the watcher must not miss: a certificate renamed into place at any moment of the
//! proxy's start-up, and files swapped through a symbolic link (Kubernetes' `..data`), for
//! certificates and for the configuration.

mod common;

use common::{curl, eventually, origin, served_cert, start, text};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The demo's files with `names` certificates.
fn demo_files(dir: &Path, names: usize) {
    let out = Command::new(env!("CARGO_BIN_EXE_edgetls"))
        .args(["demo", "--generate-only", "--names", &names.to_string()])
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn config(dir: &Path, sources: &str) -> std::path::PathBuf {
    let path = dir.join("proxy.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n[certificates]\nsources = [{sources}]\n\n\
             [[routes]]\nfqdn = \"*\"\norigin = \"127.0.0.1:9\"\n"
        ),
    )
    .unwrap();
    path
}

/// A certificate renamed over its file at moments spread from the process's start to after it
/// listens — before, while and after its directory is read — is served within a few seconds
/// of listening every time (this is a debug build: `cargo xtask bench --suite restarts`
/// measures the time at 100,000 names).
#[test]
fn a_certificate_renamed_in_at_any_moment_of_start_up_is_served() {
    let dir = tempfile::tempdir().unwrap();
    demo_files(dir.path(), 2000);
    let other = tempfile::tempdir().unwrap();
    demo_files(other.path(), 5); // the same first names, other keys
    let certs = dir.path().join("certs");
    let config = config(dir.path(), &format!("\"{}\"", certs.display()));
    let name = "site000001.demo.test";
    let file = certs.join(format!("{name}.pem"));
    let versions = [
        std::fs::read(&file).unwrap(),
        std::fs::read(other.path().join(format!("certs/{name}.pem"))).unwrap(),
    ];
    let leaf = |pem: &[u8]| {
        openssl::x509::X509::from_pem(pem)
            .unwrap()
            .to_der()
            .unwrap()
    };

    // How long this machine takes from spawn to listening.
    let t = Instant::now();
    drop(start(&config));
    let startup = t.elapsed();

    for trial in 0..10u32 {
        // The file holds version `trial % 2` at start; the other one is renamed in after
        // `delay`, from 0 to 1.2 × the start-up time.
        let (now, next) = (trial as usize % 2, (trial as usize + 1) % 2);
        std::fs::write(&file, &versions[now]).unwrap();
        let delay = startup.mul_f64(trial as f64 * 0.12);
        let staged = dir.path().join("staged.pem");
        std::fs::write(&staged, &versions[next]).unwrap();
        let (f, s) = (file.clone(), staged.clone());
        let renamer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            std::fs::rename(s, f).unwrap();
        });
        let p = start(&config);
        renamer.join().unwrap();
        let want = leaf(&versions[next]);
        assert!(
            eventually(Duration::from_secs(5), || served_cert(p.addr, name) == want),
            "trial {trial}: renamed {delay:?} after spawn (start-up takes {startup:?}), still the old certificate\n{}",
            p.stderr.lock().unwrap()
        );
    }
}

/// Kubernetes mounts a secret as `tls.pem -> ..data/tls.pem`, `..data -> ..2026_12_07_1`, and
/// updates it by making a new `..<timestamp>` directory and renaming a new `..data` link over
/// the old one: no event ever names `tls.pem`. The same for a configuration in a ConfigMap.
#[test]
fn files_swapped_in_through_a_symlinked_directory_are_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    demo_files(dir.path(), 5);
    let other = tempfile::tempdir().unwrap();
    demo_files(other.path(), 5);
    let secret = dir.path().join("secret");
    std::fs::create_dir(&secret).unwrap();
    let name = "site000002.demo.test";
    let bundle = |d: &Path| std::fs::read(d.join(format!("certs/{name}.pem"))).unwrap();
    // The secret's first version, mounted the Kubernetes way.
    let mount = |version: &str, pem: &[u8]| {
        std::fs::create_dir(secret.join(version)).unwrap();
        std::fs::write(secret.join(version).join("tls.pem"), pem).unwrap();
        let tmp = secret.join("..data_tmp");
        std::os::unix::fs::symlink(version, &tmp).unwrap();
        std::fs::rename(&tmp, secret.join("..data")).unwrap();
    };
    mount("..2026_12_07_1", &bundle(dir.path()));
    std::os::unix::fs::symlink("..data/tls.pem", secret.join("tls.pem")).unwrap();
    // The configuration in a ConfigMap-like mount too, its route to origin "one".
    let (one, _) = origin("one\n");
    let (two, _) = origin("two\n");
    let cm = dir.path().join("configmap");
    std::fs::create_dir_all(cm.join("..v1")).unwrap();
    let text_v1 = std::fs::read_to_string(config(dir.path(), &format!("\"{}\"", secret.display())))
        .unwrap()
        .replace("127.0.0.1:9", &one.to_string());
    std::fs::write(cm.join("..v1/proxy.toml"), &text_v1).unwrap();
    std::os::unix::fs::symlink("..v1", cm.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/proxy.toml", cm.join("proxy.toml")).unwrap();

    let p = start(&cm.join("proxy.toml"));
    let log = || p.stderr.lock().unwrap().clone();
    let first = served_cert(p.addr, name);

    mount("..2026_12_07_2", &bundle(other.path()));
    assert!(
        eventually(Duration::from_secs(5), || served_cert(p.addr, name)
            != first),
        "the swapped secret was not picked up\n{}",
        log()
    );

    // The configuration swapped the same way: the route now goes to origin "two".
    let ca = other.path().join("ca.pem"); // the secret's certificate is the second demo's now
    let answer = || curl(&p, &ca, name, &[]).1;
    assert_eq!(answer(), "one\n");
    std::fs::create_dir(cm.join("..v2")).unwrap();
    std::fs::write(
        cm.join("..v2/proxy.toml"),
        text_v1.replace(&one.to_string(), &two.to_string()),
    )
    .unwrap();
    std::os::unix::fs::symlink("..v2", cm.join("..data_tmp")).unwrap();
    std::fs::rename(cm.join("..data_tmp"), cm.join("..data")).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || answer() == "two\n"),
        "the swapped configuration was not picked up\n{}",
        log()
    );

    // A setting a reload cannot take is said, not silently kept.
    std::fs::create_dir(cm.join("..v3")).unwrap();
    std::fs::write(
        cm.join("..v3/proxy.toml"),
        text_v1
            .replace(&one.to_string(), &two.to_string())
            .replace("workers = 1", "workers = 2"),
    )
    .unwrap();
    std::os::unix::fs::symlink("..v3", cm.join("..data_tmp")).unwrap();
    std::fs::rename(cm.join("..data_tmp"), cm.join("..data")).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || log().contains(
            "changed server.workers, which a reload does not take: run `edgetls upgrade`"
        )),
        "{}",
        log()
    );
}
