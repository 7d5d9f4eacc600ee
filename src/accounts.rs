//! Accounts and their AccessKeys: what `gatehouse accounts`/`keys` and first start manage.

use rand::Rng;

use crate::api::error::{ApiError, ApiResult};
use crate::secret::{MasterKey, Secret};
use crate::store::{now_ms, AccessKeyRow, Account, Store};

/// How many AccessKeys a `KeyCache` keeps before it starts over.
const KEY_CACHE_SIZE: usize = 10_000;

/// The account and opened secret of AccessKeys this node has seen enabled, so that a request
/// needs no read to find its key. A cached key is never trusted alone: whether it is still
/// enabled is checked where each request's nonce is spent (`Tx::spend_nonce`), in the same write,
/// so a key disabled on any node is refused by every node at once.
#[derive(Default)]
pub struct KeyCache {
    keys: std::sync::Mutex<std::collections::HashMap<String, (i64, Secret)>>,
}

impl KeyCache {
    pub fn get(&self, id: &str) -> Option<(i64, Secret)> {
        self.keys.lock().expect("key cache").get(id).cloned()
    }

    pub fn put(&self, id: &str, account_id: i64, secret: &Secret) {
        let mut keys = self.keys.lock().expect("key cache");
        if keys.len() >= KEY_CACHE_SIZE {
            keys.clear();
        }
        keys.insert(id.to_string(), (account_id, secret.clone()));
    }

    pub fn forget(&self, id: &str) {
        self.keys.lock().expect("key cache").remove(id);
    }
}

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
                id: key_id.clone(),
                account_id: acct.id,
                account_name: acct.name,
                sealed_secret: sealed.clone(),
                enabled: true,
                created_ms: now_ms(),
            })
        })
        .await?;
    Ok((id, secret))
}

/// Refuses a master key that does not open the secrets already stored: another data
/// directory's key, another node's, or a `GATEHOUSE_MASTER_KEY` that is not this data's. Starting
/// with it would fail every signed request and seal new secrets that the right key cannot open.
pub fn check_master_key(store: &dyn Store, master: &MasterKey, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let keys = store.read(|tx| tx.keys())?;
    let Some(k) = keys.first() else { return Ok(()) };
    if master.open(&k.sealed_secret).is_err() {
        anyhow::bail!(
            "the master key does not open the secrets stored in {}: start with the key this data was made with \
             ({} or GATEHOUSE_MASTER_KEY; every node sharing a database needs the same one)",
            store.describe(),
            data_dir.join("master.key").display()
        );
    }
    Ok(())
}

/// First start: make sure the root account exists with a key, in one transaction (several nodes
/// may start on one database at once). A pair fixed in the environment is installed; otherwise
/// a new pair is made once and returned for printing.
pub async fn ensure_root(store: &dyn Store, master: &MasterKey) -> anyhow::Result<Option<(String, Secret)>> {
    let fixed = match (std::env::var(ROOT_KEY_ID_ENV), std::env::var(ROOT_KEY_SECRET_ENV)) {
        (Ok(id), Ok(secret)) if !id.is_empty() && !secret.is_empty() => Some((id, Secret::new(secret))),
        _ => None,
    };
    let is_fixed = fixed.is_some();
    let (id, secret) = fixed.unwrap_or_else(new_key_pair);
    let sealed = master.seal(&secret);
    let key_id = id.clone();
    // The sealed secret of the fixed key already stored, if any; whether a key was added.
    let (stored, added) = store
        .write(move |tx| {
            let (root, created) = match tx.account_by_name(ROOT_ACCOUNT)? {
                Some(a) => (a, false),
                None => (tx.create_account(ROOT_ACCOUNT, now_ms())?, true),
            };
            if is_fixed {
                if let Some(k) = tx.key(&key_id)? {
                    return Ok((Some(k.sealed_secret), false));
                }
            } else if !created {
                return Ok((None, false));
            }
            tx.insert_key(&AccessKeyRow {
                id: key_id.clone(),
                account_id: root.id,
                account_name: root.name,
                sealed_secret: sealed.clone(),
                enabled: true,
                created_ms: now_ms(),
            })?;
            Ok((None, true))
        })
        .await?;
    if let Some(sealed) = stored {
        if !master.open(&sealed)?.ct_eq(secret.expose()) {
            anyhow::bail!("{ROOT_KEY_ID_ENV}={id} exists with a different secret");
        }
    }
    Ok((added && !is_fixed).then_some((id, secret)))
}
