//! One token in use: its library (shared by every token it serves), its logged-in sessions,
//! the handles of its keys, and getting all of that back after the token went away.
//!
//! Locks are always taken in one order: the library's, then the token's. An operation holds
//! both for reading while it runs; marking a token down takes the token's for writing, and
//! re-initializing a library (the only way SoftHSM, and many cards, find a token that came
//! back) takes the library's for writing, after closing the sessions of every token on it.

use super::objects::{self, Scanned};
use super::uri::Pkcs11Uri;
use crate::keys::DeviceJob;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::object::ObjectHandle;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Limit, Slot};
use cryptoki::types::AuthPin;
use edgetls_keyless_proto::{ErrorCode, Ski};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

/// A PKCS#11 library, loaded and initialized once per process (a second `C_Initialize` of the
/// same library fails), shared by the tokens it serves.
struct Module {
    path: PathBuf,
    ctx: RwLock<Option<Pkcs11>>,
    tokens: Mutex<Vec<Weak<Token>>>,
}

fn modules() -> &'static Mutex<HashMap<PathBuf, Arc<Module>>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = OnceLock::new();
    MODULES.get_or_init(Default::default)
}

fn load(path: &Path) -> Result<Pkcs11, String> {
    let ctx = Pkcs11::new(path).map_err(|e| format!("loading {}: {e}", path.display()))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(ctx),
        Err(e) => Err(format!("C_Initialize of {}: {e}", path.display())),
    }
}

impl Module {
    fn get(path: &Path) -> Result<Arc<Module>, String> {
        let mut all = modules().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = all.get(path) {
            return Ok(Arc::clone(m));
        }
        let module = Arc::new(Module {
            path: path.to_path_buf(),
            ctx: RwLock::new(Some(load(path)?)),
            tokens: Mutex::new(Vec::new()),
        });
        all.insert(path.to_path_buf(), Arc::clone(&module));
        Ok(module)
    }

    /// Whether the slot of the token `uri` names is a hardware slot (`CKF_HW_SLOT`).
    fn hardware_slot(&self, uri: &Pkcs11Uri) -> Result<bool, String> {
        let ctx = self.ctx.read().unwrap_or_else(|p| p.into_inner());
        let ctx = ctx.as_ref().ok_or("the library is not initialized")?;
        let slot = find_slot(ctx, uri)?;
        ctx.get_slot_info(slot)
            .map(|i| i.hardware_slot())
            .map_err(|e| format!("C_GetSlotInfo: {e}"))
    }

    /// Finalizes and initializes the library again, so that it looks for its tokens anew.
    /// Every token on it is marked down first: their sessions close while the library they
    /// belong to is still initialized.
    fn reinitialize(&self) -> Result<(), String> {
        let mut ctx = self.ctx.write().unwrap_or_else(|p| p.into_inner());
        let tokens: Vec<Arc<Token>> = self
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for t in &tokens {
            t.state.write().unwrap_or_else(|p| p.into_inner()).take();
            let mut down = t.down.lock().unwrap_or_else(|p| p.into_inner());
            down.get_or_insert_with(|| format!("{} re-initialized", self.path.display()));
            t.went_down.notify_all();
        }
        if let Some(old) = ctx.take() {
            let _ = old.finalize();
        }
        *ctx = Some(load(&self.path)?);
        Ok(())
    }
}

/// What a token has open while it is up.
struct Open {
    /// Logged in; kept open so the login lasts (it ends with the token's last session).
    _login: Mutex<Session>,
    pool: Mutex<Vec<Session>>,
    returned: Condvar,
    handles: HashMap<Ski, ObjectHandle>,
}

/// Operations waiting for one of the token's threads, with when each was queued.
#[derive(Default)]
struct Queue {
    jobs: Mutex<Jobs>,
    ready: Condvar,
}

#[derive(Default)]
struct Jobs {
    waiting: VecDeque<(Instant, DeviceJob)>,
    /// Threads asleep for want of a job: only then is one woken (a wake-up is a system call).
    idle: usize,
}

