//! Personal data of customers (CPR, CVR, names): sealed with AES-256-GCM before it reaches an
//! event, a topic or a table, masked in `Debug`/`Display`, erased by deleting key material.
//!
//! A [`Sealed`] value names its key id, so keys rotate (new data under the active key, old data
//! readable while its key exists) and a former customer is erased by sealing their data under a
//! key of their own and deleting that key (crypto-shredding; decision 0113).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Environment variable holding the keyring: `id=64 hex digits` entries separated by `;`; the
/// last entry is the active key.
pub const KEYS_ENV: &str = "AFREGNING_PORTFOLIO_KEYS";
/// Environment variable naming a keyring file (one `id=hex` per line, last line active), used
/// when [`KEYS_ENV`] is unset.
pub const KEY_FILE_ENV: &str = "AFREGNING_PORTFOLIO_KEY_FILE";

macro_rules! masked_secret {
    ($(#[$doc:meta])* $name:ident, $mask:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// The plaintext: only for sealing and for the API roles that may read it.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), $mask)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($mask)
            }
        }
    };
}

masked_secret!(
    /// A Danish CPR number (10 digits), personal data.
    Cpr,
    "******-****"
);
masked_secret!(
    /// A Danish CVR number (8 digits); a sole trader's CVR identifies a person, so it is sealed too.
    Cvr,
    "********"
);
masked_secret!(
    /// A customer's name.
    PersonName,
    "***"
);

impl Cpr {
    /// Parses 10 digits (DataHub rejects other formats with D17).
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 10 && text.bytes().all(|b| b.is_ascii_digit())).then(|| Cpr(text.into()))
    }
}

impl Cvr {
    /// Parses 8 digits.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit())).then(|| Cvr(text.into()))
    }
}

impl PersonName {
    /// Any non-empty name.
    pub fn new(text: &str) -> Option<Self> {
        (!text.trim().is_empty()).then(|| PersonName(text.into()))
    }
}

/// Who the customer is: a person (CPR, CIM coding scheme ARR) or a company (CVR, VAT).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CustomerIdentity {
    /// A person.
    Cpr(Cpr),
    /// A company.
    Cvr(Cvr),
}

/// The personal data of one customer as DataHub sends it (RSM-028) or we send it (RSM-001/027).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonalData {
    /// CPR or CVR.
    pub identity: CustomerIdentity,
    /// Name, if known.
    pub name: Option<PersonName>,
}

/// The plaintext layout inside a seal; private so nothing else can serialise personal data.
#[derive(Serialize, Deserialize)]
struct Plain {
    cpr: Option<String>,
    cvr: Option<String>,
    name: Option<String>,
}

/// Personal data encrypted under a named key: `v1.<key id>.<nonce hex>.<ciphertext hex>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    key_id: String,
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
}

impl Sealed {
    /// The key it needs.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The encoded form.
    pub fn encode(&self) -> String {
        format!(
            "v1.{}.{}.{}",
            self.key_id,
            hex(&self.nonce),
            hex(&self.ciphertext)
        )
    }

    /// Parses [`Sealed::encode`]'s form.
    pub fn decode(text: &str) -> Result<Self, SealError> {
        let mut parts = text.split('.');
        let (Some("v1"), Some(key_id), Some(nonce), Some(ciphertext), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(SealError::Malformed);
        };
        let nonce: [u8; 12] = unhex(nonce)
            .and_then(|n| n.try_into().ok())
            .ok_or(SealError::Malformed)?;
        Ok(Sealed {
            key_id: key_id.to_owned(),
            nonce,
            ciphertext: unhex(ciphertext).ok_or(SealError::Malformed)?,
        })
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Sealed(key {}, {} bytes)",
            self.key_id,
            self.ciphertext.len()
        )
    }
}

impl Serialize for Sealed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.encode())
    }
}

impl<'de> Deserialize<'de> for Sealed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Sealed::decode(&text).map_err(serde::de::Error::custom)
    }
}

/// Why sealing or opening failed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key is gone: the data was erased (or the keyring is incomplete).
    #[error("key {0} is not in the keyring (erased?)")]
    UnknownKey(String),
    /// Wrong key or tampered ciphertext.
    #[error("ciphertext does not authenticate")]
    Tampered,
    /// Not a `v1.` sealed value.
    #[error("malformed sealed value")]
    Malformed,
    /// A keyring entry that is not `id=64 hex digits`.
    #[error("bad keyring entry: {0}")]
    BadKey(String),
    /// The keyring has no key to seal with.
    #[error("the keyring is empty")]
    NoActiveKey,
    /// Reading or writing the key file.
    #[error("key file: {0}")]
    Io(String),
}

