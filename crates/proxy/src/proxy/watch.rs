//! One file watcher for the whole proxy (`notify`: inotify on Linux, its polling watcher where
//! inotify cannot be had): the directories holding the configuration, the policy, the ticket
//! keys, the certificate sources and every file their entries name. A change to one of those
//! files (created, written, renamed or removed; other files in the same directories, such as a
//! log, are ignored) reloads, once the changes have settled for a moment; an idle proxy does
//! nothing at all, whatever the number of certificate files.
//!
//! When only certificate and key files of loaded entries were written or replaced, only those
//! entries are read again (`CertStore::reload_changed`); any other change (the configuration,
//! the policy, the ticket keys, a file created in or removed from a certificate directory)
//! reloads everything, and that reload reads again only the files whose metadata changed.

use crate::proxy::{PathBuf, Shared, reload, reload_certificates, report_reload};
use notify::event::{ModifyKind, RenameMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use std::collections::{BTreeSet, HashSet};
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// Changes closer together than this are one reload.
const SETTLE: Duration = Duration::from_millis(100);

/// The files whose changes matter, and the certificate directories any file of which does.
#[derive(Default)]
struct Relevant {
    /// Certificate, key and chain files of the loaded entries.
    certs: HashSet<OsString>,
    /// The configuration, policy, ticket-key and certificate-source files.
    config: HashSet<OsString>,
    /// Certificate directories (a new file there may be a new entry).
    cert_dirs: HashSet<OsString>,
}

/// What a change is, for the reload it needs.
#[derive(PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum Change {
    /// Not a file the proxy reads.
    None,
    /// A certificate or key file of a loaded entry, written or replaced.
    Cert,
    /// Anything else that matters: a full reload.
    Full,
}

impl Relevant {
    fn of(&self, path: &Path, kind: &EventKind) -> Change {
        let p = path.as_os_str();
        let in_cert_dir = || {
            path.parent()
                .is_some_and(|d| self.cert_dirs.contains(d.as_os_str()))
                && !path
                    .file_name()
                    .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."))
        };
        if self.config.contains(p) {
            return Change::Full;
        }
        if !self.certs.contains(p) && !in_cert_dir() {
            return Change::None;
        }
        let gone = matches!(
            kind,
            EventKind::Remove(_)
                | EventKind::Modify(ModifyKind::Name(RenameMode::From | RenameMode::Any))
        );
        if gone || !self.certs.contains(p) {
            Change::Full
        } else {
            Change::Cert
        }
    }
}

/// The directories to watch and the files that matter: those the proxy reads.
fn watched(config: &Path, shared: &Shared) -> (BTreeSet<PathBuf>, Relevant) {
    let parent = |p: &Path| p.parent().map(Path::to_path_buf).filter(|d| d.is_dir());
    let mut dirs = BTreeSet::new();
    let mut relevant = Relevant::default();
    let routes = shared.routes.load();
    let c = &routes.0;
    let files = std::iter::once(config.to_path_buf())
        .chain(c.policy.clone())
        .chain(c.tickets.as_ref().map(|t| t.0.clone()));
    for f in files {
        dirs.extend(parent(&f));
        relevant.config.insert(f.into_os_string());
    }
    for source in shared.certs.sources() {
        let p = source.path();
        if p.is_dir() {
            dirs.insert(p.to_path_buf());
            relevant.cert_dirs.insert(p.as_os_str().to_owned());
        } else {
            dirs.extend(parent(p));
            relevant.config.insert(p.as_os_str().to_owned());
        }
    }
    // Most entries' files share a few directories: gather them as bytes first (a Path's own
    // hash and order walk its components, 100,000 times over).
    let snapshot = shared.certs.snapshot();
    let mut parents: HashSet<&OsStr> = HashSet::new();
    for e in snapshot.entries() {
        let spec = e.spec();
        let files = spec
            .certs
            .iter()
            .chain(spec.keys.iter().flatten())
            .chain(&spec.ca);
        for f in files {
            parents.extend(f.parent().map(Path::as_os_str));
            relevant.certs.insert(f.as_os_str().to_owned());
        }
    }
    dirs.extend(
        parents
            .into_iter()
            .map(PathBuf::from)
            .filter(|d| d.is_dir()),
    );
    (dirs, relevant)
}

/// Whether an event is a change (not a read: the reload's own reads must not trigger one).
fn is_change(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any
    )
}

/// Starts the watcher on a thread of its own.
pub(crate) fn start(config: PathBuf, shared: Arc<Shared>) {
    let (tx, rx) = mpsc::channel::<Event>();
    let handler = move |res: notify::Result<Event>| {
        if let Ok(e) = res.map_err(|e| tracing::warn!("file watching: {e}")) {
            if is_change(&e.kind) {
                let _ = tx.send(e);
            }
        }
    };
    let watcher: Box<dyn Watcher + Send> = match notify::recommended_watcher(handler.clone()) {
        Ok(w) => Box::new(w),
        Err(e) => {
            tracing::warn!("file watching: {e}; polling the files every 2 s instead");
            let poll = notify::Config::default().with_poll_interval(Duration::from_secs(2));
            match notify::PollWatcher::new(handler, poll) {
                Ok(w) => Box::new(w),
                Err(e) => {
                    tracing::error!("file watching: {e}; reload with SIGHUP");
                    return;
                }
            }
        }
    };
    let spawned = std::thread::Builder::new()
        .name("edgetls-watch".into())
        .spawn(move || run(watcher, rx, &config, &shared));
    if let Err(e) = spawned {
        tracing::error!("file watching: {e}; reload with SIGHUP");
    }
}

fn run(
    mut watcher: Box<dyn Watcher + Send>,
    rx: mpsc::Receiver<Event>,
    config: &Path,
    shared: &Shared,
) {
    let mut watching = BTreeSet::new();
    let (dirs, mut relevant) = watched(config, shared);
    watch_new(&mut *watcher, &mut watching, dirs);
    while let Ok(first) = rx.recv() {
        // Let a burst of changes (an editor's save, a deploy of many files) settle.
        let mut events = vec![first];
        while let Ok(e) = rx.recv_timeout(SETTLE) {
            events.push(e);
        }
        let mut change = Change::None;
        let mut certs = BTreeSet::new();
        for e in &events {
            for p in &e.paths {
                let c = relevant.of(p, &e.kind);
                if c == Change::Cert {
                    certs.insert(p.clone());
                }
                change = change.max(c);
            }
            if e.paths.is_empty() && matches!(e.kind, EventKind::Any) {
                change = Change::Full; // the polling watcher's "something changed"
            }
        }
        let outcome = match change {
            Change::None => continue,
            Change::Cert => reload_certificates(shared, &certs.into_iter().collect::<Vec<_>>()),
            Change::Full => reload(config, shared),
        };
        report_reload(shared, outcome, "file change");
        let (dirs, now) = watched(config, shared);
        relevant = now;
        watch_new(&mut *watcher, &mut watching, dirs);
    }
}

/// Watches the directories not watched yet (a reload may have added sources).
fn watch_new(watcher: &mut dyn Watcher, watched: &mut BTreeSet<PathBuf>, dirs: BTreeSet<PathBuf>) {
    for dir in dirs {
        if watched.contains(&dir) {
            continue;
        }
        match watcher.watch(&dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                watched.insert(dir);
            }
            Err(e) => tracing::warn!("watching {}: {e}", dir.display()),
        }
    }
}
