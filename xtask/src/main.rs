//! `cargo xtask <task>`: developer tasks for edgetls.

mod bench;
mod bench_ab;
mod bench_acme;
mod bench_engine;
mod bench_groups;
mod bench_hostile;
mod bench_hsm;
mod bench_keyless;
mod bench_libraries;
mod bench_names;
mod bench_openssl;
mod bench_policy;
mod bench_pp;
mod bench_proxy;
mod bench_restarts;
mod bench_soak;
mod bench_tickets;
mod fleet;
mod fuzz;
mod gen_certs;
mod haproxy_awslc;
mod loadgen;
mod memcheck;
mod naive;
mod ocsp_gen;
mod openssl;
mod plot;
mod pyclient;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "edgetls developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Generate a test PKI and certificate sets, with a matching ssl_multicert.config and crt-list.
    GenCerts(gen_certs::Args),
    /// Run the measurements behind docs/benchmarks.md.
    Bench(bench::Args),
    /// Run every cargo-fuzz target for a while (RUSTC_BOOTSTRAP=1 on the stable toolchain).
    Fuzz(fuzz::Args),
    /// The load generator: N concurrent TLS clients against a server (handshakes/s, latency).
    Load(loadgen::Args),
    /// One SSL_CTX per certificate file, the way servers without a store load (for the report).
    #[command(hide = true)]
    NaiveLoad(naive::Args),
    /// The large-chain keyless test with the proxy under valgrind's memcheck (0 errors).
    Memcheck,
    /// Build OpenSSL 3.5 or 4.0 under target/openssl (once) and print its OPENSSL_DIR.
    Openssl(openssl::Args),
    /// Handshakes per server CPU-second, local and remote key (one JSON line; for --suite openssl).
    #[command(hide = true)]
    EngineRate {
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
    },
    /// SoftHSM's own ECDSA P-256 signatures per second (for --suite hsm; needs SOFTHSM2_CONF).
    #[command(hide = true)]
    HsmRate {
        #[arg(long)]
        token: String,
        #[arg(long)]
        object: String,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
    /// The bench's origin (a 3-byte HTTP answer to every request), for manual comparisons.
    Origin {
        /// Address to listen on.
        #[arg(default_value = "127.0.0.1:9099")]
        addr: std::net::SocketAddr,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::GenCerts(args) => gen_certs::run(&args).map(|summary| println!("{summary}")),
        Task::Bench(args) => bench::run(&args),
        Task::Fuzz(args) => fuzz::run(&args),
        Task::NaiveLoad(args) => naive::run(&args),
        Task::Load(args) => loadgen::cli(&args),
        Task::Openssl(args) => openssl::run(&args, &bench::workspace_root()?),
        Task::Memcheck => memcheck::run(&bench::workspace_root()?),
        Task::EngineRate { rounds, seconds } => {
            bench_engine::engine_rate(&bench::workspace_root()?, rounds, seconds)
        }
        Task::HsmRate {
            token,
            object,
            threads,
            seconds,
        } => bench_hsm::own_rate(&token, &object, threads, seconds),
        Task::Origin { addr } => {
            println!("origin on {}", bench_proxy::origin(addr)?);
            loop {
                std::thread::park();
            }
        }
    }
}
