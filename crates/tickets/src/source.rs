//! Where keys come from: a file, a shared secret, a local random schedule, a fixed set, or
//! anything an operator plugs in through [`TicketKeySource`].

use crate::error::TicketError;
use crate::format::{self, Format};
use crate::key::{KeySet, KeySize, TicketKey};
use openssl::md::Md;
use openssl::pkey::Id;
use openssl::pkey_ctx::PkeyCtx;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;
use zeroize::Zeroizing;

/// The keys in force at a time. Called on a refresh (at most once per refresh interval); may
/// return the same set again. Keys that disappear from the set stay accepted for decryption
/// for the ring's grace window.
pub trait TicketKeySource: Send + Sync + 'static {
    /// The keys in force at `now` (seconds since the Unix epoch).
    fn keys(&self, now: u64) -> Result<KeySet, TicketError>;

    /// What this source is, for logs and errors.
    fn describe(&self) -> String;
}

/// A fixed set of keys.
#[derive(Debug)]
pub struct StaticSource(pub KeySet);

impl TicketKeySource for StaticSource {
    fn keys(&self, _now: u64) -> Result<KeySet, TicketError> {
        Ok(self.0.clone())
    }

    fn describe(&self) -> String {
        format!("{} static keys", self.0.keys.len())
    }
}

/// A key file, re-read when its modification time or size changes.
#[derive(Debug)]
pub struct FileSource {
    path: PathBuf,
    format: Format,
    seen: Mutex<Option<((SystemTime, u64), KeySet)>>,
}

impl FileSource {
    /// The key file at `path`, in `format`.
    pub fn new(path: impl Into<PathBuf>, format: Format) -> FileSource {
        FileSource {
            path: path.into(),
            format,
            seen: Mutex::new(None),
        }
    }
}

impl TicketKeySource for FileSource {
    fn keys(&self, _now: u64) -> Result<KeySet, TicketError> {
        let meta = std::fs::metadata(&self.path).map_err(|source| TicketError::Io {
            path: self.path.clone(),
            source,
        })?;
        let stamp = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((s, set)) = seen.as_ref() {
            if *s == stamp {
                return Ok(set.clone());
            }
        }
        let set = format::read(&self.path, self.format)?;
        *seen = Some((stamp, set.clone()));
        Ok(set)
    }

    fn describe(&self) -> String {
        format!("{} ({})", self.path.display(), self.format.as_str())
    }
}

/// Keys every server of a fleet computes alike from one shared secret, with no distribution
/// step: the key of period `e` (= now / period) is HKDF-SHA256(secret, salt, "edgetls ticket
/// key" ‖ e). Period `e` encrypts; earlier periods decrypt while they ended less than `grace`
/// ago; the next period decrypts too, for servers whose clock runs a little ahead.
pub struct DerivedSource {
    secret: Zeroizing<Vec<u8>>,
    period: u64,
    grace: u64,
    size: KeySize,
}

impl std::fmt::Debug for DerivedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DerivedSource")
            .field("period", &self.period)
            .field("grace", &self.grace)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

const HKDF_SALT: &[u8] = b"edgetls-tickets-v1";

impl DerivedSource {
    /// `period` and `grace` in seconds; the secret should hold at least 32 random bytes.
    pub fn new(
        secret: &[u8],
        period: u64,
        grace: u64,
        size: KeySize,
    ) -> Result<DerivedSource, TicketError> {
        if secret.len() < 16 {
            return Err(TicketError::Invalid(
                "a ticket derivation secret needs at least 16 bytes (32 random ones are best)"
                    .into(),
            ));
        }
        if period == 0 {
            return Err(TicketError::Invalid(
                "the rotation period must be > 0".into(),
            ));
        }
        Ok(DerivedSource {
            secret: Zeroizing::new(secret.to_vec()),
            period,
            grace,
            size,
        })
    }

    /// The key of period `epoch`.
    pub fn key_for(&self, epoch: u64) -> Result<TicketKey, TicketError> {
        let mut ctx = PkeyCtx::new_id(Id::HKDF)?;
        ctx.derive_init()?;
        ctx.set_hkdf_md(Md::sha256())?;
        ctx.set_hkdf_key(&self.secret)?;
        ctx.set_hkdf_salt(HKDF_SALT)?;
        ctx.add_hkdf_info(b"edgetls ticket key")?;
        ctx.add_hkdf_info(&epoch.to_be_bytes())?;
        let mut out = Zeroizing::new(vec![0u8; self.size.record_len()]);
        ctx.derive(Some(&mut out))?;
        let n = self.size.secret_len();
        let mut name = [0u8; 16];
        name.copy_from_slice(&out[..16]);
        TicketKey::new(name, &out[16..16 + n], &out[16 + n..])
    }
}

impl TicketKeySource for DerivedSource {
    fn keys(&self, now: u64) -> Result<KeySet, TicketError> {
        let epoch = now / self.period;
        let mut keys = vec![self.key_for(epoch)?, self.key_for(epoch + 1)?];
        let mut e = epoch;
        // Earlier periods, while their end (the start of the next) is within the grace window.
        while e > 0 && e * self.period + self.grace > now {
            e -= 1;
            keys.push(self.key_for(e)?);
        }
        KeySet::new(keys, 0)
    }

    fn describe(&self) -> String {
        format!(
            "derived from a shared secret, a new key every {} s",
            self.period
        )
    }
}

/// One server on its own: a fresh random key every `period` seconds, the previous ones kept for
/// decryption by the ring's grace window.
#[derive(Debug)]
pub struct RandomSchedule {
    period: u64,
    size: KeySize,
    current: Mutex<Option<(u64, KeySet)>>,
}

impl RandomSchedule {
    /// A new random key every `period` seconds.
    pub fn new(period: u64, size: KeySize) -> Result<RandomSchedule, TicketError> {
        if period == 0 {
            return Err(TicketError::Invalid(
                "the rotation period must be > 0".into(),
            ));
        }
        Ok(RandomSchedule {
            period,
            size,
            current: Mutex::new(None),
        })
    }
}

impl TicketKeySource for RandomSchedule {
    fn keys(&self, now: u64) -> Result<KeySet, TicketError> {
        let epoch = now / self.period;
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        match current.as_ref() {
            Some((e, set)) if *e == epoch => Ok(set.clone()),
            _ => {
                let set = KeySet::new(vec![TicketKey::generate(self.size)?], 0)?;
                *current = Some((epoch, set.clone()));
                Ok(set)
            }
        }
    }

    fn describe(&self) -> String {
        format!("random keys, a new one every {} s", self.period)
    }
}
