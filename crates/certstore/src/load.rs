//! Loading: sources → specs → entries (in parallel) → index, with a report of every problem.

use crate::cert;
use crate::entry::{Chain, Entry};
use crate::error::{CertStoreError, Problem, Severity};
use crate::index::{EntryIdx, Index, IndexInput};
use crate::key::{self, KeyError};
use crate::name::{NamePattern, parse_pattern};
use crate::pem;
use crate::snapshot::Snapshot;
use crate::source::{EntrySpec, KeyDialog, Source, SourceOptions};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

/// Called with (entries done, entries total) while a load runs.
pub type Progress = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// How to load.
#[derive(Clone, Default)]
pub struct LoadOptions {
    pub sources: SourceOptions,
    /// The passphrase for encrypted keys (`ssl_key_dialog=builtin`, and any encrypted key of a
    /// directory or crt-list).
    pub passphrase: Option<Zeroizing<String>>,
    /// Without an explicit default (`dest_ip=*`, crt-list `*`), make the first loaded entry the
    /// default. `None` follows the servers whose files these are: on for directories and
    /// crt-lists (HAProxy serves its first certificate), off when every source is an
    /// ssl_multicert.config (Traffic Server has a default only with `dest_ip=*`).
    pub implicit_default: Option<bool>,
    /// Unix time to judge expiry by (default: now).
    pub now: Option<i64>,
    pub progress: Option<Progress>,
    /// Also parse every certificate with OpenSSL (`d2i_X509`, ≈ 97 µs each here) at load time.
    /// By default certificates are parsed strictly in Rust at load and by OpenSSL when a
    /// handshake first needs them; with this set, an entry reported as loaded has passed the
    /// exact parse the handshake will do.
    pub openssl_verify: bool,
}

impl std::fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadOptions")
            .field("sources", &self.sources)
            .field("passphrase", &self.passphrase.as_ref().map(|_| "<set>"))
            .field("implicit_default", &self.implicit_default)
            .field("now", &self.now)
            .field("openssl_verify", &self.openssl_verify)
            .finish_non_exhaustive()
    }
}

/// What a load (or reload) did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    /// Entries configured (lines that parsed, certificate files found).
    pub entries: usize,
    /// Entries served by the new snapshot, including reused and kept ones.
    pub loaded: usize,
    /// Entries and configuration lines that are not served.
    pub failed: usize,
    /// Entries a reload took unchanged from the previous snapshot.
    pub reused: usize,
    /// Entries whose new files are broken and whose previous version keeps serving.
    pub kept_previous: usize,
    pub names: usize,
    pub wildcards: usize,
    pub ip_keys: usize,
    /// The default entry's file.
    pub default: Option<PathBuf>,
    /// Unix time of the earliest expiry among served entries.
    pub nearest_expiry: Option<i64>,
    /// Heap bytes held by the entries and the index (certificates and keys as DER).
    pub heap_bytes: usize,
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
    pub problems: Vec<Problem>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Report {
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

enum Outcome {
    Loaded(Box<Entry>, Vec<Problem>),
    Reused(Arc<Entry>),
    Kept(Arc<Entry>, Vec<Problem>),
    Failed(Vec<Problem>),
}

/// Loads `sources` into a snapshot. `previous` lets unchanged entries be reused and broken
/// ones keep their previous version. Fails only when a source itself is unusable.
pub(crate) fn load(
    sources: &[Source],
    opts: &LoadOptions,
    previous: Option<&Snapshot>,
) -> Result<(Snapshot, Report), CertStoreError> {
    let started = Instant::now();
    let mut report = Report::default();
    let mut specs = Vec::new();
    for source in sources {
        let (s, problems) = source.specs(&opts.sources)?;
        report.failed += problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count();
        report.problems.extend(problems);
        specs.extend(s);
    }
    report.entries = specs.len();
    let now = opts.now.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    });
    let prev: HashMap<(&Path, &[PathBuf]), &Arc<Entry>> = previous
        .map(|p| {
            p.entries()
                .iter()
                .map(|e| ((e.spec.origin.as_path(), e.spec.certs.as_slice()), e))
                .collect()
        })
        .unwrap_or_default();
    let ctx = Ctx {
        opts,
        now,
        prev,
        passphrases: Mutex::new(HashMap::new()),
        done: AtomicUsize::new(0),
        total: specs.len(),
    };
    let outcomes: Vec<Outcome> = specs
        .into_par_iter()
        .map(|spec| ctx.load_entry(spec))
        .collect();

    let mut shared: HashMap<Arc<[u8]>, ()> = HashMap::new();
    let mut entries: Vec<Arc<Entry>> = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        match outcome {
            Outcome::Loaded(mut entry, problems) => {
                share_intermediates(&mut entry, &mut shared);
                report.problems.extend(problems);
                entries.push(Arc::from(entry));
            }
            Outcome::Reused(entry) => {
                report.reused += 1;
                entries.push(entry);
            }
            Outcome::Kept(entry, problems) => {
                report.kept_previous += 1;
                report.problems.extend(problems);
                entries.push(entry);
            }
            Outcome::Failed(problems) => {
                report.failed += 1;
                report.problems.extend(problems);
            }
        }
    }
    let implicit_default = opts
        .implicit_default
        .unwrap_or_else(|| !sources.iter().all(|s| matches!(s, Source::Multicert(_))));
    let (snapshot, conflicts) = build_snapshot(entries, implicit_default);
    report.problems.extend(conflicts);
    report.loaded = snapshot.entries().len();
    report.names = snapshot.index.exact.len();
    report.wildcards = snapshot.index.wildcard.len();
    report.ip_keys = snapshot.index.ip_keys();
    report.default = snapshot
        .index
        .default
        .map(|d| snapshot.entries()[d as usize].path().to_path_buf());
    report.nearest_expiry = snapshot
        .entries()
        .iter()
        .filter_map(|e| e.not_after())
        .min();
    report.heap_bytes = snapshot.heap_bytes();
    report.elapsed = started.elapsed();
    Ok((snapshot, report))
}

