//! `edgetls`: the operator's command line.

mod certs;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "edgetls",
    version,
    about = "TLS termination at the edge, on OpenSSL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Certificate sources: check them, look names up.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Certs(cmd) => certs::run(cmd),
    }
}