/// A token the store uses.
pub(crate) struct Token {
    pub(crate) uri: Pkcs11Uri,
    module: Arc<Module>,
    state: RwLock<Option<Open>>,
    sessions: usize,
    session_wait: Duration,
    /// Operations run on the token's own threads (hardware), not on the caller's (software).
    pub(crate) own_threads: bool,
    /// Set when the token goes down; the watcher thread waits on it.
    down: Mutex<Option<String>>,
    went_down: Condvar,
    started: Instant,
    /// The second (since `started`, plus one) of the last rate-limited message.
    last_said: AtomicU64,
    queue: Arc<Queue>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// Opens the token `uri` names, logs in, and finds its keys. The token is watched from
    /// then on: when it goes down it is re-opened, every `retry`, until it is back.
    pub(crate) fn open(
        uri: &Pkcs11Uri,
        opts: &super::Pkcs11Options,
    ) -> Result<(Arc<Token>, Scanned), String> {
        let module = Module::get(&uri.module_path)?;
        let (sessions, session_wait) = (opts.sessions.max(1), opts.session_wait);
        let threads = match opts.threads {
            Some(n) => n,
            // A hardware slot waits on its device: give it threads. A software token's
            // operations are CPU work, best done by the caller (the key server's workers).
            None if module.hardware_slot(uri)? => sessions,
            None => 0,
        };
        let token = Arc::new(Token {
            uri: uri.clone(),
            module: Arc::clone(&module),
            state: RwLock::new(None),
            sessions: sessions.max(threads),
            session_wait,
            own_threads: threads > 0,
            down: Mutex::new(None),
            went_down: Condvar::new(),
            started: Instant::now(),
            last_said: AtomicU64::new(0),
            queue: Arc::default(),
        });
        module
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(&token));
        let scanned = token.reopen()?;
        let (weak, retry) = (Arc::downgrade(&token), opts.retry);
        std::thread::Builder::new()
            .name("pkcs11-watch".into())
            .spawn(move || watch(weak, retry))
            .map_err(|e| format!("starting the token watcher: {e}"))?;
        for i in 0..threads {
            let (weak, queue) = (Arc::downgrade(&token), Arc::clone(&token.queue));
            std::thread::Builder::new()
                .name(format!("pkcs11-{i}"))
                .spawn(move || work(weak, queue, session_wait))
                .map_err(|e| format!("starting a token thread: {e}"))?;
        }
        Ok((token, scanned))
    }

    /// Finds the token, opens its sessions, logs in and looks its keys up.
    fn reopen(&self) -> Result<Scanned, String> {
        let ctx_guard = self.module.ctx.read().unwrap_or_else(|p| p.into_inner());
        let ctx = ctx_guard.as_ref().ok_or("the library is not initialized")?;
        let slot = find_slot(ctx, &self.uri)?;
        let err = |what: &'static str| {
            let uri = &self.uri;
            move |e: Error| format!("{what} on {uri}: {e}")
        };
        let login = ctx.open_ro_session(slot).map_err(err("C_OpenSession"))?;
        if let Some(pin) = self.uri.pin()? {
            match login.login(UserType::User, Some(&AuthPin::from(pin))) {
                Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(e) => return Err(err("C_Login")(e)),
            }
        }
        let (found, skipped) = objects::scan(&login, &self.uri).map_err(err("finding keys"))?;
        let limit = match ctx.get_token_info(slot).map(|t| t.max_session_count()) {
            // One session is the login's.
            Ok(Limit::Max(n)) => (n as usize).saturating_sub(1).max(1),
            _ => usize::MAX,
        };
        let pool = (0..self.sessions.min(limit))
            .map(|_| ctx.open_ro_session(slot))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err("C_OpenSession"))?;
        let handles = found.iter().map(|f| (f.ski, f.handle)).collect();
        let open = Open {
            _login: Mutex::new(login),
            pool: Mutex::new(pool),
            returned: Condvar::new(),
            handles,
        };
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = Some(open);
        *self.down.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok((found, skipped))
    }

    /// Runs `op` with a session of the token and the handle of the key `ski`. A failure that
    /// is the request's fault is `CRYPTO`; a token that is down, or fails now (it is marked
    /// down), is `INTERNAL`, as is waiting `session_wait` for a session in vain.
    pub(crate) fn run<T>(
        &self,
        ski: &Ski,
        op: impl FnOnce(&Session, ObjectHandle) -> Result<T, Error>,
    ) -> Result<T, ErrorCode> {
        let outcome = {
            let _library = self.module.ctx.read().unwrap_or_else(|p| p.into_inner());
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            // Down: said when it went down, not again for every request.
            let open = state.as_ref().ok_or(ErrorCode::INTERNAL)?;
            let Some(&handle) = open.handles.get(ski) else {
                self.say(&format!("the key {ski} is no longer in {}", self.uri));
                return Err(ErrorCode::INTERNAL);
            };
            let Some(session) = open.take_session(self.session_wait) else {
                self.say(&format!(
                    "{}: all {} sessions busy for {:?}",
                    self.uri, self.sessions, self.session_wait
                ));
                return Err(ErrorCode::INTERNAL);
            };
            let outcome = op(&session, handle);
            open.give_back(session);
            outcome
        };
        outcome.map_err(|e| {
            if request_fault(&e) {
                ErrorCode::CRYPTO
            } else {
                self.mark_down(&format!("{}: {e}", self.uri));
                ErrorCode::INTERNAL
            }
        })
    }

    /// Queues `job` for the token's threads (they take the next job as soon as they finish
    /// one, so a busy token never waits on a hand-off); without threads, runs it here.
    pub(crate) fn dispatch(&self, job: DeviceJob) {
        if !self.own_threads {
            return job(true);
        }
        let mut jobs = self.queue.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.waiting.push_back((Instant::now(), job));
        if jobs.idle > 0 {
            self.queue.ready.notify_one();
        }
    }

    /// Logs `what`, at most once a second per token (it may repeat for every request).
    fn say(&self, what: &str) {
        let now = self.started.elapsed().as_secs() + 1;
        if self.last_said.swap(now, Relaxed) != now {
            eprintln!("edgetls-keyserver: {what}");
        }
    }

    /// Closes what the token has open and wakes the watcher to get it back.
    fn mark_down(&self, why: &str) {
        let _library = self.module.ctx.read().unwrap_or_else(|p| p.into_inner());
        let was_up = self
            .state
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .is_some();
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if was_up || down.is_none() {
            eprintln!("edgetls-keyserver: token down: {why}; re-opening it");
            *down = Some(why.to_string());
            self.went_down.notify_all();
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }
}