/// Builds the index over `entries` (source order) and reports names claimed twice.
pub(crate) fn build_snapshot(
    entries: Vec<Arc<Entry>>,
    implicit_default: bool,
) -> (Snapshot, Vec<Problem>) {
    let mut input = IndexInput {
        exact: vec![],
        wildcard: vec![],
        excluded: vec![],
        ips: vec![],
        default: None,
    };
    for (i, e) in entries.iter().enumerate() {
        let i = i as EntryIdx;
        input.exact.extend(e.names.iter().map(|n| (&**n, i)));
        input.wildcard.extend(e.wildcards.iter().map(|n| (&**n, i)));
        input
            .excluded
            .extend(e.exclusions.iter().map(|n| (&**n, i)));
        if let Some(d) = e.spec.dest_ip {
            input.ips.push((d.addr, d.port.unwrap_or(0), false, i));
        }
        input.ips.extend(
            e.san_ips
                .iter()
                .map(|&ip| (crate::index::canonical_ip(ip), 0, true, i)),
        );
        if e.spec.default && input.default.is_none() {
            input.default = Some(i);
        }
    }
    if input.default.is_none() && implicit_default {
        input.default = entries
            .iter()
            .position(|e| !e.is_tunnel())
            .map(|i| i as EntryIdx);
    }
    let (index, conflicts) = Index::build(input);
    let problems = conflicts
        .into_iter()
        .map(|c| {
            let loser = &entries[c.loser as usize];
            Problem {
                severity: Severity::Warning,
                origin: loser.spec.origin.clone(),
                line: loser.spec.line,
                error: CertStoreError::NameConflict {
                    path: loser.path().to_path_buf(),
                    name: c.name,
                    winner: entries[c.winner as usize].path().to_path_buf(),
                },
            }
        })
        .collect();
    (Snapshot::new(entries, index), problems)
}

/// Makes identical intermediate certificates one allocation across entries.
fn share_intermediates(entry: &mut Entry, shared: &mut HashMap<Arc<[u8]>, ()>) {
    for chain in &mut entry.chains {
        for cert in chain.certs.iter_mut().skip(1) {
            match shared.get_key_value(&**cert) {
                Some((existing, _)) => *cert = existing.clone(),
                None => {
                    shared.insert(cert.clone(), ());
                }
            }
        }
    }
}

struct Ctx<'a> {
    opts: &'a LoadOptions,
    now: i64,
    prev: HashMap<(&'a Path, &'a [PathBuf]), &'a Arc<Entry>>,
    /// Output of `ssl_key_dialog=exec:` commands, run once per load.
    passphrases: Mutex<HashMap<String, Result<Zeroizing<String>, String>>>,
    done: AtomicUsize,
    total: usize,
}

