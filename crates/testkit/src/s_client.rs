//! `openssl s_client`, as every test runs it: one builder instead of one copy per crate.
//!
//! ```no_run
//! use edgetls_testkit::s_client::SClient;
//! let out = SClient::connect("127.0.0.1:8443".parse().unwrap())
//!     .name("a.test")
//!     .ca("ca.pem")
//!     .args(["-brief", "-tls1_3"])
//!     .run();
//! assert!(out.ok, "{}", out.text());
//! ```

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

/// An `openssl s_client` command line being built.
#[derive(Debug, Clone)]
pub struct SClient {
    args: Vec<OsString>,
    name: Option<String>,
    input: Vec<u8>,
}

/// What `openssl s_client` did.
#[derive(Debug, Clone)]
pub struct Output {
    /// It exited 0.
    pub ok: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Output {
    /// Standard output then standard error, as one text (what most assertions search).
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The session was resumed ("Reused, " in s_client's session summary).
    pub fn reused(&self) -> bool {
        self.stdout.contains("\nReused, ")
    }
}

impl SClient {
    /// `openssl s_client -connect addr`; the server name is s_client's own choice (none for an
    /// IP address) until [`name`](Self::name).
    pub fn connect(addr: SocketAddr) -> SClient {
        SClient {
            args: vec![
                "s_client".into(),
                "-connect".into(),
                addr.to_string().into(),
            ],
            name: None,
            input: Vec::new(),
        }
    }

    /// Sends `name` as the server name (`-servername`); "" sends none (`-noservername`).
    pub fn name(mut self, name: &str) -> SClient {
        self.name = Some(name.to_string());
        self
    }

    /// Verifies the server against `ca` (`-CAfile`).
    pub fn ca(mut self, ca: impl AsRef<Path>) -> SClient {
        self.args.push("-CAfile".into());
        self.args.push(ca.as_ref().as_os_str().to_owned());
        self
    }

    /// Any other arguments, in order.
    pub fn args<I, S>(mut self, args: I) -> SClient
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Writes `input` to its standard input (then closes it); by default it reads nothing.
    pub fn input(mut self, input: impl Into<Vec<u8>>) -> SClient {
        self.input = input.into();
        self
    }

    /// Runs it to the end.
    pub fn run(self) -> Output {
        let mut cmd = Command::new("openssl");
        // s_client -connect ADDR, the server name, then the rest: a later -servername in the
        // caller's arguments wins, as on a command line.
        cmd.args(&self.args[..3]);
        match self.name.as_deref() {
            None => {}
            Some("") => {
                cmd.arg("-noservername");
            }
            Some(name) => {
                cmd.args(["-servername", name]);
            }
        }
        cmd.args(&self.args[3..]);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("openssl s_client runs");
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            let _ = stdin.write_all(&self.input);
        }
        let out = child.wait_with_output().expect("openssl s_client ends");
        Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs it and asserts it exited 0; its output as one text.
    pub fn run_ok(self) -> String {
        let shown = format!("{:?}", self.args);
        let out = self.run();
        assert!(out.ok, "openssl {shown} failed:\n{}", out.text());
        out.text()
    }
}
