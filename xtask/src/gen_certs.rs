//! Certificate sets for tests and benchmarks.
//!
//! Layout under `--out DIR`: `ca.pem` (root), `intermediate.pem` (with `--chain`), `certs/` with
//! one file per entry, `ssl_multicert.config` and `crt-list` listing every entry.
//! ECDSA P-256 entries get their own key each (rcgen, ~50 µs); RSA-2048 keys are slow to make, so
//! `--rsa-keys` of them are shared round-robin by the RSA entries.

use anyhow::{Context, Result};
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use rayon::prelude::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone)]
pub(crate) struct Args {
    /// Output directory (created; existing files with the same names are overwritten).
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// ECDSA P-256 entries, each with its own key: site000000.example.com, …
    #[arg(long, default_value_t = 100)]
    pub(crate) count: usize,
    /// RSA-2048 entries (rsa000000.example.com, …).
    #[arg(long, default_value_t = 0)]
    pub(crate) rsa: usize,
    /// Distinct RSA keys shared by the RSA entries.
    #[arg(long, default_value_t = 4)]
    pub(crate) rsa_keys: usize,
    /// Wildcard entries: *.wild000000.example.com, …
    #[arg(long, default_value_t = 0)]
    pub(crate) wildcards: usize,
    /// Names with both an RSA and an ECDSA chain (dual000000.example.com: files .pem.rsa and .pem.ecdsa).
    #[arg(long, default_value_t = 0)]
    pub(crate) dual: usize,
    /// Sign leaves with an intermediate CA and append it to each chain.
    #[arg(long)]
    pub(crate) chain: bool,
    /// Write keys to separate `.key` files instead of into the `.pem` bundle.
    #[arg(long)]
    pub(crate) separate_keys: bool,
    /// List entries in the config files in descending name order (ascending by default).
    #[arg(long)]
    pub(crate) descending: bool,
    /// Also write each single-chain entry's OCSP response (`CERT.ocsp`, "good", valid this
    /// many days, signed by its issuer) and, without `--chain`, its issuer (`CERT.issuer`).
    #[arg(long)]
    pub(crate) ocsp_days: Option<u32>,
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    key_pem: String,
}

fn ca(name: &str, parent: Option<&Ca>) -> Result<Ca> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate()?;
    let cert = match parent {
        Some(p) => params.signed_by(&key, &p.issuer)?,
        None => params.self_signed(&key)?,
    };
    Ok(Ca {
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        issuer: Issuer::new(params, key),
    })
}

enum Kind {
    Ecdsa,
    Rsa(usize),
    Wildcard,
    Dual,
}

struct Job {
    file: String,
    names: Vec<String>,
    kind: Kind,
}