impl Ctx<'_> {
    fn load_entry(&self, spec: EntrySpec) -> Outcome {
        let outcome = self.load_entry_inner(spec);
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(progress) = &self.opts.progress {
            if done % 256 == 0 || done == self.total {
                progress(done, self.total);
            }
        }
        outcome
    }

    fn load_entry_inner(&self, spec: EntrySpec) -> Outcome {
        let previous = self
            .prev
            .get(&(spec.origin.as_path(), spec.certs.as_slice()))
            .copied();
        let fail = |error: CertStoreError| match previous {
            Some(old) => Outcome::Kept(
                old.clone(),
                vec![problem(
                    &spec,
                    Severity::Error,
                    CertStoreError::KeptPrevious {
                        path: spec.display_path().to_path_buf(),
                        reason: Box::new(error),
                    },
                )],
            ),
            None => Outcome::Failed(vec![problem(&spec, Severity::Error, error)]),
        };
        let files = match read_files(&spec) {
            Ok(f) => f,
            Err(e) => return fail(e),
        };
        let content_hash = hash_files(&files);
        if let Some(old) = previous {
            if old.content_hash == content_hash && old.spec == spec {
                return Outcome::Reused(old.clone());
            }
        }
        match self.build_entry(spec.clone(), &files, content_hash) {
            Ok((entry, warnings)) => Outcome::Loaded(Box::new(entry), warnings),
            Err(e) => fail(e),
        }
    }

    fn build_entry(
        &self,
        spec: EntrySpec,
        files: &Files,
        content_hash: [u8; 32],
    ) -> Result<(Entry, Vec<Problem>), CertStoreError> {
        let mut warnings = Vec::new();
        let mut warn = |path: &Path, message: String| {
            warnings.push(problem(
                &spec,
                Severity::Warning,
                CertStoreError::Warning {
                    path: path.to_path_buf(),
                    message,
                },
            ));
        };
        let mut extra = Vec::new();
        for ca in &spec.ca {
            let blocks = parse_pem(ca, files.get(ca))?;
            extra.extend(
                blocks
                    .into_iter()
                    .filter(|b| b.label == "CERTIFICATE")
                    .map(|b| b.der),
            );
        }
        let mut chains = Vec::with_capacity(spec.certs.len());
        let mut dns = Vec::new();
        let mut san_ips = Vec::new();
        for (cert_path, key_path) in spec.certs.iter().zip(&spec.keys) {
            let blocks = parse_pem(cert_path, files.get(cert_path))?;
            let mut ders: Vec<Vec<u8>> = Vec::new();
            let mut key_blocks = Vec::new();
            for b in blocks {
                if b.label == "CERTIFICATE" {
                    ders.push(b.der);
                } else if key::is_key_label(b.label) {
                    key_blocks.push(b);
                }
            }
            let own_certs = ders.len();
            ders.extend(extra.iter().cloned());
            // Parse every certificate once: the leaf's facts, and each link of the chain.
            let mut leaf = None;
            let mut prev_issuer: Option<Vec<u8>> = None;
            for (i, der) in ders.iter().enumerate() {
                let (facts, subject, issuer) =
                    cert::parse(der).map_err(|m| CertStoreError::cert(cert_path, i + 1, m))?;
                if self.opts.openssl_verify {
                    openssl::x509::X509::from_der(der).map_err(|e| {
                        CertStoreError::cert(cert_path, i + 1, format!("OpenSSL rejects it: {e}"))
                    })?;
                }
                if prev_issuer.take().is_some_and(|want| want != subject) {
                    warn(
                        cert_path,
                        format!(
                            "chain out of order: certificate {} did not issue certificate {i}",
                            i + 1
                        ),
                    );
                }
                prev_issuer = Some(issuer);
                leaf.get_or_insert(facts);
            }
            let Some(leaf) = leaf.filter(|_| own_certs > 0) else {
                return Err(CertStoreError::cert(
                    cert_path,
                    0,
                    "no CERTIFICATE block in this file",
                ));
            };
            // The key: from its own file, or from the certificate file.
            let key_blocks_owned;
            let (key_file, key_block) = match key_path {
                Some(kp) => {
                    key_blocks_owned = parse_pem(kp, files.get(kp))?;
                    let mut keys = key_blocks_owned
                        .iter()
                        .filter(|b| key::is_key_label(b.label));
                    let first = keys.next().ok_or_else(|| {
                        CertStoreError::key(kp, "no private key block in this file")
                    })?;
                    if keys.next().is_some() {
                        return Err(CertStoreError::key(
                            kp,
                            "more than one private key in this file",
                        ));
                    }
                    (kp.as_path(), first)
                }
                None => match key_blocks.as_slice() {
                    [one] => (cert_path.as_path(), one),
                    [] => {
                        return Err(CertStoreError::key(
                            cert_path,
                            "no private key in the certificate file and no key file",
                        ));
                    }
                    _ => {
                        return Err(CertStoreError::key(
                            cert_path,
                            "more than one private key in this file",
                        ));
                    }
                },
            };
            let passphrase = self.passphrase(
                &spec,
                key_block.has_headers || key_block.label == "ENCRYPTED PRIVATE KEY",
                key_file,
            )?;
            let (material, key_public) =
                key::decode(key_block, passphrase.as_ref().map(|p| p.as_bytes())).map_err(|e| {
                    match e {
                        KeyError::NeedsPassphrase => {
                            CertStoreError::key(key_file, "encrypted, and no passphrase was given")
                        }
                        KeyError::Other(m) => CertStoreError::key(key_file, m),
                    }
                })?;
            let matched = key::matches(&key_public, &leaf.public)
                .map_err(|e| CertStoreError::key(key_file, e.to_string()))?;
            if !matched {
                return Err(CertStoreError::KeyMismatch {
                    cert: cert_path.clone(),
                    key: key_file.to_path_buf(),
                });
            }
            let key_type = leaf.public.key_type();
            if chains.iter().any(|c: &Chain| c.key_type == key_type) {
                return Err(CertStoreError::cert(
                    cert_path,
                    1,
                    format!("a second {} chain for the same entry", key_type.as_str()),
                ));
            }
            if leaf.not_after < self.now {
                warn(
                    cert_path,
                    format!("expired {} days ago", (self.now - leaf.not_after) / 86_400),
                );
            } else if leaf.not_before > self.now {
                warn(cert_path, "not valid yet".to_string());
            }
            dns.extend(leaf.dns);
            san_ips.extend(leaf.ips);
            chains.push(Chain {
                key_type,
                path: cert_path.clone(),
                certs: ders.into_iter().map(Arc::from).collect(),
                key: material,
                not_after: leaf.not_after,
            });
        }
        let configured = !spec.sni_filters.is_empty();
        let raw_names: Vec<String> = if configured {
            spec.sni_filters.clone()
        } else {
            dns
        };
        let mut names: Vec<Box<str>> = Vec::new();
        let mut wildcards: Vec<Box<str>> = Vec::new();
        for raw in &raw_names {
            match parse_pattern(raw) {
                Some(NamePattern::Exact(n)) if !names.iter().any(|x| **x == *n) => {
                    names.push(n.into_boxed_str())
                }
                Some(NamePattern::Wildcard(w)) if !wildcards.iter().any(|x| **x == *w) => {
                    wildcards.push(w.into_boxed_str())
                }
                Some(_) => {}
                None => warn(
                    spec.display_path(),
                    format!("name {raw:?} can never match a server name; ignored"),
                ),
            }
        }
        let exclusions = spec
            .exclusions
            .iter()
            .filter_map(|x| match parse_pattern(x) {
                Some(NamePattern::Exact(n)) => Some(n.into_boxed_str()),
                _ => None,
            });
        let exclusions = exclusions.collect();
        let reachable = !names.is_empty()
            || !wildcards.is_empty()
            || !san_ips.is_empty()
            || spec.dest_ip.is_some()
            || spec.default;
        if !reachable && !spec.tunnel {
            return Err(CertStoreError::cert(
                spec.display_path(),
                1,
                "no usable name: the subjectAltName has no DNS name or IP (and there is no CN), and the entry has no dest_ip or default",
            ));
        }
        if names.is_empty() && wildcards.is_empty() && !configured && !spec.tunnel {
            warn(
                spec.display_path(),
                "no DNS name in the certificate: selected only by address or as the default".into(),
            );
        }
        let entry = Entry {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            spec,
            chains,
            names,
            wildcards,
            exclusions,
            san_ips,
            content_hash,
        };
        Ok((entry, warnings))
    }

    /// The passphrase for an entry's key, if the key is encrypted.
    fn passphrase(
        &self,
        spec: &EntrySpec,
        encrypted: bool,
        key_file: &Path,
    ) -> Result<Option<Zeroizing<String>>, CertStoreError> {
        if !encrypted {
            return Ok(None);
        }
        match &spec.key_dialog {
            Some(KeyDialog::Exec(cmd)) => {
                let mut cache = self.passphrases.lock().unwrap_or_else(|p| p.into_inner());
                let result = cache.entry(cmd.clone()).or_insert_with(|| run_dialog(cmd));
                result
                    .clone()
                    .map(Some)
                    .map_err(|m| CertStoreError::key(key_file, m))
            }
            Some(KeyDialog::Builtin) | None => match &self.opts.passphrase {
                Some(p) => Ok(Some(p.clone())),
                None => Err(CertStoreError::key(
                    key_file,
                    if spec.key_dialog.is_some() {
                        "encrypted (ssl_key_dialog=builtin), and no passphrase was given"
                    } else {
                        "encrypted, and no passphrase was given"
                    },
                )),
            },
        }
    }
}

