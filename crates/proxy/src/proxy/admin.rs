//! The runtime certificate API: a Unix socket (`[admin] socket`, mode 0600, and only peers
//! running as this process's user or root) taking one JSON request per line and answering one
//! JSON line. A certificate added or replaced is checked first (`admin_check`), written
//! atomically into `[admin] storage` (a certificate source) and reloaded at once; an error
//! changes nothing. `edgetls certs show|add|replace|remove|renew|orders --socket PATH` speaks it.
//!
//! ```text
//! {"op":"show","name":"www.example.com"}        name optional: every entry
//! {"op":"add","name":"a.example","cert":"PEM chain","key":"PEM key"}
//! {"op":"replace","name":"a.example","cert":"…","key":"…"}
//! {"op":"remove","name":"a.example"}
//! {"op":"renew","name":"a.example"}              an ACME order now for the set naming it
//! {"op":"orders"}                                ACME: each set's certificate and order state
//! → {"ok":true,…} or {"ok":false,"error":"…"}
//! ```

use crate::proxy::acme::AcmeState;
use crate::proxy::{Shared, reload_certificates, report_reload};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

/// The largest request line (a certificate chain and key fit many times over).
const MOST: u64 = 1 << 20;

#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub(crate) enum Request {
    Show {
        name: Option<String>,
    },
    Add {
        name: String,
        cert: String,
        key: String,
    },
    Replace {
        name: String,
        cert: String,
        key: String,
    },
    Remove {
        name: String,
    },
    Renew {
        name: String,
    },
    Orders,
}

#[derive(Debug, Serialize)]
struct Entry {
    file: PathBuf,
    names: Vec<String>,
    not_after: Option<i64>,
    ocsp: bool,
    managed: bool,
}

/// `[admin]` as the proxy runs it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AdminSection {
    pub(crate) socket: PathBuf,
    /// Where added certificates are written (a certificate source).
    pub(crate) storage: PathBuf,
    /// The same API over HTTP, with the bearer token's file (`http`, `token_file`).
    pub(crate) http: Option<(SocketAddr, PathBuf)>,
}

/// The HTTP API's bearer token: the file's first line, which must be at least 32 bytes, in a
/// file no one but its owner can read.
pub(crate) fn read_token(path: &Path) -> Result<Arc<[u8]>, String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("[admin] token_file {shown}: {e}"))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "[admin] token_file {shown}: readable by others (mode {:o}); chmod 600 it",
            meta.permissions().mode() & 0o777
        ));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("[admin] token_file {shown}: {e}"))?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.len() < 32 {
        return Err(format!(
            "[admin] token_file {shown}: a token of at least 32 characters"
        ));
    }
    Ok(Arc::from(token.as_bytes()))
}

fn file_for(storage: &Path, name: &str) -> PathBuf {
    storage.join(format!(
        "{}.pem",
        name.to_ascii_lowercase().replace('*', "_wildcard_")
    ))
}

