//! Guarded ASYNC job stacks, in child processes of this test binary (the allocator hooks must
//! be set before OpenSSL's first allocation, and an overflow must be allowed to kill the
//! process): a deliberately deep ClientHello callback on a job faults on the guard page; an
//! ordinary handshake, and one whose callback panics (caught) with `RUST_BACKTRACE=1`, stay
//! well inside the stack.
//!
//! OpenSSL only (AWS-LC has no ASYNC jobs).

#![cfg(not(awslc))]

use openssl::ssl::{
    ClientHelloResponse, SslAcceptor, SslConnector, SslMethod, SslMode, SslStream, SslVerifyMode,
};
use std::net::TcpListener;
use std::process::Command;

/// Which child scenario to run (set by the parent).
const CHILD: &str = "EDGETLS_JOB_STACK_CHILD";
/// OpenSSL's `SSL_MODE_ASYNC`: every handshake step runs on a job.
const SSL_MODE_ASYNC: u64 = 0x100;

/// Recurses `depth` frames of 4 KiB each.
#[inline(never)]
fn deep(depth: usize) -> u8 {
    let frame = std::hint::black_box([depth as u8; 4096]);
    if depth == 0 {
        return frame[17];
    }
    deep(depth - 1).wrapping_add(frame[4095])
}

/// One TLS 1.3 handshake against a server in async mode whose ClientHello callback runs
/// `on_hello` on the job's stack. Returns whether the callback ran on a job.
fn handshake(on_hello: fn()) -> bool {
    let (cert, key) = edgetls_testkit::certs::self_signed("job.test");

    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    b.set_certificate(&cert).unwrap();
    b.set_private_key(&key).unwrap();
    b.set_mode(SslMode::from_bits_retain(SSL_MODE_ASYNC as _));
    let on_job = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = std::sync::Arc::clone(&on_job);
    b.set_client_hello_callback(move |_ssl, _alert| {
        seen.store(
            edgetls_tls::in_async_job(),
            std::sync::atomic::Ordering::Relaxed,
        );
        on_hello();
        Ok(ClientHelloResponse::SUCCESS)
    });
    let acceptor = b.build();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let mut c = SslConnector::builder(SslMethod::tls_client()).unwrap();
        c.set_verify(SslVerifyMode::NONE);
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        let _ = c.build().connect("job.test", tcp);
    });
    let (tcp, _) = listener.accept().unwrap();
    let ssl = openssl::ssl::Ssl::new(acceptor.context()).unwrap();
    let mut tls = SslStream::new(ssl, tcp).unwrap();
    tls.accept().unwrap();
    let _ = tls.shutdown();
    client.join().unwrap();
    on_job.load(std::sync::atomic::Ordering::Relaxed)
}

unsafe extern "C" {
    fn ASYNC_init_thread(max_size: usize, init_size: usize) -> std::ffi::c_int;
}

/// SIGSEGV handler (on its own stack): prints the faulting address, exits with 99. Only
/// async-signal-safe calls: write(2) and _exit(2).
extern "C" fn on_segv(
    _sig: std::ffi::c_int,
    info: *mut libc::siginfo_t,
    _ctx: *mut std::ffi::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo to SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let mut line = *b"fault=0x0000000000000000\n";
    for i in 0..16 {
        line[8 + i] = b"0123456789abcdef"[(addr >> ((15 - i) * 4)) & 0xf];
    }
    // SAFETY: writes a local buffer to stdout, then exits without unwinding.
    unsafe {
        libc::write(1, line.as_ptr().cast(), line.len());
        libc::_exit(99);
    }
}

/// Reports where a SIGSEGV happens (on a guard page, or elsewhere).
fn catch_segv() {
    // SAFETY: an alternate stack of our own for the handler, and a handler that only calls
    // async-signal-safe functions.
    unsafe {
        let size = 256 * 1024;
        let stack = libc::stack_t {
            ss_sp: libc::malloc(size),
            ss_flags: 0,
            ss_size: size,
        };
        assert_eq!(libc::sigaltstack(&stack, std::ptr::null_mut()), 0);
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_segv as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        assert_eq!(
            libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut()),
            0
        );
    }
}

fn child(scenario: &str) {
    // First: OpenSSL must not have allocated yet (3.0/3.1 take the hooks only then).
    assert!(
        edgetls_tls::job_stack::install_with_libc(),
        "job stacks not guarded"
    );
    println!("guarded");
    match scenario {
        "overflow" => {
            // The thread's job (and its stack) made now, so its guard page is known.
            // SAFETY: plain call; one job at most, made at once.
            assert_eq!(unsafe { ASYNC_init_thread(1, 1) }, 1);
            for (start, end) in edgetls_tls::job_stack::guard_pages() {
                println!("guard={start:x}-{end:x}");
            }
            catch_segv();
            // 128 frames of 4 KiB: twice the guarded stack.
            handshake(|| {
                std::hint::black_box(deep(128));
            });
            println!("survived");
        }
        "measure" => {
            let on_job = handshake(|| {});
            let plain = edgetls_tls::job_stack::deepest_use().unwrap();
            let on_panic = handshake(|| {
                let _ = std::panic::catch_unwind(|| panic!("a panic on the job's stack"));
            });
            let panicked = edgetls_tls::job_stack::deepest_use().unwrap();
            println!("on_job={on_job} {on_panic} deepest={plain} with_panic={panicked}");
        }
        other => panic!("unknown scenario {other}"),
    }
}

fn run_child(scenario: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "--nocapture", "--test-threads=1"])
        .arg(format!("job_stack_{scenario}"))
        .env(CHILD, scenario)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap()
}

#[test]
fn job_stack_overflow() {
    if let Ok(s) = std::env::var(CHILD) {
        return child(&s);
    }
    let out = run_child("overflow");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("guarded"), "{stdout}");
    assert!(!stdout.contains("survived"), "{stdout}");
    assert_eq!(
        out.status.code(),
        Some(99),
        "no SIGSEGV: {:?}\n{stdout}\n{stderr}",
        out.status
    );
    let hex = |v: &str| usize::from_str_radix(v, 16).unwrap();
    let fault = stdout
        .lines()
        .find_map(|l| l.strip_prefix("fault=0x"))
        .map(hex)
        .unwrap_or_else(|| panic!("{stdout}"));
    let guards: Vec<(usize, usize)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("guard="))
        .map(|r| {
            let (a, b) = r.split_once('-').unwrap();
            (hex(a), hex(b))
        })
        .collect();
    assert!(
        guards.iter().any(|&(a, b)| (a..b).contains(&fault)),
        "a stack overflow in a job must fault on its guard page: fault at {fault:x}, guards \
         {guards:x?}\n{stdout}\n{stderr}"
    );
}

#[test]
fn job_stack_measure() {
    if let Ok(s) = std::env::var(CHILD) {
        return child(&s);
    }
    let out = run_child("measure");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("on_job="))
        .unwrap_or_else(|| panic!("{stdout}"));
    println!("{line} (of {} bytes)", edgetls_tls::job_stack::STACK_BYTES);
    assert!(
        line.starts_with("on_job=true true "),
        "the callbacks ran on a job: {line}"
    );
    let number = |key: &str| -> usize {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {line}"))
    };
    let (plain, panicked) = (number("deepest="), number("with_panic="));
    assert!(
        plain > 1024,
        "a handshake step uses the job's stack: {line}"
    );
    assert!(panicked >= plain, "{line}");
    assert!(
        panicked < edgetls_tls::job_stack::STACK_BYTES / 2,
        "deepest use must stay below half the stack: {line}"
    );
}
