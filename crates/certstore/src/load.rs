//! Loading: sources → specs → entries (in parallel) → index, with a report of every problem.

use crate::entry::Entry;
use crate::error::{CertStoreError, Problem, Severity};
use crate::index::{EntryIdx, Index, IndexInput};
use crate::report::Report;
use crate::snapshot::{Snapshot, Trouble};
use crate::source::{EntrySpec, Source, SourceOptions};
use crate::watch::absolute;
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

/// Called with (entries done, entries total) while a load runs.
pub type Progress = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// How to load.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct LoadOptions {
    /// How the sources are read (see [`SourceOptions`](crate::SourceOptions)).
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
    /// Called as entries are loaded, for progress bars.
    pub progress: Option<Progress>,
    /// Also parse every certificate with OpenSSL (`d2i_X509`, ≈ 97 µs each here) at load time.
    /// By default certificates are parsed strictly in Rust at load and by OpenSSL when a
    /// handshake first needs them; with this set, an entry reported as loaded has passed the
    /// exact parse the handshake will do.
    pub openssl_verify: bool,
    /// Where keys come from for the certificates of [`remote_key_sources`](Self::remote_key_sources)
    /// that have none of their own (see [`KeySource`](crate::KeySource)).
    pub remote_keys: Option<Arc<dyn crate::KeySource>>,
    /// The sources, by the path each is given with, whose certificates have their keys on a key
    /// server: a certificate of one of these without a key of its own is served with a remote
    /// key from [`remote_keys`](Self::remote_keys). A certificate of any other source without
    /// its key is an error (on a reload its previous version keeps serving): a bundle that lost
    /// its key — written in place and caught half-way, say — never becomes a remote-key entry.
    /// Each path must be one of the sources loaded, and `remote_keys` must be set.
    pub remote_key_sources: Vec<PathBuf>,
    /// The memory budget, bytes, of the entries' OpenSSL objects shared by every thread
    /// (`None`: [`DEFAULT_CACHE_BYTES`](crate::DEFAULT_CACHE_BYTES), 1 GiB).
    pub cache_bytes: Option<usize>,
    /// No default at all (HAProxy's `strict-sni`): a connection whose server name no
    /// certificate lists, or that sends none, is refused even when a source names a default.
    /// Entries chosen by the local address (`dest_ip`) still are.
    pub strict_sni: bool,
}

impl std::fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadOptions")
            .field("sources", &self.sources)
            .field("passphrase", &self.passphrase.as_ref().map(|_| "<set>"))
            .field("implicit_default", &self.implicit_default)
            .field("strict_sni", &self.strict_sni)
            .field("now", &self.now)
            .field("openssl_verify", &self.openssl_verify)
            .field("remote_keys", &self.remote_keys.as_ref().map(|_| "<set>"))
            .field("remote_key_sources", &self.remote_key_sources)
            .finish_non_exhaustive()
    }
}

pub(crate) static NEXT_ID: AtomicU64 = AtomicU64::new(1);

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
    let remote = remote_key_sources(sources, opts)?;
    for (source, remote) in sources.iter().zip(remote) {
        let (mut s, problems) = source.specs(&opts.sources)?;
        for spec in &mut s {
            spec.remote_key = remote;
        }
        report.failed += problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count();
        report.problems.extend(problems);
        specs.extend(s);
    }
    report.entries = specs.len();
    let now = now(opts);
    let prev: HashMap<PrevKey<'_>, &Arc<Entry>> = previous
        .map(|p| {
            p.entries()
                .iter()
                .map(|e| (PrevKey(&e.spec.origin, &e.spec.certs), e))
                .collect()
        })
        .unwrap_or_default();
    let ctx = Ctx {
        opts,
        now,
        implicit_default: implicit_default(sources, opts),
        prev,
        passphrases: Mutex::new(HashMap::new()),
        done: AtomicUsize::new(0),
        total: specs.len(),
    };
    let outcomes: Vec<Outcome> = specs
        .into_par_iter()
        .map(|spec| ctx.load_entry(spec))
        .collect();
    let mut entries: Vec<Arc<Entry>> = Vec::with_capacity(outcomes.len());
    let mut shared: HashMap<Arc<[u8]>, ()> = HashMap::new();
    for outcome in outcomes {
        if let Some(e) = outcome.into_entry(&mut report, &mut shared) {
            entries.push(e);
        }
    }
    Ok(finish(
        entries,
        ctx.defaults(),
        report,
        started,
        Trouble::default(),
    ))
}

