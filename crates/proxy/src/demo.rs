//! `edgetls demo`: a throwaway PKI and certificate set, loaded by the certificate store and
//! served over TLS, with the commands to try printed. Each response says which entry served
//! the connection and how it was chosen.

use crate::error::CliError;
use clap::Args;
use edgetls_certstore::{CertStore, LoadOptions, Source, local_addr_index, servername_callback};
use openssl::pkey::{Id, PKey};
use openssl::rsa::Rsa;
use openssl::ssl::{NameType, Ssl, SslContext, SslMethod, SslStream};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Address to serve TLS on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: String,
    /// How many ECDSA names to generate (siteNNNNNN.demo.test).
    #[arg(long, default_value_t = 1000)]
    names: usize,
    /// Where to write the PKI (default: a temporary directory removed on exit).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Write the PKI and exit without serving.
    #[arg(long)]
    generate_only: bool,
    /// Stop serving after this many seconds (for scripts and tests).
    #[arg(long, hide = true)]
    exit_after: Option<u64>,
}

pub(crate) fn run(args: &DemoArgs) -> ExitCode {
    match demo(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgetls demo: {e}");
            ExitCode::from(2)
        }
    }
}

type Res<T> = Result<T, CliError>;

fn demo(args: &DemoArgs) -> Res<()> {
    let temp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(CliError::io(d))?;
            d.clone()
        }
        None => {
            temp = tempfile::tempdir().map_err(CliError::io(std::env::temp_dir()))?;
            temp.path().to_path_buf()
        }
    };
    let started = std::time::Instant::now();
    let config = generate(&dir, args.names)?;
    println!(
        "generated {} names in {} ({:.1} s)",
        args.names + 4,
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    if args.generate_only {
        return Ok(());
    }
    let (store, report) = CertStore::load(
        vec![Source::Multicert(config.clone())],
        LoadOptions::default(),
    )?;
    for p in &report.problems {
        eprintln!("{p}");
    }
    println!(
        "loaded {} entries ({} names, {} wildcards) in {:.3} s from {}",
        report.loaded,
        report.names,
        report.wildcards,
        report.elapsed.as_secs_f64(),
        config.display()
    );
    let store = Arc::new(store);
    let _watch = store.watch(Duration::from_secs(2), |r| match r {
        Ok(r) => println!(
            "reloaded: {} entries ({} reused, {} kept previous, {} failed)",
            r.loaded, r.reused, r.kept_previous, r.failed
        ),
        Err(e) => eprintln!("reload failed, still serving the previous certificates: {e}"),
    });
    let listen_err = |source| CliError::Listen {
        addr: args.listen.clone(),
        source,
    };
    let listener = TcpListener::bind(&args.listen).map_err(listen_err)?;
    let addr = listener.local_addr().map_err(listen_err)?;
    let mut ctx = SslContext::builder(SslMethod::tls_server())?;
    ctx.set_servername_callback(servername_callback(Arc::clone(&store)));
    let ctx = ctx.build();
    print_help(&dir, addr.port());
    println!("listening on {addr}");
    if let Some(secs) = args.exit_after {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(secs));
            std::process::exit(0);
        });
    }
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors, most often: pause rather than retry in a tight loop.
                eprintln!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        // A demo, not the proxy: one thread per connection, at most 256 at once.
        if active.load(Ordering::Relaxed) >= 256 {
            continue;
        }
        active.fetch_add(1, Ordering::Relaxed);
        let (ctx, store, active) = (ctx.clone(), Arc::clone(&store), Arc::clone(&active));
        std::thread::spawn(move || {
            if let Err(e) = serve(&ctx, &store, stream) {
                eprintln!("{e}");
            }
            active.fetch_sub(1, Ordering::Relaxed);
        });
    }
    Ok(())
}

fn serve(ctx: &SslContext, store: &CertStore, stream: TcpStream) -> Res<()> {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let fail = |message: String| CliError::Connection {
        peer: peer.clone(),
        message,
    };
    let io = |e: std::io::Error| fail(e.to_string());
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    let mut ssl = Ssl::new(ctx)?;
    ssl.set_ex_data(local_addr_index()?, stream.local_addr().map_err(io)?);
    let mut tls: SslStream<TcpStream> = ssl
        .accept(stream)
        .map_err(|e| fail(format!("handshake: {e}")))?;
    let sni = tls
        .ssl()
        .servername(NameType::HOST_NAME)
        .map(str::to_string);
    let local = tls.get_ref().local_addr().ok();
    let key = match tls
        .ssl()
        .certificate()
        .and_then(|c| c.public_key().ok())
        .map(|k| k.id())
    {
        Some(Id::EC) => "ECDSA",
        Some(Id::RSA) => "RSA",
        _ => "other",
    };
    let snapshot = store.snapshot();
    let chosen = snapshot.lookup(sni.as_deref(), local);
    let (file, how) = chosen.map_or(("none".into(), "none"), |c| {
        (
            c.entry
                .path()
                .file_name()
                .map_or_else(String::new, |f| f.to_string_lossy().into_owned()),
            c.how.as_str(),
        )
    });
    // Read the request head (or whatever a non-HTTP client sends first), bounded.
    let mut buf = [0u8; 8192];
    let mut seen = 0;
    while seen < buf.len() && !buf[..seen].windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf[seen..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen += n,
        }
    }
    let body = format!(
        "edgetls demo: SNI {}, entry {file} ({how}), {key} certificate, {}\n",
        sni.as_deref().unwrap_or("(none)"),
        tls.ssl().version_str()
    );
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(response.as_bytes()).map_err(io)?;
    let _ = tls.shutdown();
    Ok(())
}