fn run_dialog(cmd: &str) -> Result<Zeroizing<String>, String> {
    let mut words = cmd.split_whitespace();
    let program = words.next().ok_or("ssl_key_dialog exec: empty command")?;
    let out = std::process::Command::new(program)
        .args(words)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("ssl_key_dialog exec:{cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ssl_key_dialog exec:{cmd}: exited with {}",
            out.status
        ));
    }
    let text = Zeroizing::new(
        String::from_utf8(out.stdout)
            .map_err(|_| format!("ssl_key_dialog exec:{cmd}: output is not UTF-8"))?,
    );
    Ok(Zeroizing::new(
        text.lines().next().unwrap_or("").to_string(),
    ))
}

/// Validates one bundle held in memory (certificates and key in one PEM text) exactly as the
/// loader validates a `.pem` file. For the fuzzers.
pub(crate) fn check_bundle(bytes: &[u8]) -> Result<usize, CertStoreError> {
    let path = PathBuf::from("bundle.pem");
    let spec = EntrySpec {
        origin: path.clone(),
        certs: vec![path.clone()],
        keys: vec![None],
        ..Default::default()
    };
    let opts = LoadOptions {
        passphrase: Some(Zeroizing::new("fuzz".into())),
        ..Default::default()
    };
    let ctx = Ctx {
        opts: &opts,
        now: 0,
        prev: HashMap::new(),
        passphrases: Mutex::new(HashMap::new()),
        done: AtomicUsize::new(0),
        total: 1,
    };
    let files = Files(vec![(path, bytes.to_vec())]);
    let (entry, _) = ctx.build_entry(spec, &files, [0; 32])?;
    Ok(entry.names.len() + entry.wildcards.len())
}

