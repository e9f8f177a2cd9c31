//! `cargo xtask bench --suite hsm`: an ECDSA P-256 key in a SoftHSM2 token, signing through the
//! key server (`--pkcs11`), beside SoftHSM's own rate (the same `C_Sign` in a loop, one session
//! per thread, as many threads as the key server has workers) and the same key from a file,
//! alternating within each round; then the token pulled out under load and put back.

use crate::bench_keyless::{
    build_keyserver, client, median, start_keyserver, start_keyserver_cmd, throughput,
};
use anyhow::{Context, Result, bail};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use edgetls_keyless_client::KeylessClient;
use edgetls_keyless_proto::{Opcode, Operation};
use edgetls_testkit::softhsm::{MODULE, PIN, SoftHsm};
use edgetls_testkit::{setup, ski};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const THREADS: usize = 2;
const ROUNDS: usize = 5;

/// `cargo xtask hsm-rate` (run by the suite with the token's `SOFTHSM2_CONF`): signatures per
/// second of SoftHSM itself, `threads` sessions signing a SHA-256 digest with `CKM_ECDSA`.
pub(crate) fn own_rate(token: &str, object: &str, threads: usize, seconds: f64) -> Result<()> {
    let ctx = Pkcs11::new(MODULE)?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let slot = ctx
        .get_slots_with_token()?
        .into_iter()
        .find(|s| ctx.get_token_info(*s).is_ok_and(|t| t.label() == token))
        .context("token not found")?;
    let login = ctx.open_ro_session(slot)?;
    login.login(UserType::User, Some(&AuthPin::from(PIN.to_string())))?;
    let key = *login
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(object.as_bytes().to_vec()),
        ])?
        .first()
        .context("key not found")?;
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let signed: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let ctx = &ctx;
                scope.spawn(move || -> Result<u64> {
                    let s = ctx.open_ro_session(slot)?;
                    let mut n = 0;
                    while Instant::now() < until {
                        s.sign(&Mechanism::Ecdsa, key, &[7; 32])?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("signing thread"))
            .sum::<Result<u64>>()
    })?;
    println!("{}", signed as f64 / started.elapsed().as_secs_f64());
    Ok(())
}

