//! The ACME account: created once on the CA, its credentials kept in `account.json` (0600) in
//! the storage directory, reused on every later start. The file records the directory it
//! belongs to: an account for another CA is not reused (a new one is made, the old file kept
//! as `account.json.<n>.old`).

use crate::config::AcmeConfig;
use crate::error::AcmeError;
use crate::storage::write_atomically;
use instant_acme::{Account, AccountBuilder, AccountCredentials, ExternalAccountKey, NewAccount};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Serialize, Deserialize)]
struct Stored {
    directory: String,
    credentials: AccountCredentials,
}

fn builder(config: &AcmeConfig) -> Result<AccountBuilder, AcmeError> {
    let built = match &config.ca_bundle {
        Some(pem) => Account::builder_with_root(pem),
        None => Account::builder(),
    };
    built.map_err(|source| AcmeError::Ca {
        directory: config.directory.clone(),
        source,
    })
}

/// The account file's path.
pub fn account_path(config: &AcmeConfig) -> PathBuf {
    config.storage.join("account.json")
}

/// The account for `config.directory`: the stored one, or a new one (registered with the
/// contacts, the terms agreed, and external account binding when configured).
pub(crate) async fn open(config: &AcmeConfig) -> Result<Account, AcmeError> {
    let path = account_path(config);
    let ca = |source| AcmeError::Ca {
        directory: config.directory.clone(),
        source,
    };
    match std::fs::read(&path) {
        Ok(body) => {
            let stored: Stored = serde_json::from_slice(&body).map_err(|e| AcmeError::Stored {
                path: path.clone(),
                what: format!("not an account file: {e}"),
            })?;
            if stored.directory == config.directory {
                return builder(config)?
                    .from_credentials(stored.credentials)
                    .await
                    .map_err(ca);
            }
            let old = (1..)
                .map(|n| path.with_extension(format!("json.{n}.old")))
                .find(|p| !p.exists())
                .unwrap_or_else(|| path.with_extension("json.old"));
            tracing::warn!(
                account = %path.display(),
                was = %stored.directory,
                now = %config.directory,
                "the stored ACME account belongs to another directory; a new one is made and the old file kept as {}",
                old.display()
            );
            std::fs::rename(&path, &old).map_err(AcmeError::io(&path))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(AcmeError::io(&path)(e)),
    }
    let contact: Vec<&str> = config.contact.iter().map(String::as_str).collect();
    let eab = config
        .eab
        .as_ref()
        .map(|(id, key)| ExternalAccountKey::new(id.clone(), key));
    let (account, credentials) = builder(config)?
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            config.directory.clone(),
            eab.as_ref(),
        )
        .await
        .map_err(ca)?;
    let stored = Stored {
        directory: config.directory.clone(),
        credentials,
    };
    let body = serde_json::to_vec_pretty(&stored).map_err(|e| AcmeError::Stored {
        path: path.clone(),
        what: format!("cannot encode the account: {e}"),
    })?;
    write_atomically(&path, &body)?;
    tracing::info!(account = account.id(), file = %path.display(), "ACME account created");
    Ok(account)
}
