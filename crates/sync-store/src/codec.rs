//! How a stored record's bytes are sealed: compressed with zstd where it
//! pays, encrypted with AES-256-GCM when a key is configured.
//!
//! Every sealed record starts with a byte of flags:
//!
//! | flags | then |
//! |---|---|
//! | `0` | the record |
//! | `1` (compressed) | the record's length (4 bytes, big-endian), its zstd frame |
//! | `2` (encrypted) | the key id (4 bytes), a random 96-bit nonce, the ciphertext and tag of the record |
//! | `3` | the same, the plaintext being the compressed form |
//!
//! The record's own key (its place in the store) is the additional data
//! of the encryption: a ciphertext moved to another key does not open.
//! A key id is the key's check value, so a record names the key it needs
//! without the key being stored anywhere.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use crate::error::Error;

const COMPRESSED: u8 = 1;
const ENCRYPTED: u8 = 2;
const NONCE_BYTES: usize = 12;
/// Records shorter than this are stored as they are: compressing a short
/// record saves little disk (sled's own overhead per record dominates) and
/// costs every read of it a decompression.
const COMPRESS_FROM: usize = 512;
/// zstd's level: the fastest of the levels that still find the repeats of
/// JSON field names within a record.
const ZSTD_LEVEL: i32 = 1;
/// The largest record a compressed length may claim.
const MAX_RECORD: usize = 256 * 1024 * 1024;

/// Whether stored records are compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    /// Records as they are.
    None,
    /// Each record of at least 512 bytes compressed with zstd, kept
    /// compressed only where that is smaller.
    #[default]
    Zstd,
}

/// A 256-bit key for encryption at rest.
#[derive(Clone)]
pub struct EncryptionKey {
    cipher: Aes256Gcm,
    id: u32,
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("id", &format_args!("{:08x}", self.id))
            .finish_non_exhaustive()
    }
}

impl EncryptionKey {
    /// The key written as 64 hexadecimal digits (surrounding white space
    /// ignored).
    pub fn from_hex(text: &str) -> Result<EncryptionKey, Error> {
        let text = text.trim();
        let invalid = || Error::Config("an encryption key is 64 hexadecimal digits".into());
        if text.len() != 64 || !text.is_ascii() {
            return Err(invalid());
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| invalid())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| invalid())?;
        }
        Ok(EncryptionKey::from_bytes(bytes))
    }

    /// The key in the file at `path`, written as [`EncryptionKey::from_hex`]
    /// reads it.
    pub fn from_file(path: &Path) -> Result<EncryptionKey, Error> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            Error::Config(format!(
                "cannot read the key file {}: {error}",
                path.display()
            ))
        })?;
        EncryptionKey::from_hex(&text)
    }

    /// A new random key, written as 64 hexadecimal digits.
    pub fn generate_hex() -> String {
        Aes256Gcm::generate_key(&mut OsRng)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    fn from_bytes(bytes: [u8; 32]) -> EncryptionKey {
        let cipher = Aes256Gcm::new(&bytes.into());
        // The key check value: the first bytes of a known block encrypted
        // under the key. It names the key; it does not reveal it.
        let check = cipher
            .encrypt(&Nonce::default(), &[0u8; 16][..])
            .unwrap_or_default();
        let id = check
            .get(..4)
            .and_then(|bytes| bytes.try_into().ok())
            .map_or(0, u32::from_be_bytes);
        EncryptionKey { cipher, id }
    }

    /// The key's id, as records name it.
    pub fn id(&self) -> u32 {
        self.id
    }
}

/// Encryption at rest: the key new records are written under, and the
/// earlier keys records may still be under until they are re-encrypted.
#[derive(Debug, Clone)]
pub struct Encryption {
    current: EncryptionKey,
    keys: BTreeMap<u32, EncryptionKey>,
}

impl Encryption {
    /// Writes under `current`; reads records under it or any of `previous`.
    pub fn new(current: EncryptionKey, previous: impl IntoIterator<Item = EncryptionKey>) -> Self {
        let mut keys: BTreeMap<u32, EncryptionKey> =
            previous.into_iter().map(|key| (key.id, key)).collect();
        keys.insert(current.id, current.clone());
        Encryption { current, keys }
    }

    /// The id of the key new records are written under.
    pub fn current_id(&self) -> u32 {
        self.current.id
    }
}

