//! `edgetls`: the operator's command line.

mod certs;
mod demo;
mod error;
mod proxy;
mod tickets;

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
    /// Run the TLS terminator: certificates, policy, tickets, keyless keys, routes to origins.
    Proxy(proxy::ProxyArgs),
    /// Session-ticket key files: generate them, inspect them.
    #[command(subcommand)]
    Tickets(tickets::TicketsCommand),
    /// The whole stack on this machine: a throwaway PKI, a key server, origins and the proxy.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Certs(cmd) => certs::run(cmd),
        Command::Proxy(args) => proxy::run(&args),
        Command::Tickets(cmd) => tickets::run(cmd),
        Command::Demo(args) => demo::run(&args),
    }
}