impl Open {
    fn take_session(&self, wait: Duration) -> Option<Session> {
        let deadline = Instant::now() + wait;
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(s) = pool.pop() {
                return Some(s);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            pool = self
                .returned
                .wait_timeout(pool, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn give_back(&self, session: Session) {
        self.pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(session);
        self.returned.notify_one();
    }
}

/// The slot holding the token `uri` names (exactly one must match).
fn find_slot(ctx: &Pkcs11, uri: &Pkcs11Uri) -> Result<Slot, String> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| format!("C_GetSlotList: {e}"))?;
    let matching: Vec<Slot> = slots
        .into_iter()
        .filter(|&s| {
            ctx.get_slot_info(s)
                .is_ok_and(|i| uri.matches_slot(s.id(), &i))
                && ctx
                    .get_token_info(s)
                    .is_ok_and(|t| t.token_initialized() && uri.matches_token(&t))
        })
        .collect();
    match matching[..] {
        [slot] => Ok(slot),
        [] => Err(format!("no token matches {uri}")),
        _ => Err(format!(
            "{} tokens match {uri}: name one (token=, serial= or slot-id=)",
            matching.len()
        )),
    }
}

/// Errors that are the request's, not the token's: the token stays up.
fn request_fault(e: &Error) -> bool {
    matches!(
        e,
        Error::Pkcs11(
            RvError::DataInvalid
                | RvError::DataLenRange
                | RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::MechanismInvalid
                | RvError::MechanismParamInvalid
                | RvError::KeyTypeInconsistent
                | RvError::KeyFunctionNotPermitted
                | RvError::KeySizeRange
                | RvError::ArgumentsBad,
            _
        )
    )
}

/// One of the token's threads: runs queued jobs while the token lives. A job that waited
/// longer than `wait` (the token is stuck) is only answered, with an error.
fn work(token: Weak<Token>, queue: Arc<Queue>, wait: Duration) {
    loop {
        let next = {
            let mut jobs = queue.jobs.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(job) = jobs.waiting.pop_front() {
                    break Some(job);
                }
                if token.strong_count() == 0 {
                    break None;
                }
                jobs.idle += 1;
                jobs = queue
                    .ready
                    .wait_timeout(jobs, Duration::from_secs(1))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                jobs.idle -= 1;
            }
        };
        let Some((queued, job)) = next else { return };
        job(queued.elapsed() < wait);
    }
}

/// While the token lives: wait for it to go down, then try to get it back every `retry`
/// (re-initializing the library when the token cannot be found), and say when it is back.
fn watch(token: Weak<Token>, retry: Duration) {
    let mut last_said = None::<Instant>;
    loop {
        let Some(t) = token.upgrade() else { return };
        {
            let down = t.down.lock().unwrap_or_else(|p| p.into_inner());
            if down.is_none() {
                // Wake now and then to notice the store was dropped.
                let _ = t.went_down.wait_timeout(down, Duration::from_secs(1));
                continue;
            }
        }
        let attempt = t.reopen().or_else(|first| {
            t.module.reinitialize()?;
            t.reopen().map_err(|_| first)
        });
        match attempt {
            Ok((found, _)) => {
                eprintln!(
                    "edgetls-keyserver: token back: {} ({} keys)",
                    t.uri,
                    found.len()
                );
                last_said = None;
            }
            Err(e) => {
                if last_said.is_none_or(|at| at.elapsed() >= Duration::from_secs(30)) {
                    eprintln!("edgetls-keyserver: token still down: {e}");
                    last_said = Some(Instant::now());
                }
                drop(t);
                std::thread::sleep(retry);
            }
        }
    }
}