impl Outcome {
    /// The entry to serve (none for a failure), with the outcome counted in `report`.
    fn into_entry(
        self,
        report: &mut Report,
        shared: &mut HashMap<Arc<[u8]>, ()>,
    ) -> Option<Arc<Entry>> {
        match self {
            Outcome::Loaded(mut entry, problems) => {
                share_intermediates(&mut entry, shared);
                report.problems.extend(problems);
                Some(Arc::from(entry))
            }
            Outcome::Reused(entry) => {
                report.reused += 1;
                Some(entry)
            }
            Outcome::Kept(entry, problems) => {
                report.kept_previous += 1;
                report.kept_ids.push(entry.id());
                report.problems.extend(problems);
                Some(entry)
            }
            Outcome::Failed(problems) => {
                report.failed += 1;
                report.problems.extend(problems);
                None
            }
        }
    }
}

/// Indexes `entries` and completes `report` with what the new snapshot serves; `carried` is
/// the trouble of entries this load did not read (a partial reload's others).
fn finish(
    entries: Vec<Arc<Entry>>,
    defaults: Defaults,
    mut report: Report,
    started: Instant,
    carried: Trouble,
) -> (Snapshot, Report) {
    let (snapshot, conflicts) = build_snapshot(entries, defaults);
    report.problems.extend(conflicts);
    finish_with(snapshot, report, started, carried)
}

/// [`finish`] for a snapshot already built.
fn finish_with(
    mut snapshot: Snapshot,
    mut report: Report,
    started: Instant,
    mut carried: Trouble,
) -> (Snapshot, Report) {
    carried.failed += report.failed;
    carried.kept.extend(report.kept_ids.iter().copied());
    snapshot.trouble = carried;
    describe(&snapshot, &mut report, started);
    (snapshot, report)
}

/// Fills `report`'s figures about `snapshot` (what it holds, when it expires first).
fn describe(snapshot: &Snapshot, report: &mut Report, started: Instant) {
    report.loaded = snapshot.entries().len();
    report.names = snapshot.index.exact.len();
    report.wildcards = snapshot.index.wildcard.len();
    report.ip_keys = snapshot.index.ip_keys();
    report.default = snapshot
        .index
        .first_default()
        .map(|d| snapshot.entries()[d as usize].path().to_path_buf());
    report.nearest_expiry = snapshot.nearest_expiry;
    report.heap_bytes = snapshot.heap_bytes();
    report.elapsed = started.elapsed();
}

