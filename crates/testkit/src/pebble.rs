//! Let's Encrypt's test CA, Debian's `pebble`, with its `pebble-challtestsrv` as the DNS server
//! it resolves names with (every name → 127.0.0.1; TXT records set over its management API).
//! Pebble validates challenges on the ports it is given: the TLS-ALPN-01 and HTTP-01 ports of
//! the server under test.

use crate::net::free_port;
use crate::wait::listening;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Whether pebble is installed (`.ci/run` installs it; a machine without it skips).
pub fn available() -> bool {
    Command::new("pebble")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// For a test that needs pebble: true (and a message) where it is not installed, so the test
/// returns at once.
pub fn skip() -> bool {
    let missing = !available();
    if missing {
        eprintln!("pebble is not installed: skipped (apt-get install pebble)");
    }
    missing
}

/// How pebble behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where pebble connects for TLS-ALPN-01 (the server under test's TLS port).
    pub tls_port: u16,
    /// Where pebble connects for HTTP-01.
    pub http_port: u16,
    /// Percentage of valid nonces refused (`PEBBLE_WFE_NONCEREJECT`; 0 for determinism).
    pub nonce_reject: u8,
    /// External account binding required (key id `kid-1`, key [`EAB_KEY`]).
    pub eab: bool,
}

impl Options {
    pub fn new(tls_port: u16, http_port: u16) -> Options {
        Options {
            tls_port,
            http_port,
            nonce_reject: 0,
            eab: false,
        }
    }
}

/// The HMAC key of pebble's `kid-1` (base64url, as in pebble's example configuration).
pub const EAB_KEY: &str = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

/// A running pebble and its DNS server, stopped on drop.
pub struct Pebble {
    pebble: Option<Child>,
    dns: Child,
    dir: tempfile::TempDir,
    options: Options,
    pub port: u16,
    pub management: u16,
    pub dns_port: u16,
    pub dns_management: u16,
    /// The ACME directory URL.
    pub directory: String,
    /// The root that signs pebble's API certificate (for the client's trust).
    pub api_ca: PathBuf,
}

impl Pebble {
    pub fn start(options: Options) -> Pebble {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let d = dir.path();
        let (issuer, ca_pem, _) = crate::ca("pebble API test CA");
        std::fs::write(d.join("api-ca.pem"), ca_pem).expect("write");
        crate::leaf(&issuer, "localhost", &["localhost", "127.0.0.1"], d, "api");
        let (port, management) = (free_port(), free_port());
        let (dns_port, dns_management) = (free_port(), free_port());
        let dns = Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-management", &format!("127.0.0.1:{dns_management}")])
            .args([
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-defaultIPv6",
                "",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble-challtestsrv runs");
        listening(dns_management, "pebble-challtestsrv");
        let mut p = Pebble {
            pebble: None,
            dns,
            options,
            port,
            management,
            dns_port,
            dns_management,
            directory: format!("https://127.0.0.1:{port}/dir"),
            api_ca: d.join("api-ca.pem"),
            dir,
        };
        // Ports picked free can be taken by a parallel test before pebble binds them: pebble
        // then exits (or another process answers). Fresh ports until it is up.
        for attempt in 0.. {
            if p.launch() {
                break;
            }
            assert!(attempt < 5, "pebble did not start: {}", p.log());
            p.stop();
            p.port = free_port();
            p.management = free_port();
            p.directory = format!("https://127.0.0.1:{}/dir", p.port);
        }
        p
    }

    /// Stops the CA (a CA that is down); [`resume`](Self::resume) starts it again on the same
    /// port (pebble keeps nothing: accounts made before are gone).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.pebble.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the CA (again).
    pub fn resume(&mut self) {
        assert!(self.launch(), "pebble did not start: {}", self.log());
    }

    /// Starts pebble on its ports; whether it is up: both its listeners answer and it is
    /// still running.
    fn launch(&mut self) -> bool {
        let d = self.dir.path();
        let mut config = format!(
            "{{\"pebble\": {{\"listenAddress\": \"127.0.0.1:{}\", \"managementListenAddress\": \"127.0.0.1:{}\", \
             \"certificate\": \"{}\", \"privateKey\": \"{}\", \"httpPort\": {}, \"tlsPort\": {}, \
             \"ocspResponderURL\": \"\", \"externalAccountBindingRequired\": {}",
            self.port,
            self.management,
            d.join("api.pem").display(),
            d.join("api.key").display(),
            self.options.http_port,
            self.options.tls_port,
            self.options.eab,
        );
        if self.options.eab {
            config.push_str(&format!(
                ", \"externalAccountMACKeys\": {{\"kid-1\": \"{EAB_KEY}\"}}"
            ));
        }
        config.push_str("}}");
        std::fs::write(d.join("pebble.json"), config).expect("write");
        let log = std::fs::File::create(d.join("pebble.log")).expect("log");
        let child = Command::new("pebble")
            .arg("-config")
            .arg(d.join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{}", self.dns_port)])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env(
                "PEBBLE_WFE_NONCEREJECT",
                self.options.nonce_reject.to_string(),
            )
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("pebble runs");
        self.pebble = Some(child);
        let answering = |port: u16| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        let up = crate::wait::eventually(std::time::Duration::from_secs(5), || {
            answering(self.port) && answering(self.management)
        });
        // (A listener of another process on the ports would leave pebble exited.)
        std::thread::sleep(std::time::Duration::from_millis(50));
        let running = self
            .pebble
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        up && running
    }

    /// The certificate and key pebble's API serves (signed by [`api_ca`](Self::api_ca)).
    pub fn api_cert_files(&self) -> (PathBuf, PathBuf) {
        let d = self.dir.path();
        (d.join("api.pem"), d.join("api.key"))
    }

    /// Pebble's process id (to freeze it: a CA that stops answering).
    pub fn pid(&self) -> i32 {
        self.pebble.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Pebble's log so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// The root that issues certificates (PEM), from pebble's management API.
    pub fn issuing_root(&self) -> String {
        let out = Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&self.api_ca)
            .arg(format!("https://127.0.0.1:{}/roots/0", self.management))
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Pebble's status for the certificate with this serial (lowercase hex): `Valid`,
    /// `Revoked`, or what its management API answered.
    pub fn cert_status(&self, serial: &str) -> String {
        let out = Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&self.api_ca)
            .arg(format!(
                "https://127.0.0.1:{}/cert-status-by-serial/{serial}",
                self.management
            ))
            .output()
            .expect("curl runs");
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        body.split("\"Status\":")
            .nth(1)
            .and_then(|r| r.split('"').nth(1))
            .map_or(body.clone(), str::to_owned)
    }

    /// A command line that sets (`set-txt`) or clears (`clear-txt`) a TXT record on the DNS
    /// server: for a DNS-01 hook script (`$1` = set|clear, `$2` = name, `$3` = value).
    pub fn dns_hook_script(&self) -> String {
        format!(
            "#!/bin/sh\nset -e\ncase \"$1\" in set) path=set-txt; body=\"{{\\\"host\\\":\\\"$2.\\\",\\\"value\\\":\\\"$3\\\"}}\";; \
             clear) path=clear-txt; body=\"{{\\\"host\\\":\\\"$2.\\\"}}\";; *) exit 2;; esac\n\
             curl -sSf -d \"$body\" http://127.0.0.1:{}/$path\n",
            self.dns_management
        )
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
        let _ = self.dns.kill();
        let _ = self.dns.wait();
    }
}
