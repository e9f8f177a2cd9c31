//! One order, start to finish: authorizations proven by the configured challenge, a fresh key
//! and CSR, the certificate downloaded and stored with its key.
//!
//! Crash safety: the key is generated and written (0600, with the order's URL) to
//! `orders/<name>.json` before the order is finalized; the bundle is written atomically before
//! that file is removed. Whatever the moment of a crash, the next attempt either finds the
//! order and downloads its certificate for the stored key, or finds no order and starts anew —
//! no issued certificate is stranded without its key, and no file is half-written.

use crate::challenges::{AlpnAnswer, Challenges};
use crate::config::{AcmeConfig, Challenge, KeyType};
use crate::error::AcmeError;
use crate::storage::{bundle_path, write_atomically};
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, Order, OrderStatus,
    RetryPolicy,
};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::X509ReqBuilder;
use openssl::x509::extension::SubjectAlternativeName;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::Command;

/// An order in flight, kept on disk between finalization and the stored bundle.
#[derive(Serialize, Deserialize)]
struct Pending {
    url: String,
    names: Vec<String>,
    key_pem: String,
}

fn pending_path(config: &AcmeConfig, names: &[String]) -> PathBuf {
    let bundle = bundle_path(&config.storage, names);
    let file = bundle.file_name().map(|f| f.to_string_lossy().into_owned());
    config
        .storage
        .join("orders")
        .join(format!("{}.json", file.unwrap_or_default()))
}

fn new_key(kind: KeyType) -> Result<PKey<Private>, AcmeError> {
    let c = AcmeError::crypto;
    match kind {
        KeyType::EcdsaP256 => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(c("P-256"))?;
            PKey::from_ec_key(EcKey::generate(&group).map_err(c("P-256 key"))?)
                .map_err(c("P-256 key"))
        }
        KeyType::Rsa2048 => {
            PKey::from_rsa(Rsa::generate(2048).map_err(c("RSA key"))?).map_err(c("RSA key"))
        }
    }
}

fn csr(key: &PKey<Private>, names: &[String]) -> Result<Vec<u8>, AcmeError> {
    let c = AcmeError::crypto;
    let mut b = X509ReqBuilder::new().map_err(c("CSR"))?;
    b.set_pubkey(key).map_err(c("CSR"))?;
    let mut san = SubjectAlternativeName::new();
    for n in names {
        san.dns(n);
    }
    let mut exts = Stack::new().map_err(c("CSR"))?;
    exts.push(san.build(&b.x509v3_context(None)).map_err(c("CSR SAN"))?)
        .map_err(c("CSR"))?;
    b.add_extensions(&exts).map_err(c("CSR"))?;
    b.sign(key, MessageDigest::sha256()).map_err(c("CSR"))?;
    b.build().to_der().map_err(c("CSR"))
}

/// Withdraws what an order published, however the order ends.
struct Published<'a> {
    challenges: &'a Challenges,
    alpn: Vec<String>,
    http: Vec<String>,
    dns: Vec<(PathBuf, String, String)>,
}

impl Drop for Published<'_> {
    fn drop(&mut self) {
        for n in &self.alpn {
            self.challenges.withdraw_alpn(n);
        }
        for t in &self.http {
            self.challenges.withdraw_http(t);
        }
        for (hook, name, value) in self.dns.drain(..) {
            // Best effort and detached: a record left behind is harmless, a hook that hangs
            // must not hold the order.
            let _ = std::process::Command::new(&hook)
                .args(["clear", &name, &value])
                .spawn();
        }
    }
}

async fn run_hook(hook: &Path, args: &[&str]) -> Result<(), AcmeError> {
    let fail = |what: String| AcmeError::Hook {
        hook: hook.display().to_string(),
        what,
    };
    let run = Command::new(hook).args(args).kill_on_drop(true).output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .map_err(|_| fail("no answer in 60 s".into()))?
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(fail(format!("{}: {}", out.status, err.trim())));
    }
    Ok(())
}

fn ca_error(config: &AcmeConfig) -> impl Fn(instant_acme::Error) -> AcmeError + '_ {
    |source| AcmeError::Ca {
        directory: config.directory.clone(),
        source,
    }
}