thread_local! {
    /// zstd's contexts, made once per thread: making one costs more than
    /// compressing a record with it.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

fn compress(record: &[u8]) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with_borrow_mut(|slot| {
        let compressor = match slot {
            Some(compressor) => compressor,
            None => slot.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
        };
        compressor.compress(record)
    })
}

fn decompress(frame: &[u8], length: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with_borrow_mut(|slot| {
        let decompressor = match slot {
            Some(decompressor) => decompressor,
            None => slot.insert(zstd::bulk::Decompressor::new()?),
        };
        decompressor.decompress(frame, length)
    })
}

/// Seals and opens records.
#[derive(Debug, Clone, Default)]
pub(crate) struct Codec {
    compression: Compression,
    encryption: Option<Encryption>,
}

impl Codec {
    pub(crate) fn new(compression: Compression, encryption: Option<Encryption>) -> Codec {
        Codec {
            compression,
            encryption,
        }
    }

    /// `record` sealed for the place `key`.
    pub(crate) fn seal(&self, key: &[u8], record: &[u8]) -> Vec<u8> {
        let mut flags = 0;
        let mut body = Cow::Borrowed(record);
        let worth_compressing =
            self.compression == Compression::Zstd && record.len() >= COMPRESS_FROM;
        if let Some(frame) = worth_compressing.then(|| compress(record).ok()).flatten()
            && frame.len() + 4 < record.len()
        {
            let mut compressed = Vec::with_capacity(frame.len() + 4);
            compressed.extend_from_slice(&(record.len() as u32).to_be_bytes());
            compressed.extend_from_slice(&frame);
            body = Cow::Owned(compressed);
            flags |= COMPRESSED;
        }
        let Some(encryption) = &self.encryption else {
            let mut out = Vec::with_capacity(1 + body.len());
            out.push(flags);
            out.extend_from_slice(&body);
            return out;
        };
        let key_id = encryption.current.id;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = encryption
            .current
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &body,
                    aad: key,
                },
            )
            // Only a message longer than 64 GiB fails to encrypt.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + 4 + NONCE_BYTES + ciphertext.len());
        out.push(flags | ENCRYPTED);
        out.extend_from_slice(&key_id.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// The record sealed at the place `key`; `what` names its kind in
    /// errors.
    pub(crate) fn open<'a>(
        &self,
        what: &'static str,
        key: &[u8],
        sealed: &'a [u8],
    ) -> Result<Cow<'a, [u8]>, Error> {
        let corrupt = |message: &str| Error::Corrupt {
            tree: what,
            message: message.into(),
        };
        let (&flags, rest) = sealed
            .split_first()
            .ok_or_else(|| corrupt("empty record"))?;
        if flags & !(COMPRESSED | ENCRYPTED) != 0 {
            return Err(corrupt("unknown record flags"));
        }
        let body = if flags & ENCRYPTED != 0 {
            let (key_id, rest) = rest
                .split_at_checked(4)
                .ok_or_else(|| corrupt("short encrypted record"))?;
            let (nonce, ciphertext) = rest
                .split_at_checked(NONCE_BYTES)
                .ok_or_else(|| corrupt("short encrypted record"))?;
            let key_id = u32::from_be_bytes(key_id.try_into().unwrap_or_default());
            let cipher = self
                .encryption
                .as_ref()
                .and_then(|encryption| encryption.keys.get(&key_id))
                .ok_or(Error::MissingKey { key_id })?;
            let plain = cipher
                .cipher
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: key,
                    },
                )
                .map_err(|_| corrupt("does not decrypt: altered, or not under its key"))?;
            Cow::Owned(plain)
        } else {
            Cow::Borrowed(rest)
        };
        if flags & COMPRESSED == 0 {
            return Ok(body);
        }
        let (length, frame) = body
            .split_at_checked(4)
            .ok_or_else(|| corrupt("short compressed record"))?;
        let length = u32::from_be_bytes(length.try_into().unwrap_or_default()) as usize;
        if length > MAX_RECORD {
            return Err(corrupt("compressed record too long"));
        }
        let record = decompress(frame, length).map_err(|_| corrupt("does not decompress"))?;
        if record.len() != length {
            return Err(corrupt("decompressed length differs"));
        }
        Ok(Cow::Owned(record))
    }

    /// The id of the key records are sealed under, if they are encrypted.
    pub(crate) fn current_key_id(&self) -> Option<u32> {
        self.encryption.as_ref().map(Encryption::current_id)
    }

    /// Whether a sealed record is under a key other than the current one
    /// (or sealed without encryption while a key is configured).
    pub(crate) fn needs_reencryption(&self, sealed: &[u8]) -> bool {
        let Some(encryption) = &self.encryption else {
            return false;
        };
        match sealed.split_first() {
            Some((&flags, rest)) if flags & ENCRYPTED != 0 => {
                rest.get(..4)
                    .and_then(|id| id.try_into().ok())
                    .map(u32::from_be_bytes)
                    != Some(encryption.current.id)
            }
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key() -> EncryptionKey {
        EncryptionKey::from_hex(&EncryptionKey::generate_hex()).expect("a key")
    }

    fn codecs() -> Vec<Codec> {
        let encryption = Encryption::new(key(), []);
        vec![
            Codec::new(Compression::None, None),
            Codec::new(Compression::Zstd, None),
            Codec::new(Compression::None, Some(encryption.clone())),
            Codec::new(Compression::Zstd, Some(encryption)),
        ]
    }

    proptest! {
        #[test]
        fn every_codec_opens_what_it_sealed(record in proptest::collection::vec(any::<u8>(), 0..600), repeat in 0usize..8) {
            let record: Vec<u8> = record.iter().copied().cycle().take(record.len() * repeat.max(1)).collect();
            for codec in codecs() {
                let sealed = codec.seal(b"Dkey", &record);
                prop_assert_eq!(codec.open("test", b"Dkey", &sealed).expect("opens"), &record[..]);
            }
        }
    }

    #[test]
    fn repetitive_records_shrink_and_short_ones_stay_as_they_are() {
        let codec = Codec::new(Compression::Zstd, None);
        let json = br#"{"text":"Buy milk","done":false,"tags":["home"]}"#.repeat(20);
        assert!(codec.seal(b"k", &json).len() < json.len() / 2);
        assert_eq!(codec.seal(b"k", b"short"), b"\0short");
    }

    #[test]
    fn an_encrypted_record_holds_no_plaintext_and_opens_only_in_its_place() {
        let codec = Codec::new(Compression::None, Some(Encryption::new(key(), [])));
        let sealed = codec.seal(b"Dnotes/a", b"the secret plan for the launch");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert!(codec.open("docs", b"Dnotes/a", &sealed).is_ok());
        assert!(matches!(
            codec.open("docs", b"Dnotes/b", &sealed),
            Err(Error::Corrupt { .. })
        ));
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert!(codec.open("docs", b"Dnotes/a", &altered).is_err());
    }

    #[test]
    fn keys_rotate_old_records_open_and_are_marked_for_reencryption() {
        let old = key();
        let new = key();
        assert_ne!(old.id(), new.id());
        let before = Codec::new(Compression::Zstd, Some(Encryption::new(old.clone(), [])));
        let sealed = before.seal(b"k", b"written under the old key");
        let after = Codec::new(Compression::Zstd, Some(Encryption::new(new.clone(), [old])));
        assert!(after.needs_reencryption(&sealed));
        assert_eq!(
            after.open("docs", b"k", &sealed).expect("opens").as_ref(),
            b"written under the old key"
        );
        assert!(!after.needs_reencryption(&after.seal(b"k", b"x")));
        let without_old = Codec::new(Compression::Zstd, Some(Encryption::new(new, [])));
        assert!(matches!(
            without_old.open("docs", b"k", &sealed),
            Err(Error::MissingKey { .. })
        ));
    }

    #[test]
    fn bad_keys_and_bad_records_are_errors() {
        assert!(EncryptionKey::from_hex("abc").is_err());
        assert!(EncryptionKey::from_hex(&"g".repeat(64)).is_err());
        let codec = Codec::default();
        assert!(codec.open("docs", b"k", b"").is_err());
        assert!(codec.open("docs", b"k", b"\x09x").is_err());
        assert!(codec.open("docs", b"k", b"\x01\x00").is_err());
        assert!(
            codec
                .open("docs", b"k", b"\x01\xff\xff\xff\xffabc")
                .is_err()
        );
        assert!(matches!(
            codec.open("docs", b"k", b"\x02\0\0\0\x01123456789012ct"),
            Err(Error::MissingKey { key_id: 1 })
        ));
        // Debug output never shows the key.
        let text = EncryptionKey::generate_hex();
        let key = EncryptionKey::from_hex(&text).expect("a key");
        assert!(!format!("{key:?}").contains(&text[..16]));
    }
}