/// A reload after `changed` files were written, reading only the entries that name them: the
/// directories are not listed again and the other entries' files not looked at; no new
/// snapshot when nothing changed (`Some((None, _))`). `None` when
/// that cannot be done (a changed file that no loaded entry names — new, or of an entry that
/// failed — is for a full reload, which lists the sources).
pub(crate) fn load_changed(
    sources: &[Source],
    opts: &LoadOptions,
    previous: &Snapshot,
    changed: &[PathBuf],
) -> Option<(Option<Snapshot>, Report)> {
    let started = Instant::now();
    // Watchers report absolute paths; a store loaded from relative ones compares in those terms.
    // The entries naming each file come from the snapshot's path map (built once, not a walk
    // over 100,000 entries per reload).
    let by_path = previous.by_path();
    let entries = previous.entries();
    let mut affected = Vec::new();
    let mut added = Vec::new();
    for p in changed {
        let abs = absolute(p);
        match by_path.get(abs.as_os_str().as_encoded_bytes()) {
            Some(hits) => affected.extend(hits.iter().map(|&i| i as usize)),
            // (A file that failed before is not new: everything is read again for it.)
            None if previous.trouble.failed == 0 => {
                added.push(new_in_dir(sources, opts, entries, &abs)?)
            }
            None => return None,
        }
    }
    affected.sort_unstable();
    affected.dedup();
    let ctx = Ctx {
        opts,
        now: now(opts),
        implicit_default: implicit_default(sources, opts),
        prev: affected
            .iter()
            .map(|&i| {
                (
                    PrevKey(&entries[i].spec.origin, &entries[i].spec.certs),
                    &entries[i],
                )
            })
            .collect(),
        passphrases: Mutex::new(HashMap::new()),
        done: AtomicUsize::new(0),
        total: affected.len() + added.len(),
    };
    let mut report = Report {
        entries: entries.len() + added.len(),
        reused: entries.len() - affected.len(),
        ..Report::default()
    };
    // The others keep their standing: the failed lines (a change to one is a full reload) and
    // the kept entries not read again.
    let mut carried = previous.trouble.clone();
    for &i in &affected {
        carried.kept.remove(&entries[i].id());
    }
    let mut shared = HashMap::new();
    let mut loaded = Vec::with_capacity(affected.len());
    for &i in &affected {
        // Every affected entry has a previous version: a broken file keeps it (Kept).
        loaded.push(
            ctx.load_entry(entries[i].spec.clone())
                .into_entry(&mut report, &mut shared)?,
        );
    }
    report.replaced_ids = affected
        .iter()
        .zip(&loaded)
        .filter(|(i, e)| !Arc::ptr_eq(&entries[**i], e))
        .map(|(&i, _)| entries[i].id())
        .collect();
    // (An entry that was serving its previous version, and is whole again with that same
    // version, is a change: its trouble ends.)
    let was_kept = affected
        .iter()
        .any(|&i| previous.trouble.kept.contains(&entries[i].id()));
    if added.is_empty()
        && report.replaced_ids.is_empty()
        && report.kept_ids.is_empty()
        && report.failed == 0
        && !was_kept
    {
        // Nothing new (the reload that follows one's own write, seen by a watcher): the
        // snapshot stays — no copy of every entry's reference made and dropped for nothing.
        report.partial = true;
        report.same_claims = true;
        describe(previous, &mut report, started);
        return Some((None, report));
    }
    let mut next: Vec<Arc<Entry>> = entries.to_vec();
    for (&i, e) in affected.iter().zip(loaded) {
        next[i] = e;
    }
    if !added.is_empty() {
        // New files: each loaded alone (a broken one: everything is read again, which reports
        // it), placed where reading the directory would put it, the index built anew.
        added.sort_by(|a, b| (a.0, a.1.certs[0].as_os_str()).cmp(&(b.0, b.1.certs[0].as_os_str())));
        let mut new = Vec::with_capacity(added.len());
        for (at, spec) in added {
            new.push((
                at,
                ctx.load_entry(spec).into_entry(&mut report, &mut shared)?,
            ));
        }
        let mut merged = Vec::with_capacity(next.len() + new.len());
        let mut new = new.into_iter().peekable();
        for (i, e) in next.into_iter().enumerate() {
            while let Some((_, n)) = new.next_if(|(at, _)| *at == i) {
                merged.push(n);
            }
            merged.push(e);
        }
        merged.extend(new.map(|(_, n)| n));
        // Not partial: the new files are to be watched (the caller works out the set again).
        let (snapshot, report) = finish(merged, ctx.defaults(), report, started, carried);
        return Some((Some(snapshot), report));
    }
    report.partial = true;
    // A certificate replaced for the same names (the common case: a renewal) changes no
    // claim: the index is shared, not rebuilt — at 100,000 entries the rebuild is most of the
    // reload.
    if affected.iter().all(|&i| entries[i].same_claims(&next[i])) {
        let snapshot = Snapshot::replacing(previous, next, &affected);
        report.same_claims = true;
        let (snapshot, report) = finish_with(snapshot, report, started, carried);
        return Some((Some(snapshot), report));
    }
    let (snapshot, report) = finish(next, ctx.defaults(), report, started, carried);
    Some((Some(snapshot), report))
}

/// Where the file `abs`, new in a directory source, goes among `entries`, with its spec — the
/// position and spec a full read of that directory would give it; `None` unless it is a lone
/// certificate file in exactly one directory source that has entries already.
fn new_in_dir(
    sources: &[Source],
    opts: &LoadOptions,
    entries: &[Arc<Entry>],
    abs: &Path,
) -> Option<(usize, EntrySpec)> {
    let parent = abs.parent()?;
    let remote = remote_key_sources(sources, opts).ok()?;
    let mut dirs = sources
        .iter()
        .zip(remote)
        .filter(|(s, _)| matches!(s, Source::Dir(d) if absolute(d) == parent));
    let (source, remote) = dirs.next()?;
    if dirs.next().is_some() {
        return None;
    }
    let mut spec = source.lone_file_spec(abs)?;
    spec.remote_key = remote;
    // That directory's entries: contiguous, in file-name order, without a line.
    let of_dir =
        |e: &Arc<Entry>| e.spec.line.is_none() && absolute(&e.spec.origin).parent() == Some(parent);
    let first = entries.iter().position(of_dir)?;
    let len = entries[first..].iter().take_while(|e| of_dir(e)).count();
    let before = entries[first..first + len]
        .iter()
        .take_while(|e| e.spec.certs[0].as_os_str() < spec.certs[0].as_os_str())
        .count();
    Some((first + before, spec))
}

