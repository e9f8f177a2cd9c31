//! One file watcher for the whole proxy (`notify`: inotify on Linux, its polling watcher where
//! inotify cannot be had): the directories holding the configuration, the policy, the ticket
//! keys, the certificate sources and every file their entries name. A change to one of those
//! files (created, written, renamed or removed; other files in the same directories, such as a
//! log, are ignored) reloads, once the changes have settled for a moment; an idle proxy does
//! nothing at all, whatever the number of certificate files.
//!
//! When only certificate and key files of loaded entries were written or replaced, or lone
//! certificate files created in a certificate directory (an ACME bundle stored), only those are
//! read (`CertStore::reload_changed`); a certificate source changed, or a file removed from a
//! certificate directory, reloads the certificate store and the policy built on it; a change to the configuration, the policy or
//! the ticket keys reloads everything. Each reload reads again only the files whose metadata
//! changed.

use crate::proxy::config::Config;
use crate::proxy::{PathBuf, Shared, reload, reload_certificates, reload_store, report_reload};
use edgetls_certstore::{WatchSet, is_gone, is_swapped_link};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// Changes closer together than this are one reload.
const SETTLE: Duration = Duration::from_millis(100);

/// What a change calls for, least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    None,
    /// Files of loaded entries, or files new in a certificate directory: those files.
    Entries,
    /// A certificate source, or a certificate directory's listing: the store and the policy.
    Store,
    /// The configuration, the policy or the ticket keys: everything.
    Full,
}

/// The files whose changes matter: the certificate store's, and the proxy's own.
struct Relevant {
    certs: WatchSet,
    /// The configuration, policy and ticket-key files.
    config: HashSet<OsString>,
    /// Their directories.
    config_dirs: HashSet<PathBuf>,
}

impl Relevant {
    fn of(&self, path: &Path, kind: &EventKind) -> Change {
        if self.config.contains(path.as_os_str()) {
            return Change::Full;
        }
        // A link swapped in beside one of them (a Kubernetes ConfigMap's `..data`).
        if path.parent().is_some_and(|d| self.config_dirs.contains(d)) && is_swapped_link(path) {
            return Change::Full;
        }
        match self.certs.change(path, is_gone(kind)) {
            edgetls_certstore::Change::None => Change::None,
            // A new file in a certificate directory: added on its own where it can be.
            edgetls_certstore::Change::Entries | edgetls_certstore::Change::Added => {
                Change::Entries
            }
            edgetls_certstore::Change::Full => Change::Store,
        }
    }
}

/// The directories to watch and the files that matter: those the proxy reads.
fn watched(config: &Path, shared: &Shared) -> (BTreeSet<PathBuf>, Relevant) {
    let certs = shared.certs.watch_set();
    let mut dirs: BTreeSet<PathBuf> = certs.dirs().map(Path::to_path_buf).collect();
    let mut relevant = HashSet::new();
    let routes = shared.routes.load();
    let c = &routes.0;
    let files = std::iter::once(config.to_path_buf())
        .chain(c.policy.clone())
        .chain(
            c.tickets
                .as_ref()
                .and_then(|t| t.key_file().map(Path::to_path_buf)),
        );
    let mut config_dirs = HashSet::new();
    for f in files {
        let f = std::path::absolute(&f).unwrap_or(f);
        config_dirs.extend(f.parent().map(Path::to_path_buf).filter(|d| d.is_dir()));
        relevant.insert(f.into_os_string());
    }
    dirs.extend(config_dirs.iter().cloned());
    (
        dirs,
        Relevant {
            certs,
            config: relevant,
            config_dirs,
        },
    )
}

/// Whether an event is a change (not a read: the reload's own reads must not trigger one).
fn is_change(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any
    )
}

/// A watcher armed before the proxy reads its files, with the events it has seen since.
pub(crate) struct Armed {
    watcher: Box<dyn Watcher + Send>,
    rx: mpsc::Receiver<Event>,
    watching: BTreeSet<PathBuf>,
    config: PathBuf,
}

