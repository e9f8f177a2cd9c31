//! `edgetls`: the operator's command line, and the example TLS-terminating proxy.
//!
//! ```text
//! edgetls demo                                   # the whole stack on 127.0.0.1:8443, with commands to try
//! edgetls proxy --config proxy.toml [--check]    # the proxy (docs/proxy.md, docs/configuration.md)
//! edgetls certs check SOURCE [--json|--deep|--keyless]
//! edgetls certs lookup [--ip ADDR] SOURCE NAME...
//! edgetls tickets gen --format haproxy --count 3 --out tickets.keys
//! edgetls tickets inspect tickets.keys --format haproxy
//! ```
//!
//! The proxy composes the workspace's crates: `edgetls-certstore` (certificates),
//! `edgetls-policy` (per-name negotiation), `edgetls-tickets` (ticket keys),
//! `edgetls-engine` + `edgetls-keyless-client` (keys on key servers); see
//! `docs/architecture.md` for the handshake path and the threads.

mod admin_client;
mod alloc;
mod certs;
mod demo;
mod error;
mod proxy;
mod tickets;
mod upgrade;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "edgetls",
    version,
    about = "TLS termination at the edge, on OpenSSL or AWS-LC"
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
    /// Replace the running proxy by a new process of this binary, without losing a connection.
    Upgrade(upgrade::UpgradeArgs),
    /// Session-ticket key files: generate them, inspect them.
    #[command(subcommand)]
    Tickets(tickets::TicketsCommand),
    /// The whole stack on this machine: a throwaway PKI, a key server, origins and the proxy.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    if !alloc::route_openssl() {
        eprintln!(
            "edgetls: OpenSSL had allocated before main: it keeps its allocator, and its ASYNC \
             job stacks are not guarded"
        );
    }
    match Cli::parse().command {
        Command::Certs(cmd) => certs::run(cmd),
        Command::Proxy(args) => proxy::run(&args),
        Command::Upgrade(args) => upgrade::run(&args),
        Command::Tickets(cmd) => tickets::run(cmd),
        Command::Demo(args) => demo::run(&args),
    }
}