/// For each source, whether it is declared keyless; an error for a declared path that is not
/// a source, or declared sources without a key source.
fn remote_key_sources(sources: &[Source], opts: &LoadOptions) -> Result<Vec<bool>, CertStoreError> {
    let declared: Vec<PathBuf> = opts
        .remote_key_sources
        .iter()
        .map(|p| absolute(p).into_owned())
        .collect();
    let of_sources: Vec<PathBuf> = sources
        .iter()
        .map(|s| absolute(s.path()).into_owned())
        .collect();
    for (given, path) in opts.remote_key_sources.iter().zip(&declared) {
        if !of_sources.contains(path) {
            return Err(CertStoreError::RemoteKeySource {
                path: given.clone(),
                message: "declared as a source of remote-key certificates, but it is not one of the sources loaded".into(),
            });
        }
        if opts.remote_keys.is_none() {
            return Err(CertStoreError::RemoteKeySource {
                path: given.clone(),
                message: "declared as a source of remote-key certificates, but no key source (key server) is configured".into(),
            });
        }
    }
    Ok(of_sources.iter().map(|p| declared.contains(p)).collect())
}

/// Whether the first entry is the default for a load of `sources` with `opts`.
fn implicit_default(sources: &[Source], opts: &LoadOptions) -> bool {
    opts.implicit_default
        .unwrap_or_else(|| !sources.iter().all(|s| matches!(s, Source::Multicert(_))))
}

fn now(opts: &LoadOptions) -> i64 {
    opts.now.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    })
}

/// Builds the index over `entries` (source order) and reports names claimed twice.
pub(crate) fn build_snapshot(
    entries: Vec<Arc<Entry>>,
    defaults: Defaults,
) -> (Snapshot, Vec<Problem>) {
    let mut input = IndexInput {
        exact: vec![],
        wildcard: vec![],
        excluded: vec![],
        ips: vec![],
        defaults: vec![],
    };
    for (i, e) in entries.iter().enumerate() {
        let i = i as EntryIdx;
        let types = e.key_types();
        // A tunnel entry has no chains: it claims its names whatever the client's key types.
        let own = |n: &'_ crate::entry::Name| if e.chains.is_empty() { types } else { n.types };
        input
            .exact
            .extend(e.names.iter().map(|n| (&*n.text, i, own(n))));
        input
            .wildcard
            .extend(e.wildcards.iter().map(|n| (&*n.text, i, own(n))));
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
        if e.spec.default {
            input.defaults.push((i, types));
        }
    }
    if input.defaults.is_empty() && defaults.implicit {
        if let Some(i) = entries.iter().position(|e| !e.is_tunnel()) {
            input.defaults.push((i as EntryIdx, entries[i].key_types()));
        }
    }
    if defaults.strict {
        input.defaults.clear();
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
                    types: c.types.to_string(),
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

/// An entry of the previous snapshot is found by its origin and certificate files, compared
/// as bytes (`Path`'s own `Hash` and `Eq` walk components: a fifth of a 100,000-entry reload).
#[derive(Clone, Copy)]
pub(crate) struct PrevKey<'a>(&'a Path, &'a [PathBuf]);

impl std::hash::Hash for PrevKey<'_> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write(self.0.as_os_str().as_encoded_bytes());
        for c in self.1 {
            h.write(c.as_os_str().as_encoded_bytes());
        }
    }
}

impl PartialEq for PrevKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        fn bytes(p: &Path) -> &[u8] {
            p.as_os_str().as_encoded_bytes()
        }
        bytes(self.0) == bytes(other.0)
            && self.1.len() == other.1.len()
            && self
                .1
                .iter()
                .zip(other.1)
                .all(|(a, b)| bytes(a) == bytes(b))
    }
}

impl Eq for PrevKey<'_> {}

/// Which defaults a snapshot has.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Defaults {
    /// The first entry is the default when no source names one.
    pub(crate) implicit: bool,
    /// No default at all (`strict_sni`).
    pub(crate) strict: bool,
}

impl Ctx<'_> {
    fn defaults(&self) -> Defaults {
        Defaults {
            implicit: self.implicit_default,
            strict: self.opts.strict_sni,
        }
    }
}

