//! Where entries come from: a directory, an ATS `ssl_multicert.config`, or a HAProxy crt-list.
//! Each source becomes a list of [`EntrySpec`]s in source order; a malformed line becomes a
//! problem naming its file and line, and the other lines still load.

pub(crate) mod crtlist;
mod dir;
pub(crate) mod multicert;
pub(crate) mod multicert_yaml;

use crate::error::{CertStoreError, Problem, Severity};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// A place certificates are configured.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// A directory of `.pem` bundles (chain + key) or `name.crt`/`name.pem` + `name.key` pairs,
    /// taken in file-name order. HAProxy-style `name.pem.rsa` / `name.pem.ecdsa` files form one
    /// entry with two chains.
    Dir(PathBuf),
    /// An Apache Traffic Server `ssl_multicert.config`, or Traffic Server 10's
    /// `ssl_multicert.yaml` (a path ending in `.yaml` or `.yml`).
    Multicert(PathBuf),
    /// A HAProxy crt-list.
    CrtList(PathBuf),
}

impl Source {
    /// Decides what `path` is: a directory, an `ssl_multicert.yaml` (by its extension, `.yaml`
    /// or `.yml`), an `ssl_multicert.config` (by name, or because its lines use
    /// `ssl_cert_name=` / `dest_ip=`), or else a crt-list.
    pub fn detect(path: impl Into<PathBuf>) -> Result<Source, CertStoreError> {
        let path = path.into();
        let meta = std::fs::metadata(&path).map_err(|source| CertStoreError::SourceUnusable {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            return Ok(Source::Dir(path));
        }
        if is_yaml(&path)
            || path
                .file_name()
                .is_some_and(|n| n == "ssl_multicert.config")
        {
            return Ok(Source::Multicert(path));
        }
        let text =
            std::fs::read_to_string(&path).map_err(|source| CertStoreError::SourceUnusable {
                path: path.clone(),
                source,
            })?;
        let multicert = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .any(|l| l.contains("ssl_cert_name=") || l.starts_with("dest_ip="));
        Ok(if multicert {
            Source::Multicert(path)
        } else {
            Source::CrtList(path)
        })
    }

    /// The directory or file this source reads.
    pub fn path(&self) -> &Path {
        match self {
            Source::Dir(p) | Source::Multicert(p) | Source::CrtList(p) => p,
        }
    }

    /// Reads the source into entry specs, reporting bad lines as problems.
    pub(crate) fn specs(
        &self,
        opts: &SourceOptions,
    ) -> Result<(Vec<EntrySpec>, Vec<Problem>), CertStoreError> {
        let (mut specs, problems) = match self {
            Source::Dir(p) => dir::specs(p),
            Source::Multicert(p) if is_yaml(p) => {
                Ok(multicert_yaml::parse(p, &read_config(p)?, opts))
            }
            Source::Multicert(p) => multicert::specs(p, opts),
            Source::CrtList(p) => crtlist::specs(p),
        }?;
        for spec in &mut specs {
            spec.find_optional();
        }
        Ok((specs, problems))
    }
}

impl Source {
    /// The spec of `file`, new in this directory source, when it makes an entry on its own: a
    /// certificate file (`.pem`, `.crt`, `.cer`, its key inside) with no key file or other
    /// certificate file of the same stem beside it. `None` for anything else (the caller
    /// reads the whole source again).
    pub(crate) fn lone_file_spec(&self, file: &Path) -> Option<EntrySpec> {
        let Source::Dir(dir) = self else {
            return None;
        };
        let mut spec = dir::lone_file(dir, file)?;
        spec.find_optional();
        Some(spec)
    }
}

impl SourceOptions {
    /// Where the relative certificate and key paths of the configuration file `path` point.
    pub(crate) fn dirs<'a>(&'a self, path: &'a Path) -> (&'a Path, &'a Path) {
        let base = path.parent().unwrap_or(Path::new("."));
        let cert_dir = self.cert_dir.as_deref().unwrap_or(base);
        (cert_dir, self.key_dir.as_deref().unwrap_or(cert_dir))
    }
}

/// Whether `path` names a YAML file (`.yaml`, `.yml`).
pub(crate) fn is_yaml(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// Path settings for sources whose entries name files relatively.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SourceOptions {
    /// Where relative `ssl_cert_name`/`ssl_ca_name` paths of an ssl_multicert.config point
    /// (ATS `proxy.config.ssl.server.cert.path`); default: the config file's directory.
    pub cert_dir: Option<PathBuf>,
    /// Where relative `ssl_key_name` paths point (ATS `proxy.config.ssl.server.private_key.path`);
    /// default: `cert_dir`.
    pub key_dir: Option<PathBuf>,
}

/// How an entry's encrypted keys get their passphrase.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyDialog {
    /// Use the passphrase given to the loader ([`LoadOptions::passphrase`](crate::LoadOptions)).
    Builtin,
    /// Run this command (`ssl_key_dialog="exec:/path args"`); its first line of output is the passphrase.
    Exec(String),
}

/// The local address an entry is selected by (`dest_ip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DestIp {
    /// The local address.
    pub addr: IpAddr,
    /// `None`: any port.
    pub port: Option<u16>,
}

