//! Orders against a real ACME server: Debian's pebble, with its DNS test server resolving
//! every name to 127.0.0.1. Skipped (with a message) where pebble is not installed; `.ci/run`
//! installs it.

use edgetls_acme::{Acme, AcmeConfig, AcmeMetrics, Challenge, Challenges};
use edgetls_testkit::acme_front::Front;
use edgetls_testkit::net::free_port;
use edgetls_testkit::pebble::{self, Options, Pebble};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509StoreContext};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Pebble validating HTTP-01 on a responder that answers from the registry it returns
/// (wrongly while `lie` is set).
fn http01_pebble(lie: Arc<AtomicBool>) -> (Pebble, Arc<Challenges>) {
    let http = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = Pebble::start(Options::new(free_port(), http.local_addr().unwrap().port()));
    let challenges = Challenges::new();
    http01(http, Arc::clone(&challenges), lie);
    (p, challenges)
}

/// A plain HTTP-01 responder on `listener`, answering from `challenges`; `lie` makes it
/// answer every token wrongly.
fn http01(listener: TcpListener, challenges: Arc<Challenges>, lie: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut line = String::new();
            let _ = BufReader::new(&conn).read_line(&mut line);
            let token = line
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.strip_prefix("/.well-known/acme-challenge/"))
                .unwrap_or("");
            let answer = challenges.http(token);
            let reply = match answer {
                Some(_) if lie.load(Ordering::Relaxed) => {
                    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nwrong"
                        .to_string()
                }
                Some(a) => format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{a}",
                    a.len()
                ),
                None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string(),
            };
            let _ = conn.write_all(reply.as_bytes());
        }
    });
}

fn config(p: &Pebble, storage: &Path, challenge: Challenge, names: &[&[&str]]) -> AcmeConfig {
    let mut c = AcmeConfig::new(p.directory.clone(), storage);
    c.ca_bundle = Some(p.api_ca.clone());
    c.contact = vec!["mailto:ops@example.test".into()];
    c.challenge = challenge;
    c.names = names
        .iter()
        .map(|s| s.iter().map(|n| n.to_string()).collect())
        .collect();
    c.order_timeout = Duration::from_secs(20);
    c.orders_per_hour = 36_000.0;
    c
}

/// The bundle's leaf and chain verify against pebble's issuing root for every name asked,
/// and its key is the leaf's.
fn check_bundle(p: &Pebble, path: &Path, names: &[&str]) {
    let body = std::fs::read(path).unwrap();
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", path.display());
    let certs = X509::stack_from_pem(&body).unwrap();
    let key = openssl::pkey::PKey::private_key_from_pem(&body).unwrap();
    assert!(
        certs[0].public_key().unwrap().public_eq(&key),
        "the key is the leaf's"
    );
    let mut store = X509StoreBuilder::new().unwrap();
    store
        .add_cert(X509::from_pem(p.issuing_root().as_bytes()).unwrap())
        .unwrap();
    let store = store.build();
    let mut chain = Stack::new().unwrap();
    for c in &certs[1..] {
        chain.push(c.clone()).unwrap();
    }
    let mut ctx = X509StoreContext::new().unwrap();
    let ok = ctx
        .init(&store, &certs[0], &chain, |c| c.verify_cert())
        .unwrap();
    assert!(ok, "the chain verifies to pebble's root: {}", ctx.error());
    let sans: Vec<String> = certs[0]
        .subject_alt_names()
        .unwrap()
        .iter()
        .filter_map(|g| g.dnsname().map(str::to_owned))
        .collect();
    for n in names {
        assert!(sans.iter().any(|s| s == n), "{n} in {sans:?}");
    }
}