/// AES-256 keys by id; the active one seals. Key material never leaves it except through
/// [`Keyring::save`].
#[derive(Default, Clone)]
pub struct Keyring {
    keys: BTreeMap<String, [u8; 32]>,
    active: Option<String>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("active", &self.active)
            .finish()
    }
}

impl Keyring {
    /// Parses `id=hex;id=hex` (or newline separated); the last entry is active.
    pub fn parse(text: &str) -> Result<Self, SealError> {
        let mut ring = Keyring::default();
        for entry in text
            .split([';', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (id, key) = entry
                .split_once('=')
                .ok_or_else(|| SealError::BadKey("missing '='".into()))?;
            let key: [u8; 32] = unhex(key.trim())
                .and_then(|k| k.try_into().ok())
                .ok_or_else(|| SealError::BadKey(format!("key {id} is not 64 hex digits")))?;
            ring.insert(id.trim(), key)?;
        }
        Ok(ring)
    }

    /// From [`KEYS_ENV`], else from the file named by [`KEY_FILE_ENV`].
    pub fn from_env() -> Result<Self, SealError> {
        if let Ok(text) = std::env::var(KEYS_ENV) {
            return Keyring::parse(&text);
        }
        let path = std::env::var(KEY_FILE_ENV)
            .map_err(|_| SealError::Io(format!("neither {KEYS_ENV} nor {KEY_FILE_ENV} is set")))?;
        Keyring::load(Path::new(&path))
    }

    /// The keyring if [`KEYS_ENV`] or [`KEY_FILE_ENV`] is set and not empty (compose passes
    /// unset variables as empty strings); `None` if neither is, `Err` if one is but unreadable,
    /// so a service that may run without personal data still fails on a bad key.
    pub fn from_env_if_set() -> Result<Option<Self>, SealError> {
        let set = |name| {
            std::env::var(name)
                .ok()
                .filter(|v: &String| !v.trim().is_empty())
        };
        match (set(KEYS_ENV), set(KEY_FILE_ENV)) {
            (Some(text), _) => Keyring::parse(&text).map(Some),
            (None, Some(path)) => Keyring::load(Path::new(&path)).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<Self, SealError> {
        let text = std::fs::read_to_string(path).map_err(|e| SealError::Io(e.to_string()))?;
        Keyring::parse(&text)
    }

    /// Writes the keyring (active key last), so an erased key is gone from disk too.
    pub fn save(&self, path: &Path) -> Result<(), SealError> {
        let mut text = String::new();
        for (id, key) in self
            .keys
            .iter()
            .filter(|(id, _)| Some(*id) != self.active.as_ref())
        {
            text.push_str(&format!("{id}={}\n", hex(key)));
        }
        if let Some(id) = &self.active {
            text.push_str(&format!("{id}={}\n", hex(&self.keys[id])));
        }
        std::fs::write(path, text).map_err(|e| SealError::Io(e.to_string()))
    }

    /// Adds a fresh random key and makes it active (rotation).
    pub fn generate(&mut self, id: &str) -> Result<(), SealError> {
        self.insert(id, Keyring::random_key())
    }

    fn insert(&mut self, id: &str, key: [u8; 32]) -> Result<(), SealError> {
        if id.is_empty() || id.contains(['.', '=', ';']) {
            return Err(SealError::BadKey(format!("key id {id:?}")));
        }
        self.keys.insert(id.to_owned(), key);
        self.active = Some(id.to_owned());
        Ok(())
    }

    /// Deletes a key: everything sealed under it can no longer be read (erasure).
    pub fn erase(&mut self, id: &str) -> bool {
        if self.active.as_deref() == Some(id) {
            self.active = None;
        }
        self.keys.remove(id).is_some()
    }

    /// Seals under the active key.
    pub fn seal(&self, data: &PersonalData) -> Result<Sealed, SealError> {
        let id = self.active.as_deref().ok_or(SealError::NoActiveKey)?;
        self.seal_with(id, data)
    }

    /// Seals under key `id` (e.g. a customer's own key, so the customer can be erased alone).
    pub fn seal_with(&self, id: &str, data: &PersonalData) -> Result<Sealed, SealError> {
        let key = self
            .keys
            .get(id)
            .ok_or_else(|| SealError::UnknownKey(id.into()))?;
        let plain = Plain {
            cpr: match &data.identity {
                CustomerIdentity::Cpr(c) => Some(c.0.clone()),
                CustomerIdentity::Cvr(_) => None,
            },
            cvr: match &data.identity {
                CustomerIdentity::Cvr(c) => Some(c.0.clone()),
                CustomerIdentity::Cpr(_) => None,
            },
            name: data.name.as_ref().map(|n| n.0.clone()),
        };
        let bytes = serde_json::to_vec(&plain).map_err(|_| SealError::Malformed)?;
        let (nonce, ciphertext) = encrypt(key, id.as_bytes(), &bytes)?;
        Ok(Sealed {
            key_id: id.to_owned(),
            nonce,
            ciphertext,
        })
    }

    /// Opens a seal; [`SealError::UnknownKey`] once the key was erased.
    pub fn open(&self, sealed: &Sealed) -> Result<PersonalData, SealError> {
        let key = self
            .keys
            .get(&sealed.key_id)
            .ok_or_else(|| SealError::UnknownKey(sealed.key_id.clone()))?;
        let bytes = decrypt(
            key,
            sealed.key_id.as_bytes(),
            &sealed.nonce,
            &sealed.ciphertext,
        )?;
        let plain: Plain = serde_json::from_slice(&bytes).map_err(|_| SealError::Malformed)?;
        let identity = match (plain.cpr, plain.cvr) {
            (Some(cpr), None) => CustomerIdentity::Cpr(Cpr(cpr)),
            (None, Some(cvr)) => CustomerIdentity::Cvr(Cvr(cvr)),
            _ => return Err(SealError::Malformed),
        };
        Ok(PersonalData {
            identity,
            name: plain.name.map(PersonName),
        })
    }
}

impl Keyring {
    /// Encrypts a data key (a customer's own key, decision 0148) under the active key, bound to
    /// the data key's id, so the key store holds no usable key material without this keyring.
    pub fn wrap(&self, data_key_id: &str, data_key: &[u8; 32]) -> Result<String, SealError> {
        let id = self.active.as_deref().ok_or(SealError::NoActiveKey)?;
        let (nonce, ciphertext) = encrypt(&self.keys[id], &wrap_aad(id, data_key_id), data_key)?;
        Ok(Sealed {
            key_id: id.to_owned(),
            nonce,
            ciphertext,
        }
        .encode())
    }

    /// Opens [`Keyring::wrap`]'s text for `data_key_id`; [`SealError::UnknownKey`] when the
    /// wrapping key is gone, [`SealError::Tampered`] for another data key's wrapping.
    pub fn unwrap_key(&self, data_key_id: &str, wrapped: &str) -> Result<[u8; 32], SealError> {
        let sealed = Sealed::decode(wrapped)?;
        let key = self
            .keys
            .get(&sealed.key_id)
            .ok_or_else(|| SealError::UnknownKey(sealed.key_id.clone()))?;
        let bytes = decrypt(
            key,
            &wrap_aad(&sealed.key_id, data_key_id),
            &sealed.nonce,
            &sealed.ciphertext,
        )?;
        bytes.try_into().map_err(|_| SealError::Malformed)
    }

    /// A keyring of one active key: a data key to seal with.
    pub fn single(id: &str, key: [u8; 32]) -> Result<Self, SealError> {
        let mut ring = Keyring::default();
        ring.insert(id, key)?;
        Ok(ring)
    }

    /// Adds `key` under `id` without making it active: a data key unwrapped for opening.
    pub fn add_inactive(&mut self, id: &str, key: [u8; 32]) -> Result<(), SealError> {
        let active = self.active.clone();
        self.insert(id, key)?;
        self.active = active;
        Ok(())
    }

    /// Whether key `id` is here.
    pub fn has(&self, id: &str) -> bool {
        self.keys.contains_key(id)
    }

    /// A fresh random key for a new data key.
    pub fn random_key() -> [u8; 32] {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        key
    }
}

/// What a wrapped data key is bound to: the wrapping key and the data key's own id.
fn wrap_aad(wrapping_id: &str, data_key_id: &str) -> Vec<u8> {
    format!("data-key:{wrapping_id}:{data_key_id}").into_bytes()
}

/// AES-256-GCM with a fresh random nonce.
fn encrypt(key: &[u8; 32], aad: &[u8], msg: &[u8]) -> Result<([u8; 12], Vec<u8>), SealError> {
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let ciphertext = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))
        .encrypt(Nonce::from_slice(&nonce), Payload { msg, aad })
        .map_err(|_| SealError::Tampered)?;
    Ok((nonce, ciphertext))
}

/// Opens [`encrypt`]'s output; [`SealError::Tampered`] if it does not authenticate.
fn decrypt(key: &[u8; 32], aad: &[u8], nonce: &[u8; 12], msg: &[u8]) -> Result<Vec<u8>, SealError> {
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))
        .decrypt(Nonce::from_slice(nonce), Payload { msg, aad })
        .map_err(|_| SealError::Tampered)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPR: &str = "0101901234";
    const NAME: &str = "Hasel Nielsen";

    fn data() -> PersonalData {
        PersonalData {
            identity: CustomerIdentity::Cpr(Cpr::parse(CPR).unwrap()),
            name: PersonName::new(NAME),
        }
    }

    fn ring() -> Keyring {
        let mut ring = Keyring::default();
        ring.generate("k1").unwrap();
        ring
    }

    #[test]
    fn debug_and_display_are_masked() {
        let text = format!(
            "{:?} {} {:?}",
            data(),
            data().name.unwrap(),
            Cpr::parse(CPR)
        );
        assert!(!text.contains(CPR) && !text.contains(NAME), "{text}");
        assert!(text.contains("******-****"));
    }

    #[test]
    fn seal_round_trips_and_the_encoding_hides_the_plaintext() {
        let ring = ring();
        let sealed = ring.seal(&data()).unwrap();
        let encoded = serde_json::to_string(&sealed).unwrap();
        assert!(
            !encoded.contains(CPR) && !encoded.contains(NAME),
            "{encoded}"
        );
        assert!(!encoded.contains("Hasel"));
        assert!(encoded.contains("v1.k1."));
        let back: Sealed = serde_json::from_str(&encoded).unwrap();
        assert_eq!(ring.open(&back).unwrap(), data());
    }

    #[test]
    fn rotation_keeps_old_data_readable_and_erasure_makes_it_unreadable() {
        let mut ring = ring();
        let old = ring.seal(&data()).unwrap();
        ring.generate("k2").unwrap();
        let new = ring.seal(&data()).unwrap();
        assert_eq!(new.key_id(), "k2");
        assert_eq!(ring.open(&old).unwrap(), data());
        assert!(ring.erase("k1"));
        assert_eq!(ring.open(&old), Err(SealError::UnknownKey("k1".into())));
        assert_eq!(ring.open(&new).unwrap(), data());
    }

    #[test]
    fn a_ciphertext_moved_to_another_key_id_does_not_open() {
        let mut ring = ring();
        let sealed = ring.seal(&data()).unwrap();
        ring.generate("k2").unwrap();
        let forged = Sealed {
            key_id: "k2".into(),
            ..sealed.clone()
        };
        assert_eq!(ring.open(&forged), Err(SealError::Tampered));
    }

    #[test]
    fn a_wrapped_data_key_opens_only_for_its_id_and_with_the_wrapping_key() {
        let ring = ring();
        let data_key = Keyring::random_key();
        let wrapped = ring.wrap("d1", &data_key).unwrap();
        assert!(!wrapped.contains(&hex(&data_key)));
        assert_eq!(ring.unwrap_key("d1", &wrapped).unwrap(), data_key);
        assert_eq!(ring.unwrap_key("d2", &wrapped), Err(SealError::Tampered));
        let mut other = Keyring::default();
        other.generate("k9").unwrap();
        assert!(matches!(
            other.unwrap_key("d1", &wrapped),
            Err(SealError::UnknownKey(_))
        ));
        let mut opener = ring;
        opener.add_inactive("d1", data_key).unwrap();
        let sealed = opener.seal_with("d1", &data()).unwrap();
        assert_eq!(opener.seal(&data()).unwrap().key_id(), "k1");
        assert_eq!(opener.open(&sealed).unwrap(), data());
    }

    #[test]
    fn keyring_text_and_file_round_trip() {
        let ring =
            Keyring::parse(&format!("old={};new={}", "11".repeat(32), "22".repeat(32))).unwrap();
        let sealed = ring.seal(&data()).unwrap();
        assert_eq!(sealed.key_id(), "new");
        let dir = std::env::temp_dir().join(format!("portfolio-keys-{}", std::process::id()));
        ring.save(&dir).unwrap();
        let loaded = Keyring::load(&dir).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(loaded.open(&sealed).unwrap(), data());
        assert!(Keyring::parse("x=zz").is_err());
    }
}