pub(crate) struct Ctx<'a> {
    pub(crate) opts: &'a LoadOptions,
    pub(crate) now: i64,
    /// The first entry becomes the default (see [`LoadOptions::implicit_default`]): an entry
    /// with no name may then be served.
    pub(crate) implicit_default: bool,
    pub(crate) prev: HashMap<PrevKey<'a>, &'a Arc<Entry>>,
    /// Output of `ssl_key_dialog=exec:` commands, run once per load.
    pub(crate) passphrases: Mutex<HashMap<String, Result<Zeroizing<String>, String>>>,
    pub(crate) done: AtomicUsize,
    pub(crate) total: usize,
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
        let previous = self.prev.get(&PrevKey(&spec.origin, &spec.certs)).copied();
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
        // Unchanged metadata: the files are not read again (a reload of 100,000 entries with
        // one changed file reads one file).
        if let Some(old) = previous {
            if old.spec == spec && old.stamp == stamp_files(&spec) {
                return Outcome::Reused(old.clone());
            }
        }
        // The stamp kept is that of the files as read (their own fstat, no second lookup).
        let (files, stamp) = match read_files(&spec) {
            Ok(f) => f,
            Err(e) => return fail(e),
        };
        let content_hash = hash_files(&files);
        if let Some(old) = previous {
            if old.content_hash == content_hash && old.spec == spec {
                return Outcome::Reused(old.clone());
            }
        }
        match self.build_entry(spec.clone(), &files, content_hash, stamp) {
            Ok((entry, warnings)) => Outcome::Loaded(Box::new(entry), warnings),
            Err(e) => fail(e),
        }
    }
}

/// Validates one bundle held in memory (certificates and key in one PEM text) exactly as the
/// loader validates a `.pem` file. For the fuzzers.
#[cfg(feature = "fuzzing")]
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
        implicit_default: true,
        prev: HashMap::new(),
        passphrases: Mutex::new(HashMap::new()),
        done: AtomicUsize::new(0),
        total: 1,
    };
    let files = Files(vec![(path, bytes.to_vec())]);
    let (entry, _) = ctx.build_entry(spec, &files, [0; 32], [0; 32])?;
    Ok(entry.names.len() + entry.wildcards.len())
}

pub(crate) fn problem(spec: &EntrySpec, severity: Severity, error: CertStoreError) -> Problem {
    Problem {
        severity,
        origin: spec.origin.clone(),
        line: spec.line,
        error,
    }
}

/// The bytes of every file an entry names, read once.
pub(crate) struct Files(pub(crate) Vec<(PathBuf, Vec<u8>)>);

impl Files {
    pub(crate) fn get(&self, path: &Path) -> &[u8] {
        self.0
            .iter()
            .find(|(p, _)| p == path)
            .map_or(&[], |(_, b)| b.as_slice())
    }
}

/// The entry's files, each once, in a fixed order (certificates, keys, extra chain files,
/// then the optional ones: OCSP responses and issuers, read when they exist).
pub(crate) fn entry_paths(spec: &EntrySpec) -> Vec<&PathBuf> {
    let mut paths: Vec<&PathBuf> = Vec::with_capacity(spec.certs.len() * 4);
    let all = spec
        .certs
        .iter()
        .chain(spec.keys.iter().flatten())
        .chain(&spec.ca)
        .chain(&spec.optional);
    for path in all {
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    paths
}

/// Adds one file's metadata to a stamp (a missing file counts as such).
fn stamp_file(h: &mut openssl::sha::Sha256, path: &Path, meta: Option<&std::fs::Metadata>) {
    use std::os::unix::fs::MetadataExt;
    h.update(path.as_os_str().as_encoded_bytes());
    match meta {
        Some(m) => {
            for v in [
                m.len() as i64,
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
                m.ino() as i64,
            ] {
                h.update(&v.to_le_bytes());
            }
        }
        None => h.update(b"missing"),
    }
}

/// A digest of the metadata of the entry's files, without reading them.
fn stamp_files(spec: &EntrySpec) -> [u8; 32] {
    let mut h = openssl::sha::Sha256::new();
    for path in entry_paths(spec) {
        stamp_file(&mut h, path, std::fs::metadata(path).ok().as_ref());
    }
    h.finish()
}

/// Reads the entry's files, and the stamp of their metadata as read.
fn read_files(spec: &EntrySpec) -> Result<(Files, [u8; 32]), CertStoreError> {
    use std::io::Read;
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::with_capacity(spec.certs.len() * 2);
    let mut h = openssl::sha::Sha256::new();
    for path in entry_paths(spec) {
        let io = |e| CertStoreError::io(path, e);
        let mut f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && spec.optional.contains(path) => {
                stamp_file(&mut h, path, None);
                continue;
            }
            Err(e) => return Err(io(e)),
        };
        let meta = f.metadata().map_err(io)?;
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        f.read_to_end(&mut bytes).map_err(io)?;
        stamp_file(&mut h, path, Some(&meta));
        files.push((path.clone(), bytes));
    }
    Ok((Files(files), h.finish()))
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
