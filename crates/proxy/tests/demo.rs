//! `edgetls demo`, the README's main command: every command it prints is run as printed (through
//! `sh`, with the real `curl` and `openssl s_client`) and must show what its comment says.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Demo {
    child: Child,
    /// What each printed command shows (its `# comment`) → the command.
    commands: HashMap<String, String>,
    _dir: tempfile::TempDir,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    fn start() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgetls"))
            .args([
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--metrics",
                "127.0.0.1:0",
            ])
            .args(["--names", "20", "--exit-after", "300", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut commands = HashMap::new();
        let mut seen = String::new();
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("the demo stopped printing; so far:\n{seen}"));
            seen.push_str(&line);
            seen.push('\n');
            if line.starts_with("the configuration is") {
                break;
            }
            if let Some((command, what)) =
                line.strip_prefix("  ").and_then(|l| l.split_once("   # "))
            {
                commands.insert(what.to_string(), command.to_string());
            }
        }
        Demo {
            child,
            commands,
            _dir: dir,
        }
    }

    /// Runs the printed command whose comment is `what`.
    fn run(&self, what: &str) -> Output {
        let command = self
            .commands
            .get(what)
            .unwrap_or_else(|| panic!("no command for {what:?} in {:?}", self.commands));
        Command::new("timeout")
            .args(["20", "sh", "-c", command])
            .output()
            .unwrap()
    }

    fn stdout(&self, what: &str) -> String {
        let out = self.run(what);
        assert!(out.status.success(), "{what}: {}", text(&out.stderr));
        text(&out.stdout)
    }
}

fn signatures(body: &str) -> u64 {
    body.split("has made ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no signature count in {body:?}"))
}

#[test]
fn every_printed_command_shows_what_it_says_then_sigterm_drains() {
    let demo = Demo::start();
    let body = demo.stdout("exact name");
    assert!(body.contains("Host site000001.demo.test:"), "{body}");
    let body = demo.stdout("one-label wildcard");
    assert!(body.contains("Host api.wild.demo.test:"), "{body}");
    let out = demo.stdout("unknown name: the default certificate");
    assert!(out.contains("CN = default.demo.test"), "{out}");
    let out = demo.stdout("dual name: the RSA chain");
    assert!(out.contains("Server public key is 2048 bit"), "{out}");
    let out = demo.stdout("dual name: the ECDSA chain");
    assert!(out.contains("Server public key is 256 bit"), "{out}");

    // h2 is negotiated on site000001 and that connection goes to the other origin.
    let out = demo.stdout("ALPN h2, routed to the h2 origin");
    assert!(out.contains("ALPN protocol: h2"), "{out}");
    assert!(
        out.contains("origin for h2: received 6 bytes, starting \"hello\""),
        "{out}"
    );

    let out = demo.stdout("ticket resumption");
    assert!(out.contains("Reused, TLSv1.3"), "{out}");

    // The keyless name: each full handshake is one more signature at the key server.
    let first = signatures(&demo.stdout("keyless: signed by the key server"));
    assert!(first >= 1);
    let second = signatures(&demo.stdout("keyless: signed by the key server"));
    assert_eq!(second, first + 1);

    let refused = demo.run("client certificate required: refused");
    assert!(!refused.status.success());
    assert!(text(&refused.stdout).is_empty());
    let body = demo.stdout("client certificate required: served");
    assert!(body.contains("Host site000002.demo.test:"), "{body}");

    let metrics = demo.stdout("metrics");
    let resumed = metrics
        .lines()
        .find(|l| {
            l.starts_with(
                "edgetls_handshakes_total{result=\"ok\",version=\"TLSv1.3\",kind=\"resumed\"}",
            )
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(!resumed.ends_with(" 0"), "{resumed}");
    // With [keyless] every handshake step runs on an OpenSSL ASYNC job: the certificates the
    // first handshakes needed were built (misses), and none of them on the job's stack.
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    assert!(value("edgetls_certificate_cache_lookups_total{result=\"miss\"}") >= 3.0);
    assert_eq!(
        value("edgetls_certificate_cache_built_in_async_job_total"),
        0.0
    );
    // Job stacks are guarded (256 KiB and a guard page; -1 would say not), and the deepest
    // any of these handshakes went stays under half of it.
    let deepest = value("edgetls_async_job_stack_deepest_bytes");
    println!("deepest ASYNC job stack use in the demo: {deepest} bytes");
    if edgetls_tls::library::HAS_ASYNC_JOBS {
        assert!(deepest > 0.0 && deepest < 131_072.0, "{deepest}");
    } else {
        assert_eq!(deepest, 0.0, "no job stacks on AWS-LC");
    }

    // SIGTERM: the demo drains and exits cleanly.
    let mut demo = demo;
    assert!(
        Command::new("kill")
            .args(["-s", "TERM", &demo.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = demo.child.wait().unwrap();
    assert!(status.success(), "{status}");
}