fn problem(spec: &EntrySpec, severity: Severity, error: CertStoreError) -> Problem {
    Problem {
        severity,
        origin: spec.origin.clone(),
        line: spec.line,
        error,
    }
}

/// The bytes of every file an entry names, read once.
struct Files(Vec<(PathBuf, Vec<u8>)>);

impl Files {
    fn get(&self, path: &Path) -> &[u8] {
        self.0
            .iter()
            .find(|(p, _)| p == path)
            .map_or(&[], |(_, b)| b.as_slice())
    }
}

fn read_files(spec: &EntrySpec) -> Result<Files, CertStoreError> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::with_capacity(spec.certs.len() * 2);
    let paths = spec
        .certs
        .iter()
        .chain(spec.keys.iter().flatten())
        .chain(&spec.ca);
    for path in paths {
        if files.iter().any(|(p, _)| p == path) {
            continue;
        }
        let bytes = std::fs::read(path).map_err(|e| CertStoreError::io(path, e))?;
        files.push((path.clone(), bytes));
    }
    Ok(Files(files))
}

fn hash_files(files: &Files) -> [u8; 32] {
    let mut h = openssl::sha::Sha256::new();
    for (path, bytes) in &files.0 {
        h.update(path.as_os_str().as_encoded_bytes());
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    h.finish()
}

fn parse_pem<'a>(path: &Path, bytes: &'a [u8]) -> Result<Vec<pem::Block<'a>>, CertStoreError> {
    let blocks = pem::parse(bytes).map_err(|e| CertStoreError::Pem {
        path: path.to_path_buf(),
        line: e.line,
        message: e.message,
    })?;
    if blocks.is_empty() {
        return Err(CertStoreError::Pem {
            path: path.to_path_buf(),
            line: 1,
            message: "no PEM blocks (is it DER, or empty?)".into(),
        });
    }
    Ok(blocks)
}
