//! `cargo xtask bench --suite names`: the workload operators have — the SNI spread over many
//! names, each with its own ECDSA certificate. 10,000 names against nginx (`http`, one `server`
//! block per name; `stream`, the certificate chosen by `$ssl_server_name`) and HAProxy
//! (`crt DIR`), and 100,000 names on edgetls alone: the first pass over every name (cold), then
//! rounds over all of them after that pass (warm), beside edgetls's one-name figure in the same
//! run; resident memory after every name was served once; start-up time.

use crate::bench_keyless::median;
use crate::bench_proxy::origin;
use crate::loadgen::{self, Load, Target};
use anyhow::{Context, Result, bail};
use openssl::ssl::SslVersion;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 32;
const SECONDS: f64 = 4.0;
const ROUNDS: usize = 9;

/// The two independent client implementations every warm figure is taken with.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Client {
    /// `cargo xtask load` (Rust, rust-openssl, tokio).
    Rust,
    /// CPython's `ssl` module on threads (`xtask/pyload.py`).
    CPython,
}

impl Client {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Client::Rust => "Rust load generator",
            Client::CPython => "CPython `ssl` client",
        }
    }
}

/// One warm round of `client` against `s` over `names` (written, one per line, in `file`).
pub(crate) fn warm_round(
    client: Client,
    root: &Path,
    s: &Server,
    names: &Arc<[String]>,
    file: &Path,
) -> Result<f64> {
    let t = target(s, Some((Arc::clone(names), false)));
    let l = match client {
        Client::Rust => loadgen::run(&t)?,
        Client::CPython => crate::pyclient::run(root, &t, file)?,
    };
    Ok(l.per_cpu_second)
}

/// `names`, one per line, in `file`.
pub(crate) fn write_names(file: &Path, names: &[String]) -> Result<()> {
    let mut text = names.join("\n");
    text.push('\n');
    std::fs::write(file, text).with_context(|| file.display().to_string())
}

/// A server under test: its process (stopped when dropped), its name and its start-up time.
pub(crate) struct Server {
    pub(crate) name: String,
    pub(crate) server: crate::bench_proxy::Server,
    /// From spawn to accepting connections.
    pub(crate) started: Duration,
}