#[test]
fn http01_issues_a_set_of_names_and_the_account_is_reused() {
    if pebble::skip() {
        return;
    }
    let (p, challenges) = http01_pebble(Arc::default());
    let storage = tempfile::tempdir().unwrap();
    let c = config(
        &p,
        storage.path(),
        Challenge::Http01,
        &[&["a.test", "www.a.test"]],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let metrics = AcmeMetrics::default();
    let acme = rt
        .block_on(Acme::start(
            c.clone(),
            Arc::clone(&challenges),
            metrics.clone(),
        ))
        .unwrap_or_else(|e| panic!("{e}\n{}", p.log()));
    let names = c.names[0].clone();
    let path = rt
        .block_on(acme.issue(&names))
        .unwrap_or_else(|e| panic!("{e}\n{}", p.log()));
    assert_eq!(path, storage.path().join("a.test.pem"));
    check_bundle(&p, &path, &["a.test", "www.a.test"]);
    assert_eq!(metrics.orders("issued"), 1);
    assert!(
        challenges.http("anything").is_none(),
        "challenges are withdrawn"
    );
    // No pending order or temporary file is left; the account file is 0600.
    let account = storage.path().join("account.json");
    let mode = std::fs::metadata(&account).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let first = std::fs::read(&account).unwrap();
    assert_eq!(
        std::fs::read_dir(storage.path().join("orders"))
            .unwrap()
            .count(),
        0
    );
    // A second start reuses the account (the file is not rewritten) and can order again.
    let again = rt
        .block_on(Acme::start(
            c,
            Arc::clone(&challenges),
            AcmeMetrics::default(),
        ))
        .unwrap();
    rt.block_on(again.issue(&names)).unwrap();
    assert_eq!(std::fs::read(&account).unwrap(), first);
}

#[test]
fn a_rejected_challenge_fails_with_the_cas_problem_and_writes_nothing() {
    if pebble::skip() {
        return;
    }
    let lie = Arc::new(AtomicBool::new(true));
    let (p, challenges) = http01_pebble(Arc::clone(&lie));
    let storage = tempfile::tempdir().unwrap();
    let c = config(&p, storage.path(), Challenge::Http01, &[&["b.test"]]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let metrics = AcmeMetrics::default();
    let acme = rt
        .block_on(Acme::start(c.clone(), challenges, metrics.clone()))
        .unwrap();
    let e = rt
        .block_on(acme.issue(&c.names[0]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("b.test") && e.contains("unauthorized"), "{e}");
    assert!(!storage.path().join("b.test.pem").exists());
    assert_eq!(metrics.orders("failed"), 1);
    let status = acme.status();
    assert_eq!(status[0].failures, 1);
    assert!(
        status[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("unauthorized")
    );
    // Told the truth, the next order succeeds.
    lie.store(false, Ordering::Relaxed);
    rt.block_on(acme.issue(&c.names[0])).unwrap();
    assert_eq!(acme.status()[0].failures, 0);
}

#[test]
fn dns01_goes_through_the_operators_hook() {
    if pebble::skip() {
        return;
    }
    let p = Pebble::start(Options::new(free_port(), free_port()));
    let storage = tempfile::tempdir().unwrap();
    let hook = storage.path().join("hook.sh");
    std::fs::write(&hook, p.dns_hook_script()).unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let c = config(
        &p,
        &storage.path().join("certs"),
        Challenge::Dns01 { hook },
        &[&["*.c.test", "c.test"]],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acme = rt
        .block_on(Acme::start(
            c.clone(),
            Challenges::new(),
            AcmeMetrics::default(),
        ))
        .unwrap();
    let path = rt
        .block_on(acme.issue(&c.names[0]))
        .unwrap_or_else(|e| panic!("{e}\n{}", p.log()));
    assert_eq!(path, storage.path().join("certs/_wildcard_.c.test.pem"));
    check_bundle(&p, &path, &["*.c.test", "c.test"]);
}

#[test]
fn a_ca_that_stops_answering_fails_the_order_in_bounded_time_and_serves_again_after() {
    if pebble::skip() {
        return;
    }
    let (p, challenges) = http01_pebble(Arc::default());
    let storage = tempfile::tempdir().unwrap();
    let mut c = config(&p, storage.path(), Challenge::Http01, &[&["d.test"]]);
    c.order_timeout = Duration::from_secs(3);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acme = rt
        .block_on(Acme::start(c.clone(), challenges, AcmeMetrics::default()))
        .unwrap();
    let pid = p.pid();
    // SAFETY: kill(2) on pebble's process id, a child of this test.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let started = std::time::Instant::now();
    let e = rt
        .block_on(acme.issue(&c.names[0]))
        .unwrap_err()
        .to_string();
    let took = started.elapsed();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert!(e.contains("did not answer in time"), "{e}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    rt.block_on(acme.issue(&c.names[0])).unwrap();
    assert!(storage.path().join("d.test.pem").exists());
}

#[test]
fn a_replaced_certificate_is_revoked_when_configured() {
    if pebble::skip() {
        return;
    }
    let (p, challenges) = http01_pebble(Arc::default());
    let storage = tempfile::tempdir().unwrap();
    let mut c = config(&p, storage.path(), Challenge::Http01, &[&["e.test"]]);
    c.revoke_replaced = true;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acme = rt
        .block_on(Acme::start(c.clone(), challenges, AcmeMetrics::default()))
        .unwrap();
    let path = rt.block_on(acme.issue(&c.names[0])).unwrap();
    let first = X509::from_pem(&std::fs::read(&path).unwrap()).unwrap();
    let serial = first
        .serial_number()
        .to_bn()
        .unwrap()
        .to_hex_str()
        .unwrap()
        .to_ascii_lowercase();
    assert_eq!(p.cert_status(&serial), "Valid");
    rt.block_on(acme.issue(&c.names[0])).unwrap();
    assert_eq!(
        p.cert_status(&serial),
        "Revoked",
        "the first certificate, once replaced"
    );
}

/// `secs` (Unix time) in `date`'s `format`, UTC.
fn utc(secs: u64, format: &str) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), &format!("+{format}")])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn a_rate_limit_answer_holds_the_set_until_the_cas_moment_and_pauses_new_orders() {
    if pebble::skip() {
        return;
    }
    let (p, challenges) = http01_pebble(Arc::default());
    let front = Front::start(&p);
    let storage = tempfile::tempdir().unwrap();
    let mut c = config(
        &p,
        storage.path(),
        Challenge::Http01,
        &[&["rl.test"], &["other.test"]],
    );
    c.directory = front.directory.clone();
    // Let's Encrypt's wording, with a moment ten minutes from now.
    let until = unix(std::time::SystemTime::now()) + 600;
    let detail = format!(
        "too many certificates (5) already issued for this exact set of identifiers in the \
         last 168h0m0s, retry after {}: see https://letsencrypt.org/docs/rate-limits/",
        utc(until, "%Y-%m-%d %H:%M:%S UTC")
    );
    front.with(|s| s.rate_limit = Some(detail.clone()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let metrics = AcmeMetrics::default();
    let acme = rt
        .block_on(Acme::start(
            c.clone(),
            Arc::clone(&challenges),
            metrics.clone(),
        ))
        .unwrap();
    let e = rt
        .block_on(acme.issue(&c.names[0]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("rl.test") && e.contains("rate-limited"), "{e}");
    assert!(e.contains(&detail), "the CA's detail is reported: {e}");
    assert_eq!(metrics.orders("rate_limited"), 1);
    assert_eq!(metrics.orders("failed"), 0);
    assert!(
        !storage.path().join("rl.test.pem").exists(),
        "nothing written"
    );
    let status = acme.status();
    let held = status[0].retry_at.expect("held");
    assert!(
        unix(held) + 2 >= until && unix(held) <= until + 2,
        "held until the CA's moment ({until}), not the 1-minute back-off: {}",
        unix(held)
    );
    assert_eq!(status[1].retry_at, None, "the other set is not held");

    // Every new order waits a little: the limit may be the account's.
    front.with(|s| s.rate_limit = None);
    let paused = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(3), acme.issue(&c.names[1])).await
    });
    assert!(paused.is_err(), "no new order within 3 s of a rate limit");
    assert_eq!(
        front.with(|s| s.new_orders.len()),
        1,
        "only the refused one"
    );
    drop(acme);

    // Once the limit is lifted (a restart here, not to wait the minute), orders go through.
    let acme = rt
        .block_on(Acme::start(c.clone(), challenges, metrics.clone()))
        .unwrap();
    let path = rt.block_on(acme.issue(&c.names[0])).unwrap();
    check_bundle(&p, &path, &["rl.test"]);
    assert_eq!(front.with(|s| s.refused), 1);
}

#[test]
fn renewal_information_from_the_ca_schedules_the_renewal_and_names_the_replaced_certificate() {
    if pebble::skip() {
        return;
    }
    let (p, challenges) = http01_pebble(Arc::default());
    let front = Front::start(&p);
    let storage = tempfile::tempdir().unwrap();
    let mut c = config(&p, storage.path(), Challenge::Http01, &[&["ari.test"]]);
    c.directory = front.directory.clone();
    // A window a day from now, long before 2/3 of pebble's five-year lifetimes.
    let now = unix(std::time::SystemTime::now());
    let (start, end) = (now + 86_400, now + 2 * 86_400);
    let rfc3339 = |t| utc(t, "%Y-%m-%dT%H:%M:%SZ");
    front.with(|s| s.window = Some((rfc3339(start), rfc3339(end))));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acme = rt
        .block_on(Acme::start(
            c.clone(),
            Arc::clone(&challenges),
            AcmeMetrics::default(),
        ))
        .unwrap();
    let first_path = rt.block_on(acme.issue(&c.names[0])).unwrap();
    let first = std::fs::read(&first_path).unwrap();
    let schedule = rt.spawn(Arc::clone(&acme).run());
    let renew_at = edgetls_testkit::wait::until(Duration::from_secs(10), || {
        acme.status()[0]
            .renew_at
            .filter(|r| unix(*r) < now + 365 * 86_400)
    })
    .expect("the CA's window is used");
    assert!(
        (start..=end).contains(&unix(renew_at)),
        "{} in [{start}, {end}]",
        unix(renew_at)
    );
    let asked = front.with(|s| s.ari_requests.clone());
    assert_eq!(asked.len(), 1, "{asked:?}");
    schedule.abort();
    drop(acme);

    // The CA moves the window to now (as for a revocation): renewed at once, and the order
    // names the certificate it replaces.
    front.with(|s| s.window = Some((rfc3339(now - 3600), rfc3339(now))));
    let acme = rt
        .block_on(Acme::start(c.clone(), challenges, AcmeMetrics::default()))
        .unwrap();
    let schedule = rt.spawn(Arc::clone(&acme).run());
    let renewed = edgetls_testkit::wait::until(Duration::from_secs(20), || {
        std::fs::read(&first_path).ok().filter(|b| *b != first)
    })
    .unwrap_or_else(|| {
        panic!(
            "renewed within the window: {:?}; front saw {:?}",
            acme.status(),
            front.with(|s| (s.ari_requests.clone(), s.new_orders.clone()))
        )
    });
    schedule.abort();
    check_bundle(&p, &first_path, &["ari.test"]);
    assert_ne!(
        X509::from_pem(&renewed)
            .unwrap()
            .serial_number()
            .to_bn()
            .unwrap(),
        X509::from_pem(&first)
            .unwrap()
            .serial_number()
            .to_bn()
            .unwrap()
    );
    let orders = front.with(|s| s.new_orders.clone());
    let last: serde_json::Value = serde_json::from_str(orders.last().unwrap()).unwrap();
    assert_eq!(
        last["replaces"].as_str(),
        Some(asked[0].as_str()),
        "the renewal's order names the certificate it replaces: {last}"
    );
}
