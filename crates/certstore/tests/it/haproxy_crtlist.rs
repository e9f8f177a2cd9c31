//! crt-list selection compared with HAProxy's, live: generated crt-lists (exact names,
//! wildcards, `!name` filters), each served by Debian's HAProxy and asked for every name with
//! `openssl s_client`, and looked up in the store; the certificate chosen must be the same.
//!
//! Every certificate here is ECDSA and every line names its filters, so the two documented
//! differences (a default per key type; a CN naming a certificate only without SANs) cannot
//! show.

use edgetls_certstore::{CertStore, LoadOptions, Source};
use edgetls_testkit::s_client::SClient;
use rcgen::{CertificateParams, DnType, KeyPair};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const CERTS: usize = 6;
/// Names asked for: every filter below and names only a wildcard (or the default) can serve.
const ASKED: &[&str] = &[
    "a.test",
    "www.a.test",
    "api.a.test",
    "b.test",
    "x.b.test",
    "y.b.test",
    "c.test",
];
const POSITIVE: &[&str] = &[
    "a.test",
    "www.a.test",
    "*.a.test",
    "b.test",
    "*.b.test",
    "x.b.test",
];
const NEGATIVE: &[&str] = &["!www.a.test", "!x.b.test", "!api.a.test"];

/// A small deterministic generator (xorshift64*): the same lists on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// A crt-list of 2 to 6 lines: each a certificate, 1 or 2 positive filters, 0 to 2 `!name`s
/// for names its own positives do not list.
fn crt_list(rng: &mut Rng) -> String {
    let lines = 2 + rng.below(5);
    let mut out = String::new();
    for _ in 0..lines {
        let mut filters: Vec<&str> = Vec::new();
        for _ in 0..1 + rng.below(2) {
            let f = POSITIVE[rng.below(POSITIVE.len())];
            if !filters.contains(&f) {
                filters.push(f);
            }
        }
        for _ in 0..rng.below(3) {
            let f = NEGATIVE[rng.below(NEGATIVE.len())];
            if !filters.contains(&f) && !filters.contains(&&f[1..]) {
                filters.push(f);
            }
        }
        out.push_str(&format!(
            "cert{}.pem [alpn http/1.1] {}\n",
            rng.below(CERTS),
            filters.join(" ")
        ));
    }
    out
}

struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn haproxy(dir: &Path, port: u16, strict: bool) -> Haproxy {
    let cfg = dir.join("haproxy.cfg");
    let strict = if strict { " strict-sni" } else { "" };
    std::fs::write(
        &cfg,
        format!(
            "global\n  log stdout format raw local0 emerg\ndefaults\n  mode tcp\n  timeout connect 1s\n  \
             timeout client 2s\n  timeout server 2s\nfrontend tls\n  bind 127.0.0.1:{port} ssl crt-list {}{strict}\n  \
             default_backend none\nbackend none\n  server none 127.0.0.1:9 disabled\n",
            dir.join("list.txt").display()
        ),
    )
    .unwrap();
    // HAProxy reads a crt-list's relative paths from its working directory (or crt-base).
    let h = Haproxy(
        Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&cfg)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy (Debian's haproxy package; .ci/run installs it)"),
    );
    edgetls_testkit::wait::listening(port, "HAProxy");
    h
}

/// The certificate HAProxy serves to `name` (`certN`), or None when the handshake fails.
fn served_by_haproxy(port: u16, name: &str) -> Option<String> {
    let out = SClient::connect(([127, 0, 0, 1], port).into())
        .name(name)
        .args(["-tls1_3"])
        .run()
        .stdout;
    out.lines()
        .find_map(|l| l.strip_prefix("subject=CN = "))
        .map(str::to_string)
}

/// The certificate the store selects for `name` (`certN`), or None.
fn served_by_store(list: &Path, name: &str, strict: bool) -> Option<String> {
    let mut opts = LoadOptions::default();
    opts.strict_sni = strict;
    let (store, report) = CertStore::load(vec![Source::CrtList(list.to_path_buf())], opts).unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    let snapshot = store.snapshot();
    let selected = snapshot.lookup(Some(name), None)?;
    let file = selected
        .entry
        .path()
        .file_stem()?
        .to_string_lossy()
        .into_owned();
    Some(file)
}

#[test]
fn crt_list_selection_is_haproxys_on_generated_lists() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..CERTS {
        let mut p = CertificateParams::new(vec![format!("cert{i}.invalid")]).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, format!("cert{i}"));
        let k = KeyPair::generate().unwrap();
        let pem = format!("{}{}", p.self_signed(&k).unwrap().pem(), k.serialize_pem());
        std::fs::write(dir.path().join(format!("cert{i}.pem")), pem).unwrap();
    }
    let list = dir.path().join("list.txt");
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let (mut compared, mut excluded_names) = (0, 0);
    for round in 0..24 {
        let text = crt_list(&mut rng);
        std::fs::write(&list, &text).unwrap();
        let strict = round % 4 == 3;
        let port = edgetls_testkit::ocsp::free_port();
        let _h = haproxy(dir.path(), port, strict);
        for name in ASKED {
            let theirs = served_by_haproxy(port, name);
            let ours = served_by_store(&list, name, strict);
            assert_eq!(
                ours, theirs,
                "{name} (strict-sni: {strict}), crt-list:\n{text}"
            );
            compared += 1;
            if text.contains(&format!("!{name}")) {
                excluded_names += 1;
            }
        }
    }
    // The lists did exercise what they are for.
    assert_eq!(compared, 24 * ASKED.len());
    assert!(
        excluded_names > 20,
        "only {excluded_names} lookups of an excluded name"
    );
}