/// Generates the set; returns a one-line summary.
pub(crate) fn run(args: &Args) -> Result<String> {
    let started = std::time::Instant::now();
    let certs_dir = args.out.join("certs");
    std::fs::create_dir_all(&certs_dir)
        .with_context(|| format!("creating {}", certs_dir.display()))?;
    let root = ca("edgetls test root", None)?;
    std::fs::write(args.out.join("ca.pem"), &root.pem)?;
    let intermediate = if args.chain {
        Some(ca("edgetls test intermediate", Some(&root))?)
    } else {
        None
    };
    if let Some(i) = &intermediate {
        std::fs::write(args.out.join("intermediate.pem"), &i.pem)?;
    }
    let signer = intermediate.as_ref().unwrap_or(&root);
    let chain_pem = intermediate
        .as_ref()
        .map(|i| i.pem.clone())
        .unwrap_or_default();
    let ocsp = match args.ocsp_days {
        Some(days) => Some((
            crate::ocsp_gen::Signer::new(&signer.pem, &signer.key_pem)?,
            days,
        )),
        None => None,
    };

    let wanted = if args.rsa + args.dual > 0 {
        args.rsa_keys.max(1)
    } else {
        0
    };
    let rsa_keys: Vec<(String, KeyPair)> = (0..wanted)
        .into_par_iter()
        .map(|_| -> Result<_> {
            let pem = String::from_utf8(
                PKey::from_rsa(Rsa::generate(2048)?)?.private_key_to_pem_pkcs8()?,
            )?;
            let pair = KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)?;
            Ok((pem, pair))
        })
        .collect::<Result<_>>()?;

    let mut jobs = Vec::new();
    for i in 0..args.count {
        let n = format!("site{i:06}.example.com");
        jobs.push(Job {
            file: n.clone(),
            names: vec![n.clone(), format!("www.{n}")],
            kind: Kind::Ecdsa,
        });
    }
    for i in 0..args.rsa {
        let n = format!("rsa{i:06}.example.com");
        jobs.push(Job {
            file: n.clone(),
            names: vec![n],
            kind: Kind::Rsa(i % rsa_keys.len().max(1)),
        });
    }
    for i in 0..args.wildcards {
        let n = format!("wild{i:06}.example.com");
        jobs.push(Job {
            file: n.clone(),
            names: vec![format!("*.{n}")],
            kind: Kind::Wildcard,
        });
    }
    for i in 0..args.dual {
        let n = format!("dual{i:06}.example.com");
        jobs.push(Job {
            file: n.clone(),
            names: vec![n],
            kind: Kind::Dual,
        });
    }

    // Each job writes its files and returns its config lines.
    let lines: Vec<(String, String)> = jobs
        .par_iter()
        .enumerate()
        .map(|(i, job)| -> Result<(String, String)> {
            let leaf = |names: &[String], rsa: Option<usize>| -> Result<(String, String)> {
                let mut params = CertificateParams::new(names.to_vec())?;
                params
                    .distinguished_name
                    .push(DnType::CommonName, names[0].clone());
                match rsa {
                    Some(k) => Ok((
                        params.signed_by(&rsa_keys[k].1, &signer.issuer)?.pem(),
                        rsa_keys[k].0.clone(),
                    )),
                    None => {
                        let key = KeyPair::generate()?;
                        Ok((
                            params.signed_by(&key, &signer.issuer)?.pem(),
                            key.serialize_pem(),
                        ))
                    }
                }
            };
            let write = |file: &str, (cert, key): (String, String)| -> Result<()> {
                let path = certs_dir.join(file);
                if args.separate_keys {
                    std::fs::write(&path, format!("{cert}{chain_pem}"))?;
                    std::fs::write(PathBuf::from(format!("{}.key", path.display())), key)?;
                } else {
                    std::fs::write(&path, format!("{cert}{chain_pem}{key}"))?;
                }
                Ok(())
            };
            let key_field = |file: &str| {
                if args.separate_keys {
                    format!(" ssl_key_name=certs/{file}.key")
                } else {
                    String::new()
                }
            };
            match job.kind {
                Kind::Dual => {
                    let (rsa, ec) = (
                        format!("{}.pem.rsa", job.file),
                        format!("{}.pem.ecdsa", job.file),
                    );
                    write(&rsa, leaf(&job.names, Some(i % rsa_keys.len()))?)?;
                    write(&ec, leaf(&job.names, None)?)?;
                    let keys = if args.separate_keys {
                        format!(" ssl_key_name=certs/{rsa}.key,certs/{ec}.key")
                    } else {
                        String::new()
                    };
                    Ok((
                        format!("ssl_cert_name=certs/{rsa},certs/{ec}{keys}"),
                        format!("certs/{}.pem", job.file),
                    ))
                }
                Kind::Rsa(_) | Kind::Ecdsa | Kind::Wildcard => {
                    let rsa = match job.kind {
                        Kind::Rsa(k) => Some(k),
                        _ => None,
                    };
                    let file = format!("{}.pem", job.file);
                    let made = leaf(&job.names, rsa)?;
                    if let Some((signer_keys, days)) = &ocsp {
                        let path = certs_dir.join(&file);
                        let der = signer_keys.good(&made.0, *days)?;
                        std::fs::write(format!("{}.ocsp", path.display()), der)?;
                        if !args.chain {
                            std::fs::write(format!("{}.issuer", path.display()), &signer.pem)?;
                        }
                    }
                    write(&file, made)?;
                    Ok((
                        format!("ssl_cert_name=certs/{file}{}", key_field(&file)),
                        format!("certs/{file}"),
                    ))
                }
            }
        })
        .collect::<Result<_>>()?;

    let mut ordered: Vec<&(String, String)> = lines.iter().collect();
    ordered.sort_by(|a, b| a.1.cmp(&b.1));
    if args.descending {
        ordered.reverse();
    }
    let mut multicert = String::from("# generated by cargo xtask gen-certs\n");
    let mut crt_list = String::from("# generated by cargo xtask gen-certs\n");
    for (m, c) in &ordered {
        let _ = writeln!(multicert, "{m}");
        let _ = writeln!(crt_list, "{c}");
    }
    write_file(&args.out.join("ssl_multicert.config"), &multicert)?;
    write_file(&args.out.join("crt-list"), &crt_list)?;
    Ok(format!(
        "wrote {} entries ({} ecdsa, {} rsa, {} wildcard, {} dual) to {} in {:.1} s",
        jobs.len(),
        args.count,
        args.rsa,
        args.wildcards,
        args.dual,
        args.out.display(),
        started.elapsed().as_secs_f64()
    ))
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