fn print_help(dir: &Path, port: u16) {
    let ca = dir.join("ca.pem");
    let ca = ca.display();
    let curl = |name: &str| {
        format!("curl --cacert {ca} --resolve {name}:{port}:127.0.0.1 https://{name}:{port}/")
    };
    println!("\ntry:");
    println!(
        "  {}                # exact name",
        curl("site000001.demo.test")
    );
    println!(
        "  {}           # one-label wildcard",
        curl("api.wild.demo.test")
    );
    println!(
        "  {}          # unknown name: the default",
        curl("unknown.demo.test")
    );
    println!(
        "  openssl s_client -connect 127.0.0.1:{port} -servername dual.demo.test -sigalgs rsa_pss_rsae_sha256 -CAfile {ca}   # RSA chain"
    );
    println!(
        "  openssl s_client -connect 127.0.0.1:{port} -servername dual.demo.test -sigalgs ecdsa_secp256r1_sha256 -CAfile {ca}   # ECDSA chain"
    );
    println!(
        "  edit or replace a file under {}/certs: the store reloads by itself\n",
        dir.display()
    );
}

/// Writes ca.pem, certs/ and ssl_multicert.config; returns the config's path.
pub(crate) fn generate(dir: &Path, names: usize) -> Res<PathBuf> {
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).map_err(CliError::io(&certs))?;
    let write =
        |path: PathBuf, text: String| std::fs::write(&path, text).map_err(CliError::io(path));
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "edgetls demo root");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate()?;
    write(dir.join("ca.pem"), params.self_signed(&ca_key)?.pem())?;
    let ca = Issuer::new(params, ca_key);
    let rsa_der = PKey::from_rsa(Rsa::generate(2048)?)?.private_key_to_pem_pkcs8()?;
    let rsa_pem = String::from_utf8_lossy(&rsa_der).into_owned();
    let rsa = KeyPair::from_pkcs8_pem_and_sign_algo(&rsa_pem, &rcgen::PKCS_RSA_SHA256)?;
    let issue = |file: &str, names: &[String], key: Option<&KeyPair>| -> Res<()> {
        let mut p = CertificateParams::new(names.to_vec())?;
        p.distinguished_name
            .push(DnType::CommonName, names[0].clone());
        let (cert, key_pem) = match key {
            Some(k) => (p.signed_by(k, &ca)?, rsa_pem.clone()),
            None => {
                let k = KeyPair::generate()?;
                (p.signed_by(&k, &ca)?, k.serialize_pem())
            }
        };
        write(certs.join(file), format!("{}{key_pem}", cert.pem()))?;
        Ok(())
    };
    let mut config = String::from("# edgetls demo: generated\n");
    for i in 0..names {
        let name = format!("site{i:06}.demo.test");
        issue(
            &format!("{name}.pem"),
            &[name.clone(), format!("www.{name}")],
            None,
        )?;
        let _ = writeln!(config, "ssl_cert_name=certs/{name}.pem");
    }
    issue("wild.demo.test.pem", &["*.wild.demo.test".into()], None)?;
    issue(
        "dual.demo.test.rsa.pem",
        &["dual.demo.test".into()],
        Some(&rsa),
    )?;
    issue("dual.demo.test.ecdsa.pem", &["dual.demo.test".into()], None)?;
    issue("default.demo.test.pem", &["default.demo.test".into()], None)?;
    config.push_str("ssl_cert_name=certs/wild.demo.test.pem\n");
    config.push_str("ssl_cert_name=certs/dual.demo.test.rsa.pem,certs/dual.demo.test.ecdsa.pem\n");
    config.push_str("dest_ip=* ssl_cert_name=certs/default.demo.test.pem\n");
    let path = dir.join("ssl_multicert.config");
    write(path.clone(), config)?;
    Ok(path)
}
