//! Loads certificates the way an operator has them — a directory of PEM files, a Traffic
//! Server `ssl_multicert.config` or a HAProxy crt-list — and says which one each name gets.
//!
//! ```text
//! cargo run -p edgetls-certstore --example lookup -- /etc/ssl/sites www.example.com api.example.com
//! ```
//!
//! Every problem is reported with its file and line; one bad entry never stops the others.

use edgetls_certstore::{CertStore, LoadOptions, Source};
use std::path::Path;

fn main() -> std::process::ExitCode {
    run().map_or_else(
        |e| {
            eprintln!("lookup: {e}");
            std::process::ExitCode::FAILURE
        },
        |()| std::process::ExitCode::SUCCESS,
    )
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let source = args
        .next()
        .ok_or("usage: lookup DIR|ssl_multicert.config|CRT_LIST NAME...")?;
    // `detect` tells a directory, an ssl_multicert.config and a crt-list apart.
    let source = Source::detect(Path::new(&source))?;
    let (store, report) = CertStore::load(vec![source], LoadOptions::default())?;
    for problem in &report.problems {
        eprintln!("{problem}");
    }
    println!(
        "loaded {} of {} entries ({} names, {} wildcards) in {:.1} ms",
        report.loaded,
        report.entries,
        report.names,
        report.wildcards,
        report.elapsed.as_secs_f64() * 1e3
    );
    // A snapshot is the store at one moment; a reload swaps in a new one atomically.
    let snapshot = store.snapshot();
    for name in args {
        match snapshot.lookup(Some(&name), None) {
            Some(hit) => println!(
                "{name}: {} ({})",
                hit.entry.path().display(),
                hit.how.as_str()
            ),
            None => println!("{name}: no certificate"),
        }
    }
    Ok(())
}
