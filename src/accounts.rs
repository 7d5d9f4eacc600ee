//! Accounts and their AccessKeys: what `gatehouse accounts`/`keys` and first start manage.

use rand::Rng;

use crate::api::error::{ApiError, ApiResult};
use crate::secret::{MasterKey, Secret};
use crate::store::{now_ms, AccessKeyRow, Account, Store};

pub const ROOT_ACCOUNT: &str = "root";
pub const ROOT_KEY_ID_ENV: &str = "GATEHOUSE_ROOT_ACCESS_KEY_ID";
pub const ROOT_KEY_SECRET_ENV: &str = "GATEHOUSE_ROOT_ACCESS_KEY_SECRET";

fn random_alnum(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..n).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

/// A fresh AccessKey pair in Alibaba's shape (`LTAI` + 20, secret of 30).
pub fn new_key_pair() -> (String, Secret) {
    (format!("LTAI{}", random_alnum(20)), Secret::new(random_alnum(30)))
}

pub async fn create_account(store: &dyn Store, name: &str) -> ApiResult<Account> {
    let valid =
        !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    if !valid {
        return Err(ApiError::invalid_parameter("AccountName", "use 1-64 letters, digits, '-', '_', '.', '@'"));
    }
    let name = name.to_string();
    store
        .write(move |tx| {
            if tx.account_by_name(&name)?.is_some() {
                return Err(ApiError::bad_request("Account.AlreadyExists", format!("account {name} already exists")));
            }
            tx.create_account(&name, now_ms())
        })
        .await
}

/// Adds a key to `account` (a new random pair unless `pair` is given).
pub async fn create_key(
    store: &dyn Store,
    master: &MasterKey,
    account: &str,
    pair: Option<(String, Secret)>,
) -> ApiResult<(String, Secret)> {
    let (id, secret) = pair.unwrap_or_else(new_key_pair);
    let sealed = master.seal(&secret);
    let (account, key_id) = (account.to_string(), id.clone());
    store
        .write(move |tx| {
            let acct = tx
                .account_by_name(&account)?
                .ok_or_else(|| ApiError::not_found("Account.NotFound", format!("account {account} does not exist")))?;
            if tx.key(&key_id)?.is_some() {
                return Err(ApiError::bad_request(
                    "AccessKey.AlreadyExists",
                    format!("access key {key_id} already exists"),
                ));
            }
            tx.insert_key(&AccessKeyRow {
                id: key_id,
                account_id: acct.id,
                account_name: acct.name,
                sealed_secret: sealed,
                enabled: true,
                created_ms: now_ms(),
            })
        })
        .await?;
    Ok((id, secret))
}

/// Refuses a master key that does not open the secrets already stored: another data
/// directory's key, or a `GATEHOUSE_MASTER_KEY` that is not this data's. Starting with it would
/// fail every signed request and seal new secrets that the right key cannot open.
pub fn check_master_key(store: &dyn Store, master: &MasterKey, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let keys = store.read(|tx| tx.keys())?;
    let Some(k) = keys.first() else { return Ok(()) };
    if master.open(&k.sealed_secret).is_err() {
        anyhow::bail!(
            "the master key does not open the secrets stored in {}: start with the key this data was made with \
             ({} or GATEHOUSE_MASTER_KEY)",
            data_dir.display(),
            data_dir.join("master.key").display()
        );
    }
    Ok(())
}

/// First start: make sure the root account exists with a key. A pair fixed in the environment
/// is installed (or re-enabled); otherwise a new pair is made once and returned for printing.
pub async fn ensure_root(store: &dyn Store, master: &MasterKey) -> anyhow::Result<Option<(String, Secret)>> {
    let fixed = match (std::env::var(ROOT_KEY_ID_ENV), std::env::var(ROOT_KEY_SECRET_ENV)) {
        (Ok(id), Ok(secret)) if !id.is_empty() && !secret.is_empty() => Some((id, Secret::new(secret))),
        _ => None,
    };
    let root = store.read(|tx| tx.account_by_name(ROOT_ACCOUNT))?;
    if root.is_none() {
        create_account(store, ROOT_ACCOUNT).await?;
    }
    match fixed {
        Some((id, secret)) => {
            let existing = store.read(|tx| tx.key(&id))?;
            match existing {
                Some(k) if master.open(&k.sealed_secret)?.ct_eq(secret.expose()) => {}
                Some(_) => anyhow::bail!("{ROOT_KEY_ID_ENV}={id} exists with a different secret"),
                None => {
                    create_key(store, master, ROOT_ACCOUNT, Some((id, secret))).await?;
                }
            }
            Ok(None)
        }
        None if root.is_none() => Ok(Some(create_key(store, master, ROOT_ACCOUNT, None).await?)),
        None => Ok(None),
    }
}
