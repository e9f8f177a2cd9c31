//! Watching the files behind a store: which directories to watch, what a change to a path
//! means ([`WatchSet`]), and a ready-made watcher on `notify` (inotify on Linux; its polling
//! watcher where inotify cannot be had) that reloads by itself ([`CertStore::watch`]).

use crate::error::CertStoreError;
use crate::load::entry_paths;
use crate::report::Report;
use crate::source::Source;
use crate::store::CertStore;
use notify::event::{ModifyKind, RenameMode};
use notify::{Event, EventKind, RecursiveMode};
use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What a change to one path means for a store. Ordered: the largest of a batch decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// Not a file the store reads: nothing to do.
    None,
    /// A file of a loaded entry, written or replaced: [`CertStore::reload_changed`] with it.
    Entries,
    /// A file created in a source directory (an ACME client's or `certs add`'s new bundle):
    /// [`CertStore::reload_changed`] with it too, which adds a lone certificate file without
    /// reading the rest again (and reloads everything for anything else).
    Added,
    /// A source file, or a file removed from a source directory: [`CertStore::reload`].
    Full,
}

/// The files behind a store when it was taken: the directories that hold them, and what a
/// change to each path means. Take a new one after each reload (sources can name new files).
#[derive(Debug, Default)]
pub struct WatchSet {
    entry_files: HashSet<OsString>,
    source_files: HashSet<OsString>,
    source_dirs: HashSet<OsString>,
    dirs: BTreeSet<PathBuf>,
}

impl WatchSet {
    /// The directories to watch (not recursively): every source's, and those of every file an
    /// entry names.
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(PathBuf::as_path)
    }

    /// What a change to `path` means; `gone` when it was removed or renamed away. Dotfiles in a
    /// source directory (editors' swap files, staged copies) are not certificates; a symbolic
    /// link swapped into a watched directory (Kubernetes' `..data`) is a full reload.
    pub fn change(&self, path: &Path, gone: bool) -> Change {
        let path = absolute(path);
        let path = path.as_ref();
        let p = path.as_os_str();
        if self.source_files.contains(p) {
            return Change::Full;
        }
        let named = self.entry_files.contains(p);
        let in_source_dir = path
            .parent()
            .is_some_and(|d| self.source_dirs.contains(d.as_os_str()))
            && !path
                .file_name()
                .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."));
        match (named, in_source_dir) {
            (true, _) if !gone => Change::Entries,
            (false, true) if !gone => Change::Added,
            (true, _) | (false, true) => Change::Full,
            (false, false)
                if path
                    .parent()
                    .is_some_and(|d| self.dirs.contains(d) && is_swapped_link(path)) =>
            {
                Change::Full
            }
            (false, false) => Change::None,
        }
    }
}

/// Whether `path` is now a symbolic link: in a watched directory, a link swapped into place
/// (Kubernetes' `..data`, which the mounted `tls.crt -> ..data/tls.crt` resolve through, or
/// any `current -> release-N`) changes what the files named through it hold, without an event
/// for those names. The reload it calls for compares the files' metadata through the links.
pub fn is_swapped_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// `path` made absolute against the working directory, `.` and `..` taken out by their
/// names (links are not resolved): watchers report absolute paths, so a store loaded from
/// relative ones must compare, and watch its directories, in those terms.
pub(crate) fn absolute(path: &Path) -> std::borrow::Cow<'_, Path> {
    use std::path::Component;
    if path.is_absolute() {
        return std::borrow::Cow::Borrowed(path);
    }
    let Ok(joined) = std::path::absolute(path) else {
        return std::borrow::Cow::Borrowed(path);
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    std::borrow::Cow::Owned(out)
}

impl CertStore {
    /// The files behind the store now, to watch them.
    pub fn watch_set(&self) -> WatchSet {
        let mut set = WatchSet::default();
        let is_dir = |d: &Path| d.is_dir();
        for source in self.sources() {
            let p = absolute(source.path());
            let p = p.as_ref();
            if matches!(source, Source::Dir(_)) {
                set.dirs.insert(p.to_path_buf());
                set.source_dirs.insert(p.as_os_str().to_owned());
            } else {
                set.dirs
                    .extend(p.parent().filter(|d| is_dir(d)).map(Path::to_path_buf));
                set.source_files.insert(p.as_os_str().to_owned());
            }
        }
        // Most entries' files share a few directories: gather them as bytes first (a Path's own
        // hash and order walk its components, 100,000 times over).
        let snapshot = self.snapshot();
        let mut parents: HashSet<&std::ffi::OsStr> = HashSet::new();
        for e in snapshot.entries() {
            for f in entry_paths(e.spec()) {
                parents.extend(f.parent().map(Path::as_os_str));
                set.entry_files
                    .insert(absolute(f).into_owned().into_os_string());
            }
        }
        let dirs = parents
            .into_iter()
            .map(|d| absolute(Path::new(d)).into_owned())
            .filter(|d| is_dir(d));
        set.dirs.extend(dirs);
        set
    }