fn softhsm_rate(hsm: &SoftHsm, threads: usize, seconds: f64) -> Result<f64> {
    let out = hsm
        .command(std::env::current_exe()?.to_str().context("xtask path")?)
        .args(["hsm-rate", "--token", &hsm.label, "--object", "p256"])
        .args([
            "--threads",
            &threads.to_string(),
            "--seconds",
            &seconds.to_string(),
        ])
        .output()?;
    if !out.status.success() {
        bail!("hsm-rate: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

pub(crate) fn run(root: &Path, report: &mut String) -> Result<()> {
    let bin = build_keyserver(root)?;
    let (pki, keys) = setup();
    let hsm = SoftHsm::new("bench");
    hsm.import(&keys.p256, "p256", 1);
    // All with the bench's `--workers 2` (= THREADS).
    let file_ks = start_keyserver(&bin, &pki, &[])?;
    let token = |extra: &[&str]| {
        let mut cmd = hsm.command(bin.to_str().context("path")?);
        cmd.args(["--pkcs11", &hsm.uri()]).args(extra);
        start_keyserver_cmd(cmd, &pki, &[])
    };
    let (workers_ks, threads_ks) = (token(&[])?, token(&["--pkcs11-threads", "2"])?);
    let file_c = client(&pki, &file_ks.addr, 2)?;
    let workers_c = client(&pki, &workers_ks.addr, 2)?;
    let threads_c = client(&pki, &threads_ks.addr, 2)?;
    let op = Operation::request(Opcode::ECDSA_SIGN_SHA256, ski(&keys.p256), vec![7; 32]);

    let _ = writeln!(
        report,
        "## Keys in a PKCS#11 token (`cargo xtask bench --suite hsm`)\n\n\
         ECDSA P-256 signatures per second, SoftHSM {} on this machine's 2 cores, {ROUNDS} rounds, \
         all measured in turn within each round (order reversed every other round). \
         SoftHSM's own: `C_Sign` (`CKM_ECDSA`) in a loop on 1 and on {THREADS} threads, a session \
         each; the better of the two is the reference. Key servers: `--workers {THREADS}`, loaded \
         by the keyless client on the same machine (2 connections, 512 requests outstanding); \
         the token's operations on the workers (the default for a software token) or on \
         {THREADS} threads of the token's own (`--pkcs11-threads {THREADS}`, the default for a \
         hardware slot); and the same key from a file (`--keys`).\n\n\
         | round | SoftHSM's own, 1 thread | {THREADS} threads | key server, token on the workers (default) | ratio to SoftHSM's better | key server, token on its own threads | ratio | same key from a file |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|",
        softhsm_version()
    );
    let mut rows: Vec<[f64; 5]> = Vec::new();
    for round in 1..=ROUNDS {
        let mut r = [0.0; 5];
        let steps: [usize; 4] = if round % 2 == 1 {
            [0, 1, 2, 3]
        } else {
            [3, 2, 1, 0]
        };
        for step in steps {
            match step {
                0 => {
                    r[0] = softhsm_rate(&hsm, 1, 2.0)?;
                    r[1] = softhsm_rate(&hsm, THREADS, 2.0)?;
                }
                1 => r[2] = throughput(&workers_c, op.clone(), 512, 3.0)?,
                2 => r[3] = throughput(&threads_c, op.clone(), 512, 3.0)?,
                _ => r[4] = throughput(&file_c, op.clone(), 512, 3.0)?,
            }
        }
        let own = r[0].max(r[1]);
        let _ = writeln!(
            report,
            "| {round} | {:.0}/s | {:.0}/s | {:.0}/s | {:.1}% | {:.0}/s | {:.1}% | {:.0}/s |",
            r[0],
            r[1],
            r[2],
            100.0 * r[2] / own,
            r[3],
            100.0 * r[3] / own,
            r[4]
        );
        rows.push(r);
    }
    let col = |i: usize| median(rows.iter().map(|r| r[i]).collect());
    let ratio = |i: usize| 100.0 * median(rows.iter().map(|r| r[i] / r[0].max(r[1])).collect());
    let _ = writeln!(
        report,
        "| **median** | {:.0}/s | {:.0}/s | {:.0}/s | **{:.1}%** (target ≥ 70%) | {:.0}/s | {:.1}% | {:.0}/s |",
        col(0),
        col(1),
        col(2),
        ratio(2),
        col(3),
        ratio(3),
        col(4)
    );
    let _ = writeln!(report, "\nRatios are medians of the per-round ratios.");
    let _ = writeln!(
        report,
        "\nToken pulled out under load (64 requests outstanding; the SoftHSM token directory moved \
         away for 2 s, then back; the key servers not restarted):\n\n\
         | key server | answers while out | of them errors | slowest answer of the run | signing again after the token was back | errors after that |\n\
         |---|---:|---:|---:|---:|---:|"
    );
    pull_out(&hsm, "token on the workers", &workers_c, &op, report)?;
    pull_out(&hsm, "token on its own threads", &threads_c, &op, report)
}

fn softhsm_version() -> String {
    std::process::Command::new("softhsm2-util")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// One answer under load: when it was asked, how long it took, whether it was signed.
type Answer = (Instant, Duration, bool);

/// 64 requests kept outstanding; the token's directory moved away for 2 s and back.
fn pull_out(
    hsm: &SoftHsm,
    label: &str,
    c: &Arc<KeylessClient>,
    op: &Operation,
    report: &mut String,
) -> Result<()> {
    let log: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    fn kick(
        c: Arc<KeylessClient>,
        op: Operation,
        log: Arc<Mutex<Vec<Answer>>>,
        running: Arc<std::sync::atomic::AtomicBool>,
    ) {
        let (c2, op2, asked) = (Arc::clone(&c), op.clone(), Instant::now());
        c.submit(op, move |r| {
            let signed = r.is_ok();
            log.lock().unwrap().push((asked, asked.elapsed(), signed));
            if running.load(std::sync::atomic::Ordering::Relaxed) {
                // Failures come back at once: pace the retries a little.
                if !signed {
                    std::thread::sleep(Duration::from_millis(1));
                }
                kick(c2, op2, log, running);
            }
        });
    }
    for _ in 0..64 {
        kick(
            Arc::clone(c),
            op.clone(),
            Arc::clone(&log),
            Arc::clone(&running),
        );
    }
    std::thread::sleep(Duration::from_secs(1));
    let (token, away) = (hsm.token_dir(), hsm.dir.path().join("away"));
    let pulled = Instant::now();
    std::fs::rename(&token, &away)?;
    std::thread::sleep(Duration::from_secs(2));
    std::fs::rename(&away, &token)?;
    let back = Instant::now();
    std::thread::sleep(Duration::from_secs(6));
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    let log = log.lock().unwrap();
    let out: Vec<&Answer> = log.iter().filter(|a| a.0 >= pulled && a.0 < back).collect();
    let failed = out.iter().filter(|a| !a.2).count();
    let recovered = log
        .iter()
        .filter(|a| a.0 >= back && a.2)
        .map(|a| (a.0 + a.1).duration_since(back))
        .min();
    let slowest = log.iter().map(|a| a.1).max().unwrap_or_default();
    let after_fail = log
        .iter()
        .filter(|a| recovered.is_some_and(|r| a.0 > back + r) && !a.2)
        .count();
    let _ = writeln!(
        report,
        "| {label} | {} | {failed} | {:.1} ms | {} | {after_fail} |",
        out.len(),
        slowest.as_secs_f64() * 1e3,
        recovered.map_or("never".into(), |r| format!(
            "{:.0} ms (target ≤ 5 s)",
            r.as_secs_f64() * 1e3
        )),
    );
    Ok(())
}
