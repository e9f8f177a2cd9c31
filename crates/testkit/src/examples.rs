//! Running a crate's `examples/` programs from its tests, as a user would run them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};

/// The binary of example `name` of the package under test. `cargo test` builds a package's
/// examples next to its test binaries (`target/<profile>/examples/`) before running them.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let path = profile.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: run the tests with `cargo test` (which builds the examples) or \
         `cargo build --examples` first",
        path.display()
    );
    path
}

/// Runs example `name` to the end; panics with its output if it fails.
pub fn run_example(name: &str, args: &[&std::ffi::OsStr]) -> Output {
    let out = Command::new(example(name))
        .args(args)
        .output()
        .expect("the example runs");
    assert!(
        out.status.success(),
        "example {name} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// An example that serves: started, and read up to the `listening on ADDR` line it prints.
/// Its standard input stays open until [`ServingExample::finish`]; killed when dropped.
pub struct ServingExample {
    /// The address it printed.
    pub addr: std::net::SocketAddr,
    /// The rest of its standard output, line by line.
    pub stdout: std::io::Lines<BufReader<ChildStdout>>,
    stdin: Option<ChildStdin>,
    child: Child,
}

impl ServingExample {
    /// Starts example `name` with `args`.
    pub fn start(name: &str, args: &[&std::ffi::OsStr]) -> ServingExample {
        let mut child = Command::new(example(name))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the example starts");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let addr = loop {
            match stdout.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        break addr.trim().parse().expect("an address");
                    }
                }
                other => {
                    let status = child.wait();
                    panic!("example {name} ended before listening: {other:?}, {status:?}")
                }
            }
        };
        ServingExample {
            addr,
            stdout,
            stdin,
            child,
        }
    }

    /// The next line it prints.
    pub fn next_line(&mut self) -> String {
        self.stdout
            .next()
            .expect("a line")
            .expect("readable output")
    }
}

impl ServingExample {
    /// Closes its standard input and waits for it to exit; returns the rest of its output and
    /// whether it exited with success.
    pub fn finish(mut self) -> (Vec<String>, bool) {
        drop(self.stdin.take());
        let rest = self.stdout.by_ref().map_while(Result::ok).collect();
        let ok = self.child.wait().is_ok_and(|s| s.success());
        (rest, ok)
    }
}

impl Drop for ServingExample {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