/// Proves every pending authorization of `order` with the configured challenge.
async fn prove(
    config: &AcmeConfig,
    order: &mut Order,
    published: &mut Published<'_>,
) -> Result<(), AcmeError> {
    let ca = ca_error(config);
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(&ca)?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => {
                return Err(AcmeError::Order {
                    names: authz.identifier().to_string(),
                    what: format!("authorization is {other:?}"),
                });
            }
        }
        let ty = match &config.challenge {
            Challenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
            Challenge::Http01 => ChallengeType::Http01,
            Challenge::Dns01 { .. } => ChallengeType::Dns01,
        };
        let name = authz.identifier().to_string();
        let Some(mut challenge) = authz.challenge(ty.clone()) else {
            return Err(AcmeError::Order {
                names: name,
                what: format!("the CA offers no {ty:?} challenge"),
            });
        };
        let ka = challenge.key_authorization();
        match &config.challenge {
            Challenge::TlsAlpn01 => {
                let answer = AlpnAnswer::new(&name, ka.digest().as_ref())?;
                published.challenges.publish_alpn(&name, answer);
                published.alpn.push(name.clone());
            }
            Challenge::Http01 => {
                published
                    .challenges
                    .publish_http(&challenge.token, ka.as_str());
                published.http.push(challenge.token.clone());
            }
            Challenge::Dns01 { hook } => {
                let bare = name.strip_prefix("*.").unwrap_or(&name);
                let record = format!("_acme-challenge.{bare}");
                let value = ka.dns_value();
                run_hook(hook, &["set", &record, &value]).await?;
                published.dns.push((hook.clone(), record, value));
            }
        }
        challenge.set_ready().await.map_err(&ca)?;
    }
    Ok(())
}

/// Why an order went invalid: the problem documents of its failed challenges.
async fn why_invalid(order: &mut Order) -> String {
    let mut why = Vec::new();
    if let Some(p) = &order.state().error {
        why.push(p.to_string());
    }
    let mut authorizations = order.authorizations();
    while let Some(Ok(authz)) = authorizations.next().await {
        for c in &authz.challenges {
            if let Some(p) = &c.error {
                why.push(format!("{}: {p}", authz.identifier()));
            }
        }
    }
    if why.is_empty() {
        "the order became invalid".into()
    } else {
        why.join("; ")
    }
}

/// Obtains a certificate for `names` and stores it; returns the bundle's path. A CA's problem
/// document is reported with the names it was about.
///
/// `replaces`: the ARI identifier of the certificate this one renews (RFC 9773 §5), sent when
/// the CA offers ARI; a CA that answers `alreadyReplaced` gets the order again without it.
pub(crate) async fn issue(
    account: &Account,
    config: &AcmeConfig,
    challenges: &Challenges,
    names: &[String],
    replaces: Option<&str>,
) -> Result<PathBuf, AcmeError> {
    issue_inner(account, config, challenges, names, replaces)
        .await
        .map_err(|e| match e {
            AcmeError::Ca {
                source: instant_acme::Error::Api(ref problem),
                ..
            } if is_problem(problem, "rateLimited") => {
                let detail = problem.detail.clone().unwrap_or_default();
                AcmeError::RateLimited {
                    names: names.join(","),
                    until: retry_after_in(&detail),
                    detail,
                }
            }
            AcmeError::Ca { .. } => AcmeError::Order {
                names: names.join(","),
                what: e.to_string(),
            },
            other => other,
        })
}

/// Whether `problem` is the ACME error `kind` (`urn:ietf:params:acme:error:KIND`).
fn is_problem(problem: &instant_acme::Problem, kind: &str) -> bool {
    problem
        .r#type
        .as_deref()
        .and_then(|t| t.strip_prefix("urn:ietf:params:acme:error:"))
        == Some(kind)
}

/// The moment in a rate-limit problem's detail, as Let's Encrypt writes it: "… retry after
/// 2026-12-08 01:02:03 UTC: see …". (A `Retry-After` header on an error answer is not passed
/// on by the ACME client library; the detail is what remains.)
fn retry_after_in(detail: &str) -> Option<std::time::SystemTime> {
    let at = detail.split("retry after ").nth(1)?;
    let stamp = at.get(..23)?.strip_suffix(" UTC")?;
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    if digits.len() != 14 {
        return None;
    }
    let t = openssl::asn1::Asn1Time::from_str(&format!("{digits}Z")).ok()?;
    let d = openssl::asn1::Asn1Time::from_unix(0).ok()?.diff(&t).ok()?;
    let secs = u64::try_from(i64::from(d.days) * 86_400 + i64::from(d.secs)).ok()?;
    Some(std::time::UNIX_EPOCH + Duration::from_secs(secs))
}