fn valid_name(name: &str) -> bool {
    let bare = name.strip_prefix("*.").unwrap_or(name);
    !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Binds the socket (beside its path, 0600, then renamed over it: a successor takes it in one
/// step) and answers it on a thread of its own.
pub(crate) fn serve(section: &AdminSection, shared: Arc<Shared>) -> std::io::Result<()> {
    let path = &section.socket;
    let staged = path.with_extension(format!("sock.{}", std::process::id()));
    let _ = std::fs::remove_file(&staged);
    let listener = UnixListener::bind(&staged)?;
    std::fs::set_permissions(&staged, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    std::fs::rename(&staged, path)?;
    let section = section.clone();
    std::thread::Builder::new()
        .name("edgetls-admin".into())
        .spawn(move || {
            crate::proxy::background();
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                if let Err(e) = answer(conn, &section, &shared) {
                    tracing::warn!("admin socket {}: {e}", section.socket.display());
                }
            }
        })?;
    Ok(())
}

/// Whether the peer runs as this process's user or as root.
fn trusted(conn: &UnixStream) -> bool {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    getsockopt(conn, PeerCredentials).is_ok_and(|c| c.uid() == 0 || c.uid() == euid())
}

fn answer(conn: UnixStream, section: &AdminSection, shared: &Shared) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    conn.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut out = conn.try_clone()?;
    let reply = if trusted(&conn) {
        let mut line = Vec::new();
        let n = BufReader::new((&conn).take(MOST)).read_until(b'\n', &mut line)?;
        if n as u64 >= MOST && !line.ends_with(b"\n") {
            json!({"ok": false, "error": format!("a request is one line of at most {MOST} bytes")})
        } else {
            match serde_json::from_slice::<Request>(&line) {
                Ok(req) => handle(req, section, shared),
                Err(e) => json!({"ok": false, "error": format!("not a request: {e}")}),
            }
        }
    } else {
        json!({"ok": false, "error": "this socket answers its owner and root only"})
    };
    let mut body = serde_json::to_vec(&reply).unwrap_or_default();
    body.push(b'\n');
    out.write_all(&body)
}

fn fail(error: impl std::fmt::Display) -> Value {
    json!({"ok": false, "error": error.to_string()})
}

pub(crate) fn handle(req: Request, section: &AdminSection, shared: &Shared) -> Value {
    match req {
        Request::Show { name } => show(shared, &section.storage, name.as_deref()),
        Request::Add { name, cert, key } => put(shared, section, &name, &cert, &key, false),
        Request::Replace { name, cert, key } => put(shared, section, &name, &cert, &key, true),
        Request::Remove { name } => remove(shared, section, &name),
        Request::Renew { name } => renew(shared, &name),
        Request::Orders => orders(shared),
    }
}

fn show(shared: &Shared, storage: &Path, name: Option<&str>) -> Value {
    let snapshot = shared.certs.snapshot();
    let name = name.map(str::to_ascii_lowercase);
    let entries: Vec<Entry> = snapshot
        .entries()
        .iter()
        .filter(|e| {
            name.as_deref()
                .is_none_or(|n| e.names().any(|m| m == n) || e.wildcards().any(|w| w == n))
        })
        .map(|e| Entry {
            file: e.path().to_path_buf(),
            names: e.names().map(str::to_owned).chain(e.wildcards()).collect(),
            not_after: e.not_after(),
            ocsp: e.chains().iter().any(|c| c.has_ocsp()),
            managed: e.path().parent() == Some(storage),
        })
        .collect();
    json!({"ok": true, "entries": entries})
}

fn put(
    shared: &Shared,
    section: &AdminSection,
    name: &str,
    cert: &str,
    key: &str,
    replace: bool,
) -> Value {
    if !valid_name(name) {
        return fail(format!("{name:?} is not a host name"));
    }
    let path = file_for(&section.storage, name);
    match (replace, path.exists()) {
        (false, true) => {
            return fail(format!(
                "{name} is already managed here ({}): replace it",
                path.display()
            ));
        }
        (true, false) => {
            return fail(format!(
                "{name} is not managed here (no {}): add it",
                path.display()
            ));
        }
        _ => {}
    }
    let bundle = match crate::proxy::admin_check::checked_bundle(name, cert, key) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let started = Instant::now();
    if let Err(e) = edgetls_acme::write_atomically(&path, &bundle) {
        return fail(e);
    }
    let reloaded = reload_certificates(shared, std::slice::from_ref(&path));
    let in_effect = started.elapsed();
    report_reload(shared, reloaded, "admin API");
    // In effect means a new connection for the name gets it.
    let snapshot = shared.certs.snapshot();
    let served = snapshot
        .lookup(Some(&name.to_ascii_lowercase()), None)
        .map(|s| s.entry.path().to_path_buf());
    if served.as_deref() != Some(path.as_path()) {
        return json!({
            "ok": false,
            "error": format!(
                "written to {} but {name} is served from {} (a source listed before [admin] storage wins)",
                path.display(),
                served.map_or("nowhere".into(), |p| p.display().to_string())
            ),
        });
    }
    json!({"ok": true, "file": path, "in_effect_ms": in_effect.as_secs_f64() * 1e3})
}

fn remove(shared: &Shared, section: &AdminSection, name: &str) -> Value {
    if !valid_name(name) {
        return fail(format!("{name:?} is not a host name"));
    }
    let path = file_for(&section.storage, name);
    if let Err(e) = std::fs::remove_file(&path) {
        return fail(format!("{}: {e}", path.display()));
    }
    // A file gone is a full reload (a changed one would keep its previous version).
    report_reload(shared, reload_certificates(shared, &[]), "admin API");
    json!({"ok": true, "file": path})
}

fn acme(shared: &Shared) -> Result<&AcmeState, Value> {
    shared
        .acme
        .as_deref()
        .ok_or_else(|| fail("no [acme] section: nothing to renew"))
}

fn renew(shared: &Shared, name: &str) -> Value {
    let state = match acme(shared) {
        Ok(s) => s,
        Err(v) => return v,
    };
    match state.renew_now(name) {
        Ok(path) => {
            report_reload(
                shared,
                reload_certificates(shared, std::slice::from_ref(&path)),
                "admin API renew",
            );
            json!({"ok": true, "file": path})
        }
        Err(e) => fail(e),
    }
}

fn orders(shared: &Shared) -> Value {
    let state = match acme(shared) {
        Ok(s) => s,
        Err(v) => return v,
    };
    let secs = |t: Option<std::time::SystemTime>| {
        t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
    };
    let sets: Vec<Value> = state
        .status()
        .into_iter()
        .map(|s| {
            json!({
                "names": s.names,
                "file": s.file,
                "not_after": secs(s.not_after),
                "renew_at": secs(s.renew_at),
                "failures": s.failures,
                "retry_at": secs(s.retry_at),
                "last_error": s.last_error,
                "in_flight": s.in_flight,
            })
        })
        .collect();
    json!({"ok": true, "sets": sets})
}

/// This process's effective user id.
fn euid() -> u32 {
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    unsafe { libc::geteuid() }
}
