//! `edgetls certs show|add|replace|remove|renew|orders --socket PATH`: the runtime certificate
//! API's client (one JSON request line, one JSON answer line; docs/admin.md).

use clap::Subcommand;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand)]
pub(crate) enum AdminCommand {
    /// The certificates a running proxy serves (all, or those naming NAME): file, names,
    /// expiry, OCSP, and whether the admin API manages the file.
    Show {
        #[arg(long)]
        socket: PathBuf,
        name: Option<String>,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a certificate for NAME (checked first: key matches, chain links, valid now, names
    /// NAME); written into the admin storage directory and in effect at once.
    Add {
        #[arg(long)]
        socket: PathBuf,
        name: String,
        /// The certificate chain (PEM: leaf first).
        #[arg(long)]
        cert: PathBuf,
        /// Its private key (PEM).
        #[arg(long)]
        key: PathBuf,
    },
    /// Replace the certificate of NAME that the admin API manages (same checks as add).
    Replace {
        #[arg(long)]
        socket: PathBuf,
        name: String,
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        key: PathBuf,
    },
    /// Remove the certificate of NAME that the admin API manages.
    Remove {
        #[arg(long)]
        socket: PathBuf,
        name: String,
    },
    /// Order a new certificate for the set of ACME names that includes NAME now, and wait for it.
    Renew {
        #[arg(long)]
        socket: PathBuf,
        name: String,
    },
    /// ACME: each set of names, its certificate's expiry and renewal time, its order state.
    Orders {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn call(socket: &Path, request: &Value, wait: Duration) -> Result<Value, String> {
    let shown = socket.display();
    let mut conn = UnixStream::connect(socket).map_err(|e| format!("{shown}: {e}"))?;
    conn.set_read_timeout(Some(wait))
        .map_err(|e| e.to_string())?;
    let mut line = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    line.push(b'\n');
    conn.write_all(&line).map_err(|e| format!("{shown}: {e}"))?;
    let mut answer = String::new();
    BufReader::new(conn)
        .read_line(&mut answer)
        .map_err(|e| format!("{shown}: no answer: {e}"))?;
    serde_json::from_str(&answer).map_err(|e| format!("{shown}: not an answer ({e}): {answer:?}"))
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// An add or replace request with the files' contents.
fn put_request(op: &str, name: &str, cert: &Path, key: &Path) -> Result<Value, ExitCode> {
    match (read(cert), read(key)) {
        (Ok(c), Ok(k)) => Ok(json!({"op": op, "name": name, "cert": c, "key": k})),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("edgetls certs {op}: {e}");
            Err(ExitCode::from(2))
        }
    }
}

pub(crate) fn run(cmd: AdminCommand) -> ExitCode {
    let quick = Duration::from_secs(30);
    let (socket, request, wait, as_json) = match cmd {
        AdminCommand::Show { socket, name, json } => {
            (socket, json!({"op": "show", "name": name}), quick, json)
        }
        AdminCommand::Add {
            socket,
            name,
            cert,
            key,
        } => match put_request("add", &name, &cert, &key) {
            Ok(r) => (socket, r, quick, false),
            Err(code) => return code,
        },
        AdminCommand::Replace {
            socket,
            name,
            cert,
            key,
        } => match put_request("replace", &name, &cert, &key) {
            Ok(r) => (socket, r, quick, false),
            Err(code) => return code,
        },
        AdminCommand::Remove { socket, name } => {
            (socket, json!({"op": "remove", "name": name}), quick, false)
        }
        AdminCommand::Renew { socket, name } => (
            socket,
            json!({"op": "renew", "name": name}),
            Duration::from_secs(300),
            false,
        ),
        AdminCommand::Orders { socket, json } => (socket, json!({"op": "orders"}), quick, json),
    };
    let op = request["op"].as_str().unwrap_or("").to_owned();
    let answer = match call(&socket, &request, wait) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("edgetls certs {op}: {e}");
            return ExitCode::from(2);
        }
    };
    if answer["ok"] != json!(true) {
        eprintln!(
            "edgetls certs {op}: {}",
            answer["error"].as_str().unwrap_or("refused")
        );
        return ExitCode::from(1);
    }
    if as_json {
        println!("{answer}");
        return ExitCode::SUCCESS;
    }
    match op.as_str() {
        "show" => {
            for e in answer["entries"].as_array().into_iter().flatten() {
                let names: Vec<&str> = e["names"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                println!(
                    "{}\t{}\tnot_after={}\tocsp={}{}",
                    e["file"].as_str().unwrap_or(""),
                    names.join(","),
                    e["not_after"],
                    e["ocsp"],
                    if e["managed"] == json!(true) {
                        "\tmanaged"
                    } else {
                        ""
                    }
                );
            }
        }
        "orders" => {
            for s in answer["sets"].as_array().into_iter().flatten() {
                println!(
                    "{}\tnot_after={}\trenew_at={}\tfailures={}\tretry_at={}\tin_flight={}{}",
                    s["names"],
                    s["not_after"],
                    s["renew_at"],
                    s["failures"],
                    s["retry_at"],
                    s["in_flight"],
                    s["last_error"]
                        .as_str()
                        .map_or(String::new(), |e| format!("\tlast_error={e}"))
                );
            }
        }
        _ => {
            let took = answer["in_effect_ms"]
                .as_f64()
                .map_or(String::new(), |ms| format!(" (in effect in {ms:.1} ms)"));
            println!("{op}: {}{took}", answer["file"].as_str().unwrap_or(""));
        }
    }
    ExitCode::SUCCESS
}