async fn issue_inner(
    account: &Account,
    config: &AcmeConfig,
    challenges: &Challenges,
    names: &[String],
    replaces: Option<&str>,
) -> Result<PathBuf, AcmeError> {
    let ca = ca_error(config);
    let label = names.join(",");
    let order_error = |what: String| AcmeError::Order {
        names: label.clone(),
        what,
    };
    let pending_file = pending_path(config, names);
    let retries = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .backoff(1.5)
        .timeout(config.order_timeout);

    // An order finalized before a crash: download its certificate for the stored key (unless
    // it was stored already, and only the order file was left).
    if let Some(pending) = read_pending(&pending_file)?
        .filter(|p| !stored_with_key(&bundle_path(&config.storage, names), &p.key_pem))
    {
        match resume(account, &pending, &retries).await {
            Ok(Some(chain)) => {
                return store(config, names, &chain, &pending.key_pem, &pending_file);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::info!(names = %label, "a stored order cannot be resumed ({e}); ordering anew")
            }
        }
        let _ = std::fs::remove_file(&pending_file);
    }

    let identifiers: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
    let replaced = replaces.and_then(crate::ari::certificate_id);
    let mut order = match replaced {
        Some(id) => match account
            .new_order(&NewOrder::new(&identifiers).replaces(id))
            .await
        {
            Err(instant_acme::Error::Api(p)) if is_problem(&p, "alreadyReplaced") => {
                tracing::info!(names = %label, "the CA says the certificate was already replaced; ordering without `replaces`");
                account.new_order(&NewOrder::new(&identifiers)).await
            }
            // The directory has no renewalInfo (known before anything is sent).
            Err(instant_acme::Error::Unsupported(_)) => {
                account.new_order(&NewOrder::new(&identifiers)).await
            }
            other => other,
        },
        None => account.new_order(&NewOrder::new(&identifiers)).await,
    }
    .map_err(&ca)?;
    let mut published = Published {
        challenges,
        alpn: Vec::new(),
        http: Vec::new(),
        dns: Vec::new(),
    };
    if order.state().status == OrderStatus::Pending {
        prove(config, &mut order, &mut published).await?;
    }
    let status = order.poll_ready(&retries).await.map_err(&ca)?;
    drop(published);
    if status != OrderStatus::Ready {
        let why = why_invalid(&mut order).await;
        return Err(order_error(format!("{status:?}: {why}")));
    }
    let key = new_key(config.key_type)?;
    let key_pem = String::from_utf8(
        key.private_key_to_pem_pkcs8()
            .map_err(AcmeError::crypto("key PEM"))?,
    )
    .unwrap_or_default();
    let pending = Pending {
        url: order.url().to_owned(),
        names: names.to_vec(),
        key_pem,
    };
    write_pending(&pending_file, &pending)?;
    order.finalize_csr(&csr(&key, names)?).await.map_err(&ca)?;
    let chain = order.poll_certificate(&retries).await.map_err(&ca)?;
    let replaced = stored_leaf(&bundle_path(&config.storage, names));
    let path = store(config, names, &chain, &pending.key_pem, &pending_file)?;
    if config.revoke_replaced {
        if let Some(old) = replaced {
            revoke(account, &old, names).await;
        }
    }
    Ok(path)
}

/// The leaf (DER) of the bundle at `path`, if there is one.
fn stored_leaf(path: &Path) -> Option<Vec<u8>> {
    let body = std::fs::read(path).ok()?;
    openssl::x509::X509::from_pem(&body).ok()?.to_der().ok()
}

/// Revokes `leaf` as superseded; a failure is logged, not the order's (its successor is stored).
async fn revoke(account: &Account, leaf: &[u8], names: &[String]) {
    let der = rustls_pki_types::CertificateDer::from(leaf.to_vec());
    let request = instant_acme::RevocationRequest {
        certificate: &der,
        reason: Some(instant_acme::RevocationReason::Superseded),
    };
    match account.revoke(&request).await {
        Ok(()) => {
            tracing::info!(names = %names.join(","), "the replaced certificate is revoked (superseded)")
        }
        Err(e) => {
            tracing::warn!(names = %names.join(","), "revoking the replaced certificate: {e}")
        }
    }
}

