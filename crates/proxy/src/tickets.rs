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
        /// Keys in the file (nginx files hold one; HAProxy encrypts with the penultimate).
        #[arg(long, default_value_t = 1)]
        count: usize,
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

pub(crate) fn generate(format: Format, count: usize, out: Option<PathBuf>) -> Result<(), CliError> {
    if count == 0 {
        return Err(CliError::Tickets(edgetls_tickets::TicketError::Invalid(
            "--count must be at least 1".into(),
        )));
    }
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
