//! `edgetls tickets gen | gen-secret | inspect`: session-ticket key files in the formats servers
//! read, and the secret a fleet derives its keys from; and the proxy's ticket keys from either.

use crate::error::CliError;
use clap::Subcommand;
use edgetls_tickets::format::{self, Format};
use edgetls_tickets::{
    DerivedSource, FileSource, KeySet, KeySize, RingOptions, TicketKey, TicketKeys,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub(crate) enum TicketsCommand {
    /// Write a fresh key file (to stdout, or --out FILE created with mode 0600).
    Gen {
        /// ats, nginx48, nginx80 or haproxy.
        #[arg(long)]
        format: Format,
        /// Keys in the file (default: 3 for HAProxy, which refuses fewer and encrypts with the
        /// penultimate; 1 for the others; nginx files hold one).
        #[arg(long)]
        count: Option<usize>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a fresh secret for `[tickets] secret_file` (64 random bytes, mode 0600): every
    /// edge given the same file derives the same keys. An existing file is not overwritten.
    GenSecret {
        #[arg(long)]
        out: PathBuf,
    },
    /// One line per key: its name in hex, its size, and `encrypts` on the encrypting key.
    /// Never prints secrets.
    Inspect {
        file: PathBuf,
        #[arg(long)]
        format: Format,
    },
}

pub(crate) fn run(cmd: TicketsCommand) -> ExitCode {
    let r = match cmd {
        TicketsCommand::Gen { format, count, out } => generate(format, count, out),
        TicketsCommand::GenSecret { out } => gen_secret(&out),
        TicketsCommand::Inspect { file, format } => inspect(&file, format),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgetls tickets: {e}");
            ExitCode::from(2)
        }
    }
}

/// HAProxy refuses a `tls-ticket-keys` file with fewer keys ("please supply at least 3 keys").
const HAPROXY_MIN_KEYS: usize = 3;

pub(crate) fn generate(
    format: Format,
    count: Option<usize>,
    out: Option<PathBuf>,
) -> Result<(), CliError> {
    let invalid = |m: String| CliError::Tickets(edgetls_tickets::TicketError::Invalid(m));
    let count = match (format, count) {
        (Format::Haproxy, None) => HAPROXY_MIN_KEYS,
        (Format::Haproxy, Some(n @ 1..HAPROXY_MIN_KEYS)) => {
            // Fine to append to a file that has keys already (rotation); alone, HAProxy refuses it.
            eprintln!(
                "edgetls tickets: warning: HAProxy refuses a tls-ticket-keys file with fewer than \
                 {HAPROXY_MIN_KEYS} keys: append these {n} to a file that has more"
            );
            n
        }
        (_, None) => 1,
        (_, Some(0)) => return Err(invalid("--count must be at least 1".into())),
        (_, Some(n)) => n,
    };
    let keys = (0..count)
        .map(|_| TicketKey::generate(format.default_size()))
        .collect::<Result<Vec<_>, _>>()?;
    let set = KeySet::new(keys, format.encrypting_index(count))?;
    let bytes = format::write(&set, format)?;
    match out {
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .map_err(CliError::io(&path))?;
            f.write_all(&bytes).map_err(CliError::io(&path))?;
        }
        None => std::io::stdout()
            .write_all(&bytes)
            .map_err(CliError::io("stdout"))?,
    }
    Ok(())
}

/// The fewest bytes a fleet secret may have.
const SECRET_MIN: usize = 32;

fn gen_secret(out: &Path) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut secret = zeroize::Zeroizing::new([0u8; 64]);
    openssl::rand::rand_bytes(&mut secret[..])?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(CliError::io(out))?;
    f.write_all(&secret[..]).map_err(CliError::io(out))
}

/// The fleet secret in `path`: all its bytes (at least 32), from a file only its owner can
/// read or write.
fn read_secret(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, CliError> {
    use std::os::unix::fs::PermissionsExt;
    let invalid = |m: String| {
        CliError::Tickets(edgetls_tickets::TicketError::Invalid(format!(
            "{}: {m}",
            path.display()
        )))
    };
    let mode = std::fs::metadata(path)
        .map_err(CliError::io(path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(invalid(format!(
            "mode {:o}: a ticket secret must be readable by its owner only (chmod 600)",
            mode & 0o777
        )));
    }
    let secret = zeroize::Zeroizing::new(std::fs::read(path).map_err(CliError::io(path))?);
    if secret.len() < SECRET_MIN {
        return Err(invalid(format!(
            "{} bytes: a ticket secret needs at least {SECRET_MIN} (edgetls tickets gen-secret)",
            secret.len()
        )));
    }
    Ok(secret)
}

/// The proxy's ticket keys from its `[tickets]` section.
pub(crate) fn keys(source: &crate::proxy::Tickets) -> Result<TicketKeys, CliError> {
    let opts = RingOptions::default();
    let keys = match source {
        crate::proxy::Tickets::File(file, format) => {
            TicketKeys::new(FileSource::new(file, *format), opts)
        }
        crate::proxy::Tickets::Derived { secret, period } => {
            let secret = read_secret(secret)?;
            let derived = DerivedSource::new(
                &secret,
                period.as_secs().max(1),
                opts.grace,
                KeySize::Aes256,
            )?;
            TicketKeys::new(derived, opts)
        }
    };
    keys.map_err(|e| CliError::Setup(format!("tickets: {e}")))
}

fn inspect(file: &std::path::Path, format: Format) -> Result<(), CliError> {
    let set = format::read(file, format)?;
    for (i, k) in set.keys.iter().enumerate() {
        let mark = if i == set.encrypt { " encrypts" } else { "" };
        println!("{} {}{mark}", k.name_hex(), k.size().as_str());
    }
    Ok(())
}