/// One configured entry, before its files are read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct EntrySpec {
    /// The configuration file (or, for a directory, the certificate file) and line.
    pub origin: PathBuf,
    /// The line in `origin`, when it is a configuration file.
    pub line: Option<u32>,
    /// One certificate file per chain (RSA and/or ECDSA); a chain may follow the leaf in the file.
    pub certs: Vec<PathBuf>,
    /// The key file of each chain, in the same order; `None`: the key is in the certificate file.
    pub keys: Vec<Option<PathBuf>>,
    /// Files with more chain (intermediate) certificates, appended to every chain.
    pub ca: Vec<PathBuf>,
    /// Names to serve instead of the certificate's names (crt-list SNI filters).
    pub sni_filters: Vec<String>,
    /// The crt-list line has filters (any: names, `!name`, `*`): as in HAProxy, only the
    /// filters name the entry then, never the certificate.
    pub filtered: bool,
    /// Names this entry's wildcards must not cover (crt-list `!name`).
    pub exclusions: Vec<String>,
    /// Serve the entry to connections on this local address (ATS `dest_ip`).
    pub dest_ip: Option<DestIp>,
    /// The entry for connections nothing else matches (`dest_ip=*`, crt-list filter `*`).
    pub default: bool,
    /// Its source is declared keyless ([`LoadOptions::remote_key_sources`](crate::LoadOptions)):
    /// without a key of its own it is served with a remote key. Set by the loader.
    pub remote_key: bool,
    /// Do not terminate TLS for this entry's addresses (ATS `action=tunnel`).
    pub tunnel: bool,
    /// How to get the passphrase of an encrypted key (ATS `ssl_key_dialog`).
    pub key_dialog: Option<KeyDialog>,
    /// Session tickets for this entry (ATS `ssl_ticket_enabled`); `None`: the listener's setting.
    pub ticket_enabled: Option<bool>,
    /// TLS 1.3 tickets sent after a full handshake (ATS `ssl_ticket_number`).
    pub ticket_number: Option<u32>,
    /// The OCSP response file (`ssl_ocsp_name`, crt-list `ocsp`).
    pub ocsp: Option<PathBuf>,
    /// Fetch and refresh the OCSP response from the responder (crt-list `ocsp-update`).
    pub ocsp_update: Option<bool>,
    /// crt-list `[ … ]` options, kept word by word for the policy crate.
    pub options: Vec<String>,
    /// Files read with the entry when they exist: each chain's OCSP response and issuer
    /// ([`EntrySpec::ocsp_file`], [`EntrySpec::issuer_file`]). Filled when the source is read.
    pub optional: Vec<PathBuf>,
}

impl EntrySpec {
    /// Chain `i`'s OCSP response file: the configured one (`ssl_ocsp_name`, crt-list `ocsp`)
    /// for an entry of one chain, else `CERT.ocsp` beside the certificate file (HAProxy's
    /// naming: `site.pem.ecdsa.ocsp` for `site.pem.ecdsa`).
    pub fn ocsp_file(&self, i: usize) -> Option<PathBuf> {
        match &self.ocsp {
            Some(p) if self.certs.len() == 1 => Some(p.clone()),
            _ => self.certs.get(i).map(|c| suffixed(c, ".ocsp")),
        }
    }

    /// Chain `i`'s issuer file, `CERT.issuer` (used when the chain does not hold the issuer).
    pub fn issuer_file(&self, i: usize) -> Option<PathBuf> {
        self.certs.get(i).map(|c| suffixed(c, ".issuer"))
    }

    /// Fills [`optional`](Self::optional) from the certificate files.
    pub(crate) fn find_optional(&mut self) {
        self.optional = (0..self.certs.len())
            .flat_map(|i| [self.ocsp_file(i), self.issuer_file(i)])
            .flatten()
            .collect();
    }

    /// The file that names this entry in reports: its first certificate, or its origin.
    pub fn display_path(&self) -> &Path {
        self.certs.first().map_or(&self.origin, PathBuf::as_path)
    }
}

pub(crate) fn line_problem(path: &Path, line: u32, message: impl Into<String>) -> Problem {
    Problem {
        severity: Severity::Error,
        origin: path.to_path_buf(),
        line: Some(line),
        error: CertStoreError::config(path, line, message),
    }
}

pub(crate) fn line_warning(path: &Path, line: u32, message: impl Into<String>) -> Problem {
    Problem {
        severity: Severity::Warning,
        origin: path.to_path_buf(),
        line: Some(line),
        error: CertStoreError::config(path, line, message),
    }
}

pub(crate) fn read_config(path: &Path) -> Result<String, CertStoreError> {
    let bytes = std::fs::read(path).map_err(|source| CertStoreError::SourceUnusable {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| CertStoreError::SourceUnusable {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
    })
}

/// `path` with `suffix` appended to its file name.
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Resolves `p` against `base` unless it is absolute.
pub(crate) fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Parses `addr`, `addr:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
pub(crate) fn parse_dest_ip(s: &str) -> Option<DestIp> {
    if let Ok(addr) = s.parse::<IpAddr>() {
        return Some(DestIp {
            addr: crate::index::canonical_ip(addr),
            port: None,
        });
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some(DestIp {
            addr: crate::index::canonical_ip(sa.ip()),
            port: Some(sa.port()),
        });
    }
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    Some(DestIp {
        addr: crate::index::canonical_ip(inner.parse().ok()?),
        port: None,
    })
}

#[cfg(test)]
mod tests;
