//! One file watcher for the whole proxy (`notify`: inotify on Linux, its polling watcher where
//! inotify cannot be had): the directories holding the configuration, the policy, the ticket
//! keys, the certificate sources and every file their entries name. A change there (a file
//! created, written, renamed or removed) reloads, once the changes have settled for a moment;
//! an idle proxy does nothing at all, whatever the number of certificate files. The reload
//! reads again only the files whose metadata changed (the certificate store compares size,
//! times and inode of each entry's files before reading them).

use crate::proxy::{Shared, reload, report_reload};
use notify::{EventKind, RecursiveMode, Watcher};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// Changes closer together than this are one reload.
const SETTLE: Duration = Duration::from_millis(200);

/// The directories to watch: those of every file the proxy reads.
fn directories(config: &Path, shared: &Shared) -> BTreeSet<PathBuf> {
    let parent = |p: &Path| p.parent().map(Path::to_path_buf).filter(|d| d.is_dir());
    let mut dirs = BTreeSet::new();
    let routes = shared.routes.load();
    let c = &routes.0;
    let files = std::iter::once(config.to_path_buf())
        .chain(c.policy.clone())
        .chain(c.tickets.as_ref().map(|t| t.0.clone()));
    dirs.extend(files.filter_map(|f| parent(&f)));
    for source in shared.certs.sources() {
        let p = source.path();
        if p.is_dir() {
            dirs.insert(p.to_path_buf());
        } else {
            dirs.extend(parent(p));
        }
    }
    for e in shared.certs.snapshot().entries() {
        let spec = e.spec();
        let files = spec
            .certs
            .iter()
            .chain(spec.keys.iter().flatten())
            .chain(&spec.ca);
        dirs.extend(files.filter_map(|f| parent(f)));
    }
    dirs
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
    let (tx, rx) = mpsc::channel::<()>();
    let handler = move |res: notify::Result<notify::Event>| {
        if res.is_ok_and(|e| is_change(&e.kind)) {
            let _ = tx.send(());
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
    rx: mpsc::Receiver<()>,
    config: &Path,
    shared: &Shared,
) {
    let mut watched = BTreeSet::new();
    watch_new(&mut *watcher, &mut watched, directories(config, shared));
    while rx.recv().is_ok() {
        // Let a burst of changes (an editor's save, a deploy of many files) settle.
        while rx.recv_timeout(SETTLE).is_ok() {}
        report_reload(shared, reload(config, shared), "file change");
        watch_new(&mut *watcher, &mut watched, directories(config, shared));
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