    /// Watches the files behind the store and reloads when one of them changes: only the
    /// entries naming a written file ([`reload_changed`](Self::reload_changed)), everything when
    /// a source changed or a file came or went in a source directory. Changes closer together
    /// than `settle` are one reload; other files in the same directories are ignored; an idle
    /// store does nothing. `on_reload` receives each reload's outcome. Dropping the [`Watcher`]
    /// stops it.
    pub fn watch(
        self: &Arc<Self>,
        settle: Duration,
        on_reload: impl Fn(Result<Report, CertStoreError>) + Send + 'static,
    ) -> Result<Watcher, CertStoreError> {
        let (tx, rx) = mpsc::channel::<Event>();
        let handler = move |res: notify::Result<Event>| {
            if let Ok(e) = res {
                let _ = tx.send(e);
            }
        };
        let setup = |e: notify::Error| CertStoreError::Watch(e.to_string());
        let mut watcher: Box<dyn notify::Watcher + Send> =
            match notify::recommended_watcher(handler.clone()) {
                Ok(w) => Box::new(w),
                Err(_) => {
                    let poll = notify::Config::default().with_poll_interval(settle.max(POLL_MIN));
                    Box::new(notify::PollWatcher::new(handler, poll).map_err(setup)?)
                }
            };
        let mut set = self.watch_set();
        let mut watching = BTreeSet::new();
        watch_new(&mut *watcher, &mut watching, &set)?;
        let notify = Arc::new(Mutex::new(Some(watcher)));
        let shared = Arc::clone(&notify);
        let store = Arc::clone(self);
        let thread = std::thread::Builder::new()
            .name("certstore-watch".into())
            .spawn(move || {
                // Ends when the Watcher drops the notify watcher, which closes the channel.
                while let Ok(first) = rx.recv() {
                    let mut events = vec![first];
                    while let Ok(e) = rx.recv_timeout(settle) {
                        events.push(e);
                    }
                    let (change, written) = classify(&set, &events);
                    let outcome = match change {
                        Change::None => continue,
                        Change::Entries | Change::Added => store.reload_changed(&written),
                        Change::Full => store.reload(),
                    };
                    on_reload(outcome);
                    set = store.watch_set();
                    let mut w = shared.lock().unwrap_or_else(|p| p.into_inner());
                    match w.as_mut() {
                        Some(w) => {
                            let _ = watch_new(&mut **w, &mut watching, &set);
                        }
                        None => return,
                    }
                }
            })
            .map_err(|e| CertStoreError::Watch(e.to_string()))?;
        Ok(Watcher {
            notify,
            thread: Some(thread),
        })
    }
}

/// The polling fallback looks at the files no more often than this.
const POLL_MIN: Duration = Duration::from_secs(1);

/// Whether a file event removed (or renamed away) its path.
pub fn is_gone(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Remove(_)
            | EventKind::Modify(ModifyKind::Name(RenameMode::From | RenameMode::Any))
    )
}

/// What a batch of events means for the store, with the written files of loaded entries.
fn classify(set: &WatchSet, events: &[Event]) -> (Change, Vec<PathBuf>) {
    let mut change = Change::None;
    let mut written = BTreeSet::new();
    for e in events {
        if matches!(e.kind, EventKind::Access(_)) {
            continue; // the store's own reads
        }
        if e.paths.is_empty() {
            change = Change::Full; // "something changed", without a path
        }
        for p in &e.paths {
            let c = set.change(p, is_gone(&e.kind));
            if matches!(c, Change::Entries | Change::Added) {
                written.insert(p.clone());
            }
            change = change.max(c);
        }
    }
    (change, written.into_iter().collect())
}

fn watch_new(
    watcher: &mut dyn notify::Watcher,
    watching: &mut BTreeSet<PathBuf>,
    set: &WatchSet,
) -> Result<(), CertStoreError> {
    let mut first_error = None;
    for dir in set.dirs() {
        if watching.contains(dir) {
            continue;
        }
        match watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                watching.insert(dir.to_path_buf());
            }
            Err(e) => {
                first_error.get_or_insert(CertStoreError::Watch(format!("{}: {e}", dir.display())));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Stops the watch when dropped.
pub struct Watcher {
    /// The notify watcher: it holds the sending end of the thread's channel.
    notify: Arc<Mutex<Option<Box<dyn notify::Watcher + Send>>>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").finish_non_exhaustive()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Dropping the notify watcher closes the channel: the thread ends after the reload it
        // may be doing.
        let w = self.notify.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(w);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
