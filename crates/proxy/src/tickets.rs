//! `edgetls tickets gen | inspect`: session-ticket key files in the formats servers read.

use crate::error::CliError;
use clap::Subcommand;
use edgetls_tickets::format::{self, Format};
use edgetls_tickets::{KeySet, TicketKey};
use std::io::Write;
use std::path::PathBuf;
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

fn inspect(file: &std::path::Path, format: Format) -> Result<(), CliError> {
    let set = format::read(file, format)?;
    for (i, k) in set.keys.iter().enumerate() {
        let mark = if i == set.encrypt { " encrypts" } else { "" };
        println!("{} {}{mark}", k.name_hex(), k.size().as_str());
    }
    Ok(())
}