/// Arms the watcher on the directories `config` names — its own, the policy's, the ticket
/// keys', each certificate source's — before any of those files is read: a file renamed into
/// place while the proxy loads (a renewal job racing a restart) is an event waiting once the
/// proxy serves, never a change nobody saw. `None` when no watcher can be had (SIGHUP still
/// reloads).
pub(crate) fn arm(config_path: &Path, config: &Config) -> Option<Armed> {
    // Watchers report absolute paths: `--config proxy.toml` must be compared as one too.
    let config_path = std::path::absolute(config_path).unwrap_or(config_path.to_path_buf());
    let (tx, rx) = mpsc::channel::<Event>();
    let handler = move |res: notify::Result<Event>| {
        if let Ok(e) = res.map_err(|e| tracing::warn!("file watching: {e}")) {
            if is_change(&e.kind) {
                let _ = tx.send(e);
            }
        }
    };
    let mut watcher: Box<dyn Watcher + Send> = match notify::recommended_watcher(handler.clone()) {
        Ok(w) => Box::new(w),
        Err(e) => {
            tracing::warn!("file watching: {e}; polling the files every 2 s instead");
            let poll = notify::Config::default().with_poll_interval(Duration::from_secs(2));
            match notify::PollWatcher::new(handler, poll) {
                Ok(w) => Box::new(w),
                Err(e) => {
                    tracing::error!("file watching: {e}; reload with SIGHUP");
                    return None;
                }
            }
        }
    };
    let mut dirs = BTreeSet::new();
    let files = std::iter::once(config_path.clone())
        .chain(config.policy.clone())
        .chain(
            config
                .tickets
                .as_ref()
                .and_then(|t| t.key_file().map(Path::to_path_buf)),
        );
    for f in files {
        let f = std::path::absolute(&f).unwrap_or(f);
        dirs.extend(f.parent().map(Path::to_path_buf).filter(|d| d.is_dir()));
    }
    for s in &config.sources {
        let s = std::path::absolute(s).unwrap_or(s.clone());
        if s.is_dir() {
            dirs.insert(s);
        } else {
            dirs.extend(s.parent().map(Path::to_path_buf).filter(|d| d.is_dir()));
        }
    }
    let mut watching = BTreeSet::new();
    watch_new(&mut *watcher, &mut watching, dirs);
    Some(Armed {
        watcher,
        rx,
        watching,
        config: config_path,
    })
}

/// A watcher armed on everything the loaded proxy reads, ready to run.
pub(crate) struct Ready {
    armed: Armed,
    relevant: Relevant,
}

/// Completes the arming once the files are loaded — the directories of files that entries name
/// outside their sources' directories, and what a change to each path means (100,000 files
/// take a moment) — before the proxy listens, so that a change queued during the load is acted
/// on as soon as it serves.
pub(crate) fn complete(mut armed: Armed, shared: &Shared) -> Ready {
    let (dirs, relevant) = watched(&armed.config, shared);
    watch_new(&mut *armed.watcher, &mut armed.watching, dirs);
    Ready { armed, relevant }
}

/// Runs the watcher on a thread of its own: changes seen while the proxy loaded make the first
/// reload.
pub(crate) fn start(ready: Ready, shared: Arc<Shared>) {
    let spawned = std::thread::Builder::new()
        .name("edgetls-watch".into())
        .spawn(move || {
            crate::proxy::background();
            run(ready, &shared)
        });
    if let Err(e) = spawned {
        tracing::error!("file watching: {e}; reload with SIGHUP");
    }
}

fn run(ready: Ready, shared: &Shared) {
    let Ready {
        armed:
            Armed {
                mut watcher,
                rx,
                mut watching,
                config,
            },
        mut relevant,
    } = ready;
    let config = config.as_path();
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
                if c == Change::Entries {
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
            Change::Entries => reload_certificates(shared, &certs.into_iter().collect::<Vec<_>>()),
            Change::Store => reload_store(shared),
            Change::Full => reload(config, shared),
        };
        // A partial reload read only known files: the set to watch is the same (and working
        // it out again walks every entry).
        let partial = matches!(&outcome, Ok(r) if r.partial);
        report_reload(shared, outcome, "file change");
        if !partial {
            let (dirs, now) = watched(config, shared);
            relevant = now;
            watch_new(&mut *watcher, &mut watching, dirs);
        }
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
