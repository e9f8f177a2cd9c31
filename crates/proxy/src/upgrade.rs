//! `edgetls upgrade --config FILE`: replaces the running proxy with a new process — of this
//! binary, on that configuration — without losing a connection. It starts `edgetls proxy
//! --takeover` detached; the new process loads everything, takes the old one's listening
//! sockets over the control socket, accepts on them, and tells the old one to drain. This
//! command exits 0 once the new process answers on the control socket (so it accepts), and
//! non-zero, with the old process untouched, when the new one cannot start (a configuration
//! that does not load, say): scripts and systemd's `ExecReload` can rely on its status.

use crate::proxy::config::Config;
use crate::proxy::handover;
use clap::Args;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub(crate) struct UpgradeArgs {
    /// The configuration the new process runs (the running one's control socket is found from
    /// it: `[server] control`).
    #[arg(long)]
    config: PathBuf,
    /// How long the new process may take to load its certificates and take over.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

pub(crate) fn run(args: &UpgradeArgs) -> ExitCode {
    let fail = |code: u8, message: String| {
        eprintln!("edgetls upgrade: {message}");
        ExitCode::from(code)
    };
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => return fail(2, format!("{e}; nothing was changed")),
    };
    let control = &config.control;
    let Some(old) = handover::status(control) else {
        return fail(
            2,
            format!(
                "no edgetls proxy answers on {} (is one running with this configuration?)",
                control.display()
            ),
        );
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fail(1, format!("this program's path: {e}")),
    };
    // Its own process group: it outlives this command and the terminal it runs in. Its
    // output goes where this command's does.
    let child = Command::new(exe)
        .arg("proxy")
        .arg("--config")
        .arg(&args.config)
        .arg("--takeover")
        .stdin(Stdio::null())
        .process_group(0)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return fail(
                1,
                format!("starting the new process: {e}; pid {old} serves on"),
            );
        }
    };
    let new = child.id();
    let until = Instant::now() + args.timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return fail(
                    1,
                    format!(
                        "the new process exited ({status}) before taking over; pid {old} serves on"
                    ),
                );
            }
            Ok(None) => {}
            Err(e) => return fail(1, format!("waiting for pid {new}: {e}")),
        }
        if handover::status(control) == Some(new) {
            println!(
                "edgetls upgrade: pid {new} serves; pid {old} drains its connections and exits"
            );
            return ExitCode::SUCCESS;
        }
        if Instant::now() > until {
            // Not taken over yet: the old process still accepts, so stop the new one.
            let _ = child.kill();
            let _ = child.wait();
            return fail(
                1,
                format!(
                    "pid {new} did not take over within {}; stopped it, pid {old} serves on",
                    humantime::format_duration(args.timeout)
                ),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