/// Resident memory of `pid` and its children (nginx's master and worker), KiB.
fn rss_kib(pid: u32) -> f64 {
    let mut total = 0.0;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    for e in dir.flatten() {
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        };
        let this: u32 = e.file_name().to_string_lossy().parse().unwrap_or(0);
        let ppid = field("PPid:").unwrap_or(0.0) as u32;
        if this == pid || ppid == pid {
            total += field("VmRSS:").unwrap_or(0.0);
        }
    }
    total
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Spawns `cmd` and waits (up to 5 minutes) until it accepts on `port`.
pub(crate) fn spawn(name: String, cmd: &mut Command, port: u16) -> Result<Server> {
    let t = Instant::now();
    let mut server = crate::bench_proxy::Server {
        child: cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    while std::net::TcpStream::connect(server.addr).is_err() {
        if t.elapsed() > Duration::from_secs(300) {
            bail!("{name} did not start");
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            bail!("{name} exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(Server {
        name,
        server,
        started: t.elapsed(),
    })
}

fn edgetls(root: &Path, d: &Path, origin: SocketAddr) -> Result<Server> {
    let t = Instant::now();
    let server = crate::bench_proxy::edgetls_with(root, d, origin, 1, "")?;
    Ok(Server {
        name: "edgetls proxy, 1 worker".into(),
        server,
        started: t.elapsed(),
    })
}

pub(crate) fn nginx_http(d: &Path, names: &[String], origin: SocketAddr) -> Result<Server> {
    let port = free_port()?;
    let dd = d.display();
    let mut conf = format!(
        "worker_processes 1;\ndaemon off;\npid {dd}/nginx-http.pid;\nerror_log {dd}/nginx-http.err;\n\
         events {{ worker_connections 4096; }}\nhttp {{\n  access_log off;\n  server_names_hash_bucket_size 128;\n  \
         server_names_hash_max_size 262144;\n  upstream origin {{ server {origin}; }}\n  ssl_protocols TLSv1.3;\n  \
         ssl_session_tickets on;\n  ssl_session_ticket_key {dd}/tickets.nginx80;\n  ssl_session_cache off;\n"
    );
    for n in names {
        let _ = writeln!(
            conf,
            "  server {{ listen 127.0.0.1:{port} ssl; server_name {n}; ssl_certificate {dd}/certs/{n}.pem; \
             ssl_certificate_key {dd}/certs/{n}.pem; location / {{ proxy_pass http://origin; }} }}"
        );
    }
    conf.push_str("}\n");
    let file = d.join("nginx-http.conf");
    std::fs::write(&file, conf)?;
    let v = crate::bench::tool_version("nginx", &["-v"]);
    spawn(
        format!("nginx {v} `http`, a `server` per name"),
        Command::new("nginx").arg("-p").arg(d).arg("-c").arg(&file),
        port,
    )
}

pub(crate) fn nginx_stream(d: &Path, origin: SocketAddr) -> Result<Option<Server>> {
    let module = Path::new("/usr/lib/nginx/modules/ngx_stream_module.so");
    if !module.exists() {
        return Ok(None);
    }
    let port = free_port()?;
    let dd = d.display();
    let conf = format!(
        "load_module {};\nworker_processes 1;\ndaemon off;\npid {dd}/nginx-stream.pid;\nerror_log {dd}/nginx-stream.err;\n\
         events {{ worker_connections 4096; }}\nstream {{\n  server {{\n    listen 127.0.0.1:{port} ssl;\n    \
         ssl_protocols TLSv1.3;\n    ssl_certificate {dd}/certs/$ssl_server_name.pem;\n    ssl_certificate_key {dd}/certs/$ssl_server_name.pem;\n    \
         ssl_session_tickets on;\n    ssl_session_ticket_key {dd}/tickets.nginx80;\n    ssl_session_cache off;\n    proxy_pass {origin};\n  }}\n}}\n",
        module.display()
    );
    let file = d.join("nginx-stream.conf");
    std::fs::write(&file, conf)?;
    let v = crate::bench::tool_version("nginx", &["-v"]);
    spawn(
        format!("nginx {v} `stream`, `ssl_certificate $ssl_server_name`"),
        Command::new("nginx").arg("-p").arg(d).arg("-c").arg(&file),
        port,
    )
    .map(Some)
}

pub(crate) fn haproxy(d: &Path, origin: SocketAddr) -> Result<Server> {
    let port = free_port()?;
    let dd = d.display();
    let conf = format!(
        "global\n    nbthread 1\n    maxconn 4096\ndefaults\n    mode tcp\n    timeout client 30s\n    timeout server 30s\n    timeout connect 5s\n\
         frontend edge\n    bind 127.0.0.1:{port} ssl crt {dd}/certs ssl-min-ver TLSv1.3 tls-ticket-keys {dd}/tickets3.haproxy\n    default_backend origin\n\
         backend origin\n    server o {origin}\n"
    );
    std::fs::write(d.join("haproxy.cfg"), conf)?;
    let v = crate::bench::tool_version("haproxy", &["-v"]);
    spawn(
        format!("HAProxy {v} `mode tcp`, `crt DIR`"),
        Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(d.join("haproxy.cfg")),
        port,
    )
}

pub(crate) fn target(s: &Server, names: Option<(Arc<[String]>, bool)>) -> Target {
    Target {
        addr: s.server.addr,
        sni: "site000000.example.com".into(),
        pid: Some(s.server.child.id()),
        concurrency: CONCURRENCY,
        seconds: SECONDS,
        resume: false,
        pace: None,
        expect: Some(b"ok\n"),
        version: SslVersion::TLS1_3,
        names,
        status: false,
        proxy_v2: false,
    }
}

/// The names in a fixed shuffled order (each exactly once per pass).
pub(crate) fn shuffled(n: usize) -> Arc<[String]> {
    edgetls_benches::shuffled_names(n).into()
}

pub(crate) fn prepare(d: &Path, n: usize) -> Result<()> {
    crate::gen_certs::run(&crate::gen_certs::Args {
        out: d.to_path_buf(),
        count: n,
        rsa: 0,
        rsa_keys: 4,
        wildcards: 0,
        dual: 0,
        chain: false,
        separate_keys: false,
        descending: false,
        ocsp_days: None,
    })?;
    crate::bench_proxy::ticket_files(d)
}

/// What one server did over the names: the cold pass, the warm rounds, memory after the pass.
struct Spread {
    cold: Load,
    /// Per client: handshakes per server CPU-second in each warm round.
    warm: Vec<Vec<f64>>,
    rss_mib: f64,
}

pub(crate) fn run(root: &Path, report: &mut String) -> Result<()> {
    crate::bench::release_build(root, &["edgetls-proxy"])?;
    let origin = origin("127.0.0.1:0".parse()?)?;
    let mut clients = vec![Client::Rust];
    let python = crate::pyclient::available();
    if python.is_some() {
        clients.push(Client::CPython);
    }
    let _ = writeln!(
        report,
        "## Many names: the SNI spread over 10,000 and 100,000 certificates (`cargo xtask bench --suite names`)\n\n\
         Each name has its own ECDSA P-256 certificate (`cargo xtask gen-certs`); the load generator ({CONCURRENCY} \
         clients, Rust/OpenSSL) sends each connection to the next name of a fixed shuffled order, TLS 1.3, full \
         handshakes, `GET /`, the 3-byte answer. **Cold**: the first pass over every name (each name's first \
         handshake), measured whole. **Warm**: {ROUNDS} rounds of {SECONDS} s over the same names after that pass, \
         the servers taking turns in each round (in the other order every second round); edgetls's one-name rounds \
         (every connection to one name) are taken in the same rounds, each right beside edgetls's spread run. The warm rounds are taken twice, with two \
         independent clients: the Rust load generator and CPython's `ssl` module on threads (`xtask/pyload.py`, {}). \
         Figures are handshakes per second of the server's CPU (its processes, from `/proc`); \
         ratios are medians of the rounds' ratios. Memory: resident set of all the server's processes after the cold \
         pass (every name served once).\n",
        python.as_deref().unwrap_or("not run here: no python3")
    );
    for (n, peers) in [(10_000usize, true), (100_000, false)] {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let t = Instant::now();
        prepare(d, n)?;
        let generated = t.elapsed();
        let names = shuffled(n);
        let mut servers = vec![edgetls(root, d, origin)?];
        if peers {
            for peer in [
                nginx_http(d, &names, origin),
                haproxy(d, origin),
                nginx_stream(d, origin).and_then(|s| s.context("no stream module")),
            ] {
                match peer {
                    Ok(s) => servers.push(s),
                    Err(e) => {
                        let _ = writeln!(report, "\n(a peer did not run: {e})");
                    }
                }
            }
        }
        let mut spread: Vec<Spread> = Vec::new();
        let mut kept = Vec::new();
        for (i, s) in servers.into_iter().enumerate() {
            match loadgen::run(&target(&s, Some((Arc::clone(&names), true)))) {
                Ok(cold) => {
                    spread.push(Spread {
                        cold,
                        warm: vec![Vec::new(); clients.len()],
                        rss_mib: rss_kib(s.server.child.id()) / 1024.0,
                    });
                    kept.push(s);
                }
                // edgetls must serve; a peer that cannot is reported and left out.
                Err(e) if i > 0 => {
                    let _ = writeln!(report, "\n({} served nothing: {e})", s.name);
                }
                Err(e) => return Err(e),
            }
        }
        let servers = kept;
        let (all_file, one_file) = (d.join("names.txt"), d.join("one-name.txt"));
        let one: Arc<[String]> = Arc::from(vec![names[0].clone()]);
        write_names(&all_file, &names)?;
        write_names(&one_file, &one)?;
        // Per client, edgetls's one-name figure in each round.
        let mut one_name = vec![Vec::new(); clients.len()];
        for (c, &client) in clients.iter().enumerate() {
            for round in 0..ROUNDS {
                // The servers take turns, in the other order every second round. edgetls's
                // one-name run (index `servers.len()`) sits next to its spread run (index 0),
                // and nginx `http` on its other side, so that each ratio compares runs taken
                // back to back rather than a round apart.
                let mut order: Vec<usize> = std::iter::once(servers.len())
                    .chain(0..servers.len())
                    .collect();
                if round % 2 == 1 {
                    order.reverse();
                }
                for i in order {
                    match servers.get(i) {
                        Some(s) => {
                            spread[i].warm[c].push(warm_round(client, root, s, &names, &all_file)?)
                        }
                        None => one_name[c].push(warm_round(
                            client,
                            root,
                            &servers[0],
                            &one,
                            &one_file,
                        )?),
                    }
                }
            }
        }
        let _ = writeln!(
            report,
            "\n### {n} names ({generated:.0?} to generate)\n\n\
             | server | start to listening | cold: per CPU-second | warm: per CPU-second (median; {}) | RSS after every name once |\n|---|---:|---:|---:|---:|",
            clients
                .iter()
                .map(|c| c.label())
                .collect::<Vec<_>>()
                .join(" / ")
        );
        let medians = |w: &[Vec<f64>]| {
            w.iter()
                .map(|r| format!("{:.0}", median(r.clone())))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        for (s, sp) in servers.iter().zip(&spread) {
            let _ = writeln!(
                report,
                "| {} | {:.2} s | {:.0} | {} | {:.0} MiB |",
                s.name,
                s.started.as_secs_f64(),
                sp.cold.per_cpu_second,
                medians(&sp.warm),
                sp.rss_mib
            );
        }
        let _ = writeln!(
            report,
            "| edgetls proxy, one name (same rounds) | | | {} | |",
            medians(&one_name)
        );
        let ratio = |a: &[f64], b: &[f64]| {
            let r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
            let each: Vec<String> = r.iter().map(|x| format!("{x:.2}")).collect();
            (median(r), each.join(", "))
        };
        for (c, client) in clients.iter().enumerate() {
            let _ = writeln!(report, "\nWith the {}:\n", client.label());
            let (own, rounds) = ratio(&spread[0].warm[c], &one_name[c]);
            let _ = writeln!(
                report,
                "- warm, edgetls over {n} names / edgetls on one name: **{own:.2}×** (rounds: {rounds})"
            );
            for (s, sp) in servers.iter().zip(&spread).skip(1) {
                let (r, rounds) = ratio(&spread[0].warm[c], &sp.warm[c]);
                let _ = writeln!(
                    report,
                    "- warm, edgetls / {}: **{r:.2}×** (rounds: {rounds})",
                    s.name
                );
            }
        }
        for (s, sp) in servers.iter().zip(&spread).skip(1) {
            let _ = writeln!(
                report,
                "\nCold (Rust load generator), edgetls / {}: {:.2}×; memory: edgetls {:.2}× of it.",
                s.name,
                spread[0].cold.per_cpu_second / sp.cold.per_cpu_second,
                spread[0].rss_mib / sp.rss_mib
            );
        }
    }
    Ok(())
}