/// Removes pending orders whose bundle is already stored with their key (a crash between the
/// bundle's rename and the order file's removal), and temporary files a crash left in
/// `orders/`. Resuming such an order would store its certificate again instead of renewing.
pub(crate) fn sweep_pending(config: &AcmeConfig) {
    let dir = config.storage.join("orders");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".tmp-") {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        let Ok(Some(pending)) = read_pending(&path) else {
            continue;
        };
        if stored_with_key(
            &bundle_path(&config.storage, &pending.names),
            &pending.key_pem,
        ) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Whether the bundle at `bundle` holds the private key `key_pem`.
fn stored_with_key(bundle: &Path, key_pem: &str) -> bool {
    let (Ok(body), Ok(key)) = (
        std::fs::read(bundle),
        PKey::private_key_from_pem(key_pem.as_bytes()),
    ) else {
        return false;
    };
    PKey::private_key_from_pem(&body).is_ok_and(|k| k.public_eq(&key))
}

fn read_pending(path: &Path) -> Result<Option<Pending>, AcmeError> {
    match std::fs::read(path) {
        Ok(body) => Ok(serde_json::from_slice(&body).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AcmeError::io(path)(e)),
    }
}

fn write_pending(path: &Path, pending: &Pending) -> Result<(), AcmeError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(AcmeError::io(dir))?;
    }
    let body = serde_json::to_vec(pending).map_err(|e| AcmeError::Stored {
        path: path.to_path_buf(),
        what: e.to_string(),
    })?;
    write_atomically(path, &body)
}

/// The certificate of a stored order, if the CA has it (`None`: the order cannot complete).
async fn resume(
    account: &Account,
    pending: &Pending,
    retries: &RetryPolicy,
) -> Result<Option<String>, instant_acme::Error> {
    let mut order = account.order(pending.url.clone()).await?;
    match order.state().status {
        OrderStatus::Valid | OrderStatus::Processing => {
            order.poll_certificate(retries).await.map(Some)
        }
        OrderStatus::Ready => {
            let key = PKey::private_key_from_pem(pending.key_pem.as_bytes())
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let der =
                csr(&key, &pending.names).map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            order.finalize_csr(&der).await?;
            order.poll_certificate(retries).await.map(Some)
        }
        _ => Ok(None),
    }
}

/// Writes the bundle (chain, then key) atomically, then forgets the pending order.
fn store(
    config: &AcmeConfig,
    names: &[String],
    chain: &str,
    key_pem: &str,
    pending_file: &Path,
) -> Result<PathBuf, AcmeError> {
    let path = bundle_path(&config.storage, names);
    let mut body = chain.trim_end().to_owned();
    body.push('\n');
    body.push_str(key_pem);
    write_atomically(&path, body.as_bytes())?;
    let _ = std::fs::remove_file(pending_file);
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_moment_is_read_from_a_lets_encrypt_rate_limit_detail() {
        let detail = "too many certificates (5) already issued for this exact set of \
                      identifiers in the last 168h0m0s, retry after 2026-12-08 01:02:03 UTC: \
                      see https://letsencrypt.org/docs/rate-limits/";
        let at = retry_after_in(detail).unwrap();
        // 2026-12-08T01:02:03Z
        assert_eq!(
            at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            1_796_691_723
        );
        assert_eq!(retry_after_in("too many new orders recently"), None);
        assert_eq!(retry_after_in("retry after soon UTC"), None);
    }

    #[test]
    fn an_order_file_left_beside_its_stored_bundle_is_swept_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = AcmeConfig::new("https://ca.test/dir", dir.path());
        config.names = vec![vec!["a.test".into()], vec!["b.test".into()]];
        let key = new_key(KeyType::EcdsaP256).unwrap();
        let key_pem = String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        // a.test: stored with the order's key (crash after the rename); b.test: not stored.
        let a = vec!["a.test".to_string()];
        let b = vec!["b.test".to_string()];
        std::fs::write(bundle_path(dir.path(), &a), &key_pem).unwrap();
        for names in [&a, &b] {
            let pending = Pending {
                url: "https://ca.test/order/1".into(),
                names: names.clone(),
                key_pem: key_pem.clone(),
            };
            write_pending(&pending_path(&config, names), &pending).unwrap();
        }
        std::fs::write(dir.path().join("orders/.x.json.tmp-1"), b"half").unwrap();
        sweep_pending(&config);
        assert!(!pending_path(&config, &a).exists(), "stored: swept");
        assert!(
            pending_path(&config, &b).exists(),
            "not stored: kept for resuming"
        );
        assert!(!dir.path().join("orders/.x.json.tmp-1").exists());
    }
}
