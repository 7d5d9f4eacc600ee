//! Secrets at rest and in memory: AccessKey secrets (later PSKs and private keys) are sealed with a
//! master key before they reach the store, and in memory live in `Secret`, which never prints itself.

use std::fmt;
use std::path::Path;

use anyhow::{bail, Context};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A secret string: redacted in `Debug`/`Display`, zeroed on drop, compared in constant time.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(Zeroizing::new(s.into()))
    }
    /// The only way to read the value: callers name what they do with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn ct_eq(&self, other: &str) -> bool {
        self.0.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Whether strongSwan would decode `psk` rather than take it as it is: a secret that begins with
/// `0x` (hex) or `0s` (base64), in either case, as swanctl.conf and ipsec.secrets read them.
pub fn encoded_for_strongswan(psk: &str) -> bool {
    let head = psk.as_bytes().get(..2).map(|h| h.to_ascii_lowercase());
    matches!(head.as_deref(), Some(b"0x" | b"0s"))
}

/// A secret as stored: sealed with the master key, redacted in `Debug`. PSKs and BGP keys live
/// inside resource documents in this form.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Sealed(String);

impl Sealed {
    pub fn seal(key: &MasterKey, secret: &Secret) -> Sealed {
        Sealed(key.seal(secret))
    }
    pub fn open(&self, key: &MasterKey) -> crate::api::error::ApiResult<Secret> {
        key.open(&self.0).map_err(crate::api::error::ApiError::internal)
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealed(<redacted>)")
    }
}

/// The key that seals secrets at rest (ChaCha20-Poly1305, a fresh random nonce per value).
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

pub const MASTER_KEY_ENV: &str = "GATEHOUSE_MASTER_KEY";
const MASTER_KEY_FILE: &str = "master.key";

impl MasterKey {
    /// From `GATEHOUSE_MASTER_KEY` (64 hex digits) if set, else `<data_dir>/master.key`, which is
    /// created (mode 0600) on first use.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Self> {
        if let Ok(hexkey) = std::env::var(MASTER_KEY_ENV) {
            return Self::from_hex(hexkey.trim()).context(MASTER_KEY_ENV);
        }
        let path = data_dir.join(MASTER_KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_hex(text.trim()).with_context(|| path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                write_private(&path, hex::encode(key).as_bytes())?;
                Ok(MasterKey(Zeroizing::new(key)))
            }
            Err(e) => Err(e).with_context(|| path.display().to_string()),
        }
    }

    pub fn from_hex(text: &str) -> anyhow::Result<Self> {
        let bytes = Zeroizing::new(hex::decode(text).context("master key is not hex")?);
        let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) else {
            bail!("master key must be 32 bytes (64 hex digits)");
        };
        Ok(MasterKey(Zeroizing::new(key)))
    }

    pub fn seal(&self, secret: &Secret) -> String {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0[..]));
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher.encrypt(&nonce, secret.expose().as_bytes()).expect("chacha20poly1305 encrypt cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        B64.encode(out)
    }

    pub fn open(&self, sealed: &str) -> anyhow::Result<Secret> {
        let raw = B64.decode(sealed).context("sealed secret is not base64")?;
        if raw.len() < 12 {
            bail!("sealed secret is too short");
        }
        let (nonce, ct) = raw.split_at(12);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0[..]));
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| anyhow::anyhow!("sealed secret does not open with this master key"))?;
        Ok(Secret::new(String::from_utf8(plain).context("sealed secret is not UTF-8")?))
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| path.display().to_string())?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(<redacted>) <redacted>");
        assert!(s.ct_eq("hunter2"));
        assert!(!s.ct_eq("hunter3"));
    }

    #[test]
    fn seal_roundtrip_and_tamper() {
        let k = MasterKey::from_hex(&"ab".repeat(32)).unwrap();
        let sealed = k.seal(&Secret::new("s3cret"));
        assert!(!sealed.contains("s3cret"));
        assert_eq!(k.open(&sealed).unwrap().expose(), "s3cret");
        let other = MasterKey::from_hex(&"cd".repeat(32)).unwrap();
        assert!(other.open(&sealed).is_err());
    }

    #[test]
    fn master_key_file_is_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("gh-mk-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = MasterKey::load_or_create(&dir).unwrap();
        let b = MasterKey::load_or_create(&dir).unwrap();
        assert_eq!(a.open(&b.seal(&Secret::new("x"))).unwrap().expose(), "x");
        let mode = std::fs::metadata(dir.join(MASTER_KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
